import pytest
import torch

from mlrepro.nn import create_model
from mlrepro.nn.wide_resnet import BasicBlock, WideResNet


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_wrn_28_10_has_the_papers_size_and_structure():
    m = create_model("wrn_28_10")
    assert n_params(m) == pytest.approx(36.5e6, rel=0.002)  # paper: 36.5M
    blocks = [b for b in m.modules() if isinstance(b, BasicBlock)]
    assert len(blocks) == 12  # (28 - 4) / 6 = 4 per group
    assert [b.conv1.stride[0] for b in blocks] == [1] * 4 + [2] + [1] * 3 + [2] + [1] * 3
    assert [b.conv2.out_channels for b in blocks[::4]] == [160, 320, 640]
    assert sum(b.project is not None for b in blocks) == 3  # only where the shape changes


def test_shapes_and_dropout_only_in_training():
    m = WideResNet(10, 2, dropout=0.5, in_channels=1)
    x = torch.rand(3, 1, 28, 28)
    m.eval()
    assert torch.equal(m(x), m(x))  # no dropout at test time
    m.train()
    assert m(x).shape == (3, 10)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        WideResNet(depth=12)


def test_residual_block_is_identity_plus_branch():
    torch.manual_seed(0)
    blk = BasicBlock(8, 8, stride=1, dropout=0.0).eval()
    torch.nn.init.zeros_(blk.conv2.weight)
    x = torch.randn(2, 8, 5, 5)
    assert torch.equal(blk(x), x)  # zero branch → the shortcut passes x through unchanged
