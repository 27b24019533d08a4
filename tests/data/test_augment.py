import pytest
import torch

from mlrepro.data import TensorLoader
from mlrepro.data.augment import CifarAugment, cutout, random_crop, random_flip


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 64, h: int = 12, w: int = 10) -> torch.Tensor:
    # Pixel value encodes its position (1..h·w, never 0), so shifts and holes are visible.
    pos = torch.arange(1, h * w + 1, dtype=torch.int64).view(1, 1, h, w) % 251 + 1
    return pos.expand(n, 3, h, w).to(torch.uint8).clone()


def test_shapes_and_uint8_are_preserved():
    x = images()
    for out in (
        random_crop(x, 4, gen()),
        random_flip(x, gen()),
        cutout(x, 16, gen()),
        CifarAugment(4, True, 16)(x, gen()),
    ):
        assert out.shape == x.shape and out.dtype == torch.uint8


def test_crop_shifts_content_by_the_drawn_offset_and_pads_with_zeros():
    x = images(n=200)
    out = random_crop(x, 3, gen(1))
    # Find each image's shift: the padded window equals x shifted by (dy, dx) in [-3, 3].
    padded = torch.nn.functional.pad(x, (3, 3, 3, 3))
    shifts = set()
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if torch.equal(out[i], padded[i, :, dy : dy + 12, dx : dx + 10])
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) == 49  # every offset occurs in 200 draws
    assert (out == 0).any() and not torch.equal(out, x)


def test_reflect_crop_mirrors_the_border_and_never_pads_with_zeros():
    x = images(n=100)
    out = random_crop(x, 2, gen(2), pad_mode="reflect")
    # Same offsets as the zero-padded crop (the generator draws the same numbers) ...
    zero = random_crop(x, 2, gen(2))
    inside = zero != 0
    assert torch.equal(out[inside], zero[inside])
    # ... but the border comes from the image's mirror, never zeros.
    assert not (out == 0).any()
    row = torch.nn.functional.pad(x.float(), (2, 2, 2, 2), mode="reflect")[0, 0, 0, 2:12]
    assert torch.equal(row, x[0, 0, 2].float())  # reflect: row -2 mirrors row 2
    with pytest.raises(ValueError, match="pad_mode must be"):
        CifarAugment(pad_mode="wrap")


def test_flip_mirrors_about_half_the_images_exactly():
    x = images(n=400)
    out = random_flip(x, gen(2))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert (flipped ^ kept).all()
    assert 150 < flipped.sum() < 250


def test_cutout_zeros_one_16px_square_clipped_at_the_borders():
    x = images(n=300, h=32, w=32)
    out = cutout(x, 16, gen(3))
    sizes = set()
    for o in out:
        hole = (o == 0).all(0)  # (H, W): zeroed in every channel
        assert torch.equal((o == 0).any(0), hole)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        # A single axis-aligned box: the zeroed set is the product of its rows and columns.
        assert hole.sum() == len(rows) * len(cols)
        assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1))
        assert torch.equal(cols, torch.arange(cols[0], cols[-1] + 1))
        assert 8 <= len(rows) <= 16 and 8 <= len(cols) <= 16
        # Interior boxes are exactly 16 px; clipped ones touch the border.
        for idx, n in ((rows, len(rows)), (cols, len(cols))):
            assert n == 16 or idx[0] == 0 or idx[-1] == 31
        sizes.add((len(rows), len(cols)))
    assert (16, 16) in sizes and len(sizes) > 5


def test_augmentation_is_a_function_of_the_seed():
    x = images()
    aug = CifarAugment(4, True, 8)
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


def test_loader_applies_augment_to_uint8_and_shards_the_global_batch():
    x, y = images(n=40, h=8, w=8), torch.arange(40)
    seen = []

    def record(batch, g):
        seen.append(batch.dtype)
        return batch

    full = list(TensorLoader(x, y, 8, shuffle=True, seed=3, augment=CifarAugment(2, True, 4)))
    assert all(b.dtype == torch.float32 for b, _ in full)
    list(TensorLoader(x, y, 8, augment=record))
    assert seen == [torch.uint8] * 5
    shards = [
        list(
            TensorLoader(
                x,
                y,
                8,
                shuffle=True,
                seed=3,
                augment=CifarAugment(2, True, 4),
                rank=r,
                world_size=2,
            )
        )
        for r in range(2)
    ]
    for (xb, yb), (x0, y0), (x1, y1) in zip(full, *shards):
        assert len(y0) == len(y1) == 4
        assert torch.equal(torch.cat([y0, y1]), yb) and torch.equal(torch.cat([x0, x1]), xb)
    with pytest.raises(ValueError, match="divisible by world_size"):
        TensorLoader(x, y, 7, rank=0, world_size=2)
