"""Resuming from a checkpoint continues training bit for bit (on CPU, same seed)."""

import torch
from torch import nn

from mlrepro.data.loader import TensorLoader
from mlrepro.engine import Checkpoint, Learner, RunDir, seed_everything


def build(seed):
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=6 * 8)
    return Learner(
        model, opt, nn.CrossEntropyLoss(), scheduler=sched, metrics=["accuracy"], device="cpu"
    )


def data(seed):
    g = torch.Generator().manual_seed(123)
    x = torch.randn(250, 10, generator=g)
    y = (x[:, :4] * 3).argmax(1)
    return TensorLoader(x, y, 32, shuffle=True, seed=seed)  # 8 batches


def test_resume_matches_uninterrupted_run_exactly(tmp_path):
    full = build(0)
    full.fit(data(0), 6)

    rd = RunDir(tmp_path)
    first = build(0)
    first.fit(data(0), 3, callbacks=[Checkpoint(rd)])
    # A new process: fresh objects, RNG moved on, then restore.
    second = build(0)
    torch.rand(1000)
    second.load_state_dict(rd.load_checkpoint())
    assert second.epoch == 3
    second.fit(data(0), 6)

    for a, b in zip(full.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert full.history.rows[-1]["loss"] == second.history.rows[-1]["loss"]
    assert [r["epoch"] for r in second.history.rows] == [1, 2, 3, 4, 5, 6]
    assert second.scheduler.last_epoch == 6 * 8  # 1cycle did not over-step after resume


def test_loader_batches_depend_only_on_seed_and_epoch():
    a, b = data(5), data(5)
    a.set_epoch(2)
    b.set_epoch(0)
    list(b)
    b.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = data(5)
    c.set_epoch(3)
    assert not torch.equal(next(iter(a))[1], next(iter(c))[1])
