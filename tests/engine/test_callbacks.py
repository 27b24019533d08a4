import pytest
import torch
from torch import nn

from mlrepro.engine import Callback, Learner, LookaheadEMA, StopTraining


def make_learner(callbacks=()):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Learner(model, opt, nn.CrossEntropyLoss(), device="cpu", callbacks=callbacks)


def batches(n_batches=6, bs=16):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_batches * bs, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return [(x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs)]


class Recorder(Callback):
    """Snapshots the float state after every step, taken after LookaheadEMA has acted."""

    def __init__(self):
        self.states = []

    def on_batch_end(self, learner, logs):
        self.states.append(
            {k: v.clone() for k, v in learner.model.state_dict().items() if v.is_floating_point()}
        )


def test_lookahead_ema_matches_the_reference_recurrence():
    data = batches()
    ema_cb, rec = LookaheadEMA(every=2, start_epoch=1, decay=0.9, power=1.0), Recorder()
    learner = make_learner([ema_cb, rec])
    plain, plain_rec = make_learner([]), Recorder()

    # Reference: replay the same optimisation steps by hand on a twin learner.
    learner.fit(data, 3)
    steps_per_epoch, total = len(data), 3 * len(data)
    plain.callbacks = [plain_rec]
    plain._active_callbacks = [plain_rec]
    plain.target_epochs, plain.steps_per_epoch = 3, steps_per_epoch
    ema = None
    for epoch in range(3):
        plain.epoch = epoch
        for batch in data:
            plain.train_step(batch)
            plain.global_step += 1
            weights = {k: v for k, v in plain.model.state_dict().items() if v.is_floating_point()}
            if epoch >= 1 and plain.global_step % 2 == 0:
                if ema is None:
                    ema = {k: v.clone() for k, v in weights.items()}
                else:
                    rho = 0.9**2 * (plain.global_step / total)
                    with torch.no_grad():
                        for k, w in weights.items():
                            ema[k] += (1 - rho) * (w - ema[k])
                            w.copy_(ema[k])
            plain_rec.on_batch_end(plain, {})
        if ema is not None:
            with torch.no_grad():
                for k, w in weights.items():
                    w.copy_(ema[k])
    assert len(rec.states) == total
    for got, want in zip(rec.states, plain_rec.states):
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-6, atol=1e-6)
    # The average really acted: the final weights differ from plain training's.
    free = make_learner([])
    free.fit(data, 3)
    assert not torch.allclose(free.model[0].weight, learner.model[0].weight)


def test_lookahead_ema_before_its_start_epoch_changes_nothing():
    data = batches()
    with_cb, without = make_learner([LookaheadEMA(every=1, start_epoch=5)]), make_learner([])
    with_cb.fit(data, 2)
    without.fit(data, 2)
    for a, b in zip(with_cb.model.state_dict().values(), without.model.state_dict().values()):
        assert torch.equal(a, b)


def test_lookahead_ema_at_epoch_end_copies_the_average_back():
    data = batches(n_batches=5)
    cb = LookaheadEMA(every=2, start_epoch=0, decay=0.5, power=0.0)
    learner = make_learner([cb])
    learner.fit(data, 1)  # steps 2, 4 update; step 5 moved the weights away from the average
    for k, v in learner.model.state_dict().items():
        if v.is_floating_point():
            assert torch.equal(v, cb.ema[k])


class Killer(Callback):
    def __init__(self, after_epoch):
        self.after_epoch = after_epoch

    def on_epoch_end(self, learner, logs):
        if learner.epoch == self.after_epoch:
            raise StopTraining("killed")


@pytest.mark.parametrize("stop_at", [1, 2, 3])
def test_lookahead_ema_resumed_from_a_checkpoint_matches_an_unbroken_run(stop_at):
    data = batches(n_batches=5)
    kw = {"every": 2, "start_epoch": 1, "decay": 0.8, "power": 1.0}
    unbroken = make_learner([LookaheadEMA(**kw)])
    unbroken.fit(data, 4)
    first = make_learner([LookaheadEMA(**kw), Killer(stop_at)])
    first.fit(data, 4)  # the same run, killed after epoch `stop_at`
    assert first.epoch == stop_at
    state = first.state_dict()
    resumed = make_learner([LookaheadEMA(**kw)])
    resumed.load_state_dict(state)
    resumed.fit(data, 4)
    for (k, a), b in zip(unbroken.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("kw", [{"every": 0}, {"start_epoch": -1}, {"decay": 1.5}])
def test_lookahead_ema_rejects_bad_settings(kw):
    with pytest.raises(ValueError, match="LookaheadEMA needs"):
        LookaheadEMA(**kw)
