"""Q-networks: the blog's layer shapes, forward and backward for every variant."""

import pytest
import torch

from mlrepro.rl import ARCHS, QNet


def test_blog_qnet_has_the_blogs_layers():
    net = QNet(8, arch="blog")
    x = torch.rand(5, 1, 30, 45)
    assert net.features[:2](x).shape == (5, 8, 9, 14)
    assert net.features(x).shape == (5, 192)  # 8 × 4 × 6, the blog's x.view(-1, 192)
    assert [m.out_features for m in net.head if hasattr(m, "out_features")] == [128, 8]


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("in_channels", [1, 4])
def test_forward_and_backward(arch, dueling, in_channels):
    torch.manual_seed(0)
    net = QNet(3, in_channels=in_channels, arch=arch, dueling=dueling)
    q = net(torch.rand(2, in_channels, 30, 45))
    assert q.shape == (2, 3) and torch.isfinite(q).all()
    q.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_dueling_head_advantages_have_zero_mean():
    net = QNet(5, dueling=True)
    x = net.features(torch.rand(4, 1, 30, 45))
    q, v = net.head(x), net.head.value(x)
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), v)


def test_other_resolutions_and_unknown_arch():
    assert QNet(2, resolution=(60, 90))(torch.rand(1, 1, 60, 90)).shape == (1, 2)
    with pytest.raises(ValueError, match="unknown Q-net 'huge'"):
        QNet(2, arch="huge")
