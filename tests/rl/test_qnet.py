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


def test_centred_inputs_ignore_brightness_and_keep_every_first_layer_filter_alive():
    import torch

    from mlrepro.rl import QNet

    torch.manual_seed(0)
    x = torch.rand(16, 4, 30, 45) * 0.5
    brighter = x + torch.tensor([0.1, 0.3, 0.0, 0.2]).view(1, 4, 1, 1)  # per frame
    q = QNet(6, in_channels=4, center=True, dueling=True)
    torch.testing.assert_close(q(brighter), q(x))
    plain = QNet(6, in_channels=4, dueling=True)
    plain.load_state_dict(q.state_dict())  # the same weights, no new state
    assert not torch.allclose(plain(brighter), plain(x))

    # All-positive frames let one optimizer step shift a filter's pre-activation everywhere at
    # once; with a common push (here: lower every activation), Adam kills the whole first layer of
    # the raw net within a few dozen steps while the centred net keeps its filters.
    def alive_after(center: bool) -> int:
        torch.manual_seed(1)
        net = QNet(6, in_channels=4, center=center)
        first: list[torch.Tensor] = []
        net.features[1].register_forward_hook(lambda _m, _i, out: first.append(out))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(60):
            opt.zero_grad()
            first.clear()
            net(x)
            first[0].sum().backward()
            opt.step()
        first.clear()
        with torch.no_grad():
            net(x)
        return int((first[0].amax(dim=(0, 2, 3)) > 0).sum())

    assert alive_after(center=False) == 0
    assert alive_after(center=True) == 8
