import pytest
import torch

from mlrepro.data import load_mnist
from mlrepro.data.multimnist import MultiMnistLoader, RandomShift, make_pairs, shift_images
from mlrepro.errors import DataError


def test_shift_moves_pixels_and_fills_with_zeros():
    x = torch.arange(1, 2 * 16 + 1, dtype=torch.float32).view(2, 1, 4, 4)
    out = shift_images(x, torch.tensor([1, -2]), torch.tensor([-1, 2]))
    assert torch.equal(out[0, 0, 1:, :3], x[0, 0, :3, 1:]) and out[0, 0, 0].sum() == 0
    assert torch.equal(out[1, 0, :2, 2:], x[1, 0, 2:, :2]) and out[1, 0, 2:].sum() == 0
    canvas = shift_images(x, torch.tensor([0, 2]), torch.tensor([0, -2]), 8)
    assert torch.equal(canvas[0, 0, 2:6, 2:6], x[0, 0]) and canvas[0].sum() == x[0].sum()
    assert torch.equal(canvas[1, 0, 4:8, 0:4], x[1, 0])
    aug = RandomShift(2)(x, torch.Generator().manual_seed(0))
    assert aug.shape == x.shape and (aug.sum() <= x.sum())


@pytest.fixture(scope="module")
def mnist(data_dir):
    return load_mnist("train", data_dir)


def test_pairs_have_two_classes_shifted_within_4_px_and_overlap_heavily(mnist):
    gen = torch.Generator().manual_seed(0)
    merged, parts, labels = make_pairs(mnist.images, mnist.labels, torch.arange(500), gen)
    assert merged.shape == (500, 1, 36, 36) and parts.shape == (500, 2, 36, 36)
    assert (labels[:, 0] != labels[:, 1]).all() and torch.equal(labels[:, 0], mnist.labels[:500])
    assert torch.equal(merged[:, 0], (parts.int().sum(1)).clamp(max=255).to(torch.uint8))
    # Each part is its source digit moved by at most 4 px: its ink sum is unchanged (nothing cut
    # off).
    assert torch.equal(parts[:, 0].int().sum((1, 2)), mnist.images[:500].int().sum((1, 2, 3)))

    def box(img):  # (N, S, S) → bounding boxes of the ink
        rows, cols = img.any(2), img.any(1)
        idx = torch.arange(img.shape[-1])

        def lohi(m):
            return torch.where(m, idx, 99).amin(1), torch.where(m, idx, -1).amax(1)

        return (*lohi(rows), *lohi(cols))

    (r0, r1, c0, c1), (s0, s1, d0, d1) = box(parts[:, 0] > 0), box(parts[:, 1] > 0)
    inter = (torch.minimum(r1, s1) - torch.maximum(r0, s0) + 1).clamp(min=0) * (
        torch.minimum(c1, d1) - torch.maximum(c0, d0) + 1
    ).clamp(min=0)
    smaller = torch.minimum((r1 - r0 + 1) * (c1 - c0 + 1), (s1 - s0 + 1) * (d1 - d0 + 1))
    assert (inter / smaller).float().mean() > 0.6  # paper: 80 % bounding-box overlap on average


def test_loader_is_deterministic_by_seed_and_epoch(mnist):
    images, labels = mnist.images[:300], mnist.labels[:300]
    a = MultiMnistLoader(images, labels, 128, seed=1, with_parts=True)
    b = MultiMnistLoader(images, labels, 128, seed=1, with_parts=True)
    first = [x for x, _ in a]
    assert len(a) == 3 and len(first) == 3 and first[0].shape == (128, 3, 36, 36)
    assert all(torch.equal(p, q) for p, q in zip(first, [x for x, _ in b]))
    b.set_epoch(1)
    assert not torch.equal(first[0], next(iter(b))[0])
    other = MultiMnistLoader(images, labels, 128, seed=2)
    x, y = next(iter(other))
    assert x.shape == (128, 1, 36, 36) and y.shape == (128, 2) and x.min() >= 0 and x.max() <= 1
    with pytest.raises(DataError, match="uint8"):
        MultiMnistLoader(images.float(), labels, 8)
    with pytest.raises(DataError, match="all 10 classes"):
        MultiMnistLoader(images[labels < 5], labels[labels < 5], 8)
