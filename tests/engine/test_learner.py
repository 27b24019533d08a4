import io

import pytest
import torch
from torch import nn

from mlrepro.engine import Callback, History, LambdaCallback, Learner, ProgressBar, StopTraining


def make_data(n=256, d=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, classes, generator=g)
    return x, (x @ w).argmax(1)


class Batches:
    """A minimal re-iterable batch source with len() and set_epoch()."""

    def __init__(self, x, y, bs):
        self.x, self.y, self.bs, self.epochs_seen = x, y, bs, []

    def set_epoch(self, e):
        self.epochs_seen.append(e)

    def __len__(self):
        return (len(self.x) + self.bs - 1) // self.bs

    def __iter__(self):
        for i in range(0, len(self.x), self.bs):
            yield self.x[i : i + self.bs], self.y[i : i + self.bs]


def make_learner(lr=0.1, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return Learner(model, opt, nn.CrossEntropyLoss(), metrics=["accuracy"], device="cpu", **kw)


def test_fit_learns_and_history_has_one_row_per_epoch():
    x, y = make_data()
    learner = make_learner()
    data = Batches(x, y, 32)
    hist = learner.fit(data, 5, val_data=Batches(x, y, 64))
    assert isinstance(hist, History)
    assert hist.epoch == [1, 2, 3, 4, 5]
    assert data.epochs_seen == [0, 1, 2, 3, 4]
    assert hist.history["loss"][-1] < hist.history["loss"][0] * 0.5
    assert hist.history["val_accuracy"][-1] > 0.9
    assert learner.evaluate(Batches(x, y, 64))["accuracy"] == pytest.approx(
        hist.history["val_accuracy"][-1]
    )


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_fit_begin(self, learner):
        self.events.append("fit_begin")

    def on_epoch_begin(self, learner):
        self.events.append("epoch_begin")

    def on_batch_begin(self, learner):
        self.events.append("batch_begin")

    def on_batch_end(self, learner, logs):
        self.events.append("batch_end")

    def on_epoch_end(self, learner, logs):
        self.events.append("epoch_end")

    def on_fit_end(self, learner):
        self.events.append("fit_end")


def test_callback_events_fire_in_order():
    x, y = make_data(n=64)
    rec = Recorder()
    make_learner().fit(Batches(x, y, 32), 2, callbacks=[rec])
    epoch = ["epoch_begin"] + ["batch_begin", "batch_end"] * 2 + ["epoch_end"]
    assert rec.events == ["fit_begin", *epoch, *epoch, "fit_end"]


def test_stop_training_ends_fit_cleanly_and_keeps_reason():
    x, y = make_data(n=64)
    learner = make_learner()

    def stop(lrn, logs):
        if lrn.epoch == 2:
            raise StopTraining("enough")

    rec = Recorder()
    hist = learner.fit(Batches(x, y, 32), 10, callbacks=[LambdaCallback(on_epoch_end=stop), rec])
    assert learner.epoch == 2 and len(hist.rows) == 2
    assert learner.stop_reason == "enough"
    assert rec.events[-1] == "fit_end"


def test_nan_loss_stops_training():
    x, y = make_data(n=64)
    x[0, 0] = float("nan")
    learner = make_learner()
    learner.fit(Batches(x, y, 64), 3)
    assert learner.epoch == 0 and "NaN" in learner.stop_reason


@pytest.mark.parametrize("interval,expected", [("batch", 4 * 3), ("epoch", 3)])
def test_scheduler_steps_per_batch_or_per_epoch(interval, expected):
    x, y = make_data(n=128)
    learner = make_learner()
    sched = torch.optim.lr_scheduler.StepLR(learner.optimizer, step_size=1, gamma=0.5)
    learner.scheduler, learner.scheduler_interval = sched, interval
    learner.fit(Batches(x, y, 32), 3)
    assert sched.last_epoch == expected
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**expected)


@pytest.mark.parametrize(
    "interval,expected", [("batch", [0.1 * 0.5**3, 0.1 * 0.5**7]), ("epoch", [0.1, 0.05])]
)
def test_history_logs_the_lr_of_each_epochs_last_step(interval, expected):
    x, y = make_data(n=128)
    learner = make_learner()
    learner.scheduler = torch.optim.lr_scheduler.StepLR(learner.optimizer, step_size=1, gamma=0.5)
    learner.scheduler_interval = interval
    hist = learner.fit(Batches(x, y, 32), 2)
    assert [r["lr"] for r in hist.rows] == pytest.approx(expected)


def test_history_lr_stays_inside_a_finished_onecycle():
    x, y = make_data(n=128)
    learner = make_learner()
    learner.scheduler = torch.optim.lr_scheduler.OneCycleLR(
        learner.optimizer, max_lr=1.0, total_steps=8, anneal_strategy="linear"
    )
    learner.scheduler_interval = "batch"
    hist = learner.fit(Batches(x, y, 32), 2)
    assert hist.rows[-1]["lr"] == pytest.approx(1.0 / 25 / 1e4)


def test_max_steps_ends_mid_epoch_and_logs_the_partial_epoch():
    # 4 batches an epoch, 10 steps: epochs 1 and 2 whole, epoch 3 ends after its second batch;
    # a 1cycle laid out over exactly those 10 steps is long enough (it is not for 3 epochs).
    x, y = make_data(n=128)
    learner = make_learner()
    learner.scheduler = torch.optim.lr_scheduler.OneCycleLR(
        learner.optimizer, max_lr=1.0, total_steps=10
    )
    learner.scheduler_interval = "batch"
    rec = Recorder()
    hist = learner.fit(Batches(x, y, 32), 3, callbacks=[rec], max_steps=10)
    assert learner.global_step == 10 and learner.epoch == 3 and len(hist.rows) == 3
    assert rec.events.count("batch_end") == 10 and learner.scheduler.last_epoch == 10
    assert learner.stop_reason is None  # the budget was the run's length, not an early stop
    # more epochs than the budget needs: fit stops at the budget and says so
    more = learner.fit(Batches(x, y, 32), 5, max_steps=10)
    assert learner.epoch == 3 and len(more.rows) == 3 and "max_steps (10)" in learner.stop_reason
    with pytest.raises(ValueError, match="steps left"):
        short = make_learner()
        short.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            short.optimizer, max_lr=1.0, total_steps=10
        )
        short.scheduler_interval = "batch"
        short.fit(Batches(x, y, 32), 3, max_steps=11)
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        make_learner().fit(Batches(x, y, 32), 1, max_steps=0)


def test_bad_arguments_are_rejected():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="scheduler_interval"):
        Learner(model, scheduler_interval="step")
    with pytest.raises(ValueError, match="precision"):
        Learner(model, precision="fp8")
    with pytest.raises(ValueError, match="unknown metric 'f1'; valid: accuracy"):
        Learner(model, metrics=["f1"])
    with pytest.raises(ValueError, match="optimizer and a loss_fn"):
        Learner(model).fit([], 1)


def test_bf16_and_channels_last_train_a_convnet():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 8, 8)
    y = (x.mean((1, 2, 3)) > 0).long()
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 2))
    learner = Learner(
        model,
        torch.optim.Adam(model.parameters(), 1e-2),
        nn.CrossEntropyLoss(),
        device="cpu",
        precision="bf16",
        channels_last=True,
    )
    hist = learner.fit(Batches(x, y, 16), 3)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    out = learner.predict(x)
    assert out.shape == (32, 2) and out.dtype == torch.float32


def test_predict_accepts_tensor_or_batches_and_matches_model():
    x, y = make_data(n=50)
    learner = make_learner()
    expected = learner.model.eval()(x)
    assert torch.allclose(learner.predict(x, batch_size=16), expected, atol=1e-6)
    assert torch.allclose(learner.predict(Batches(x, y, 7)), expected, atol=1e-6)


def test_progress_bar_writes_one_line_per_epoch_when_not_a_terminal():
    x, y = make_data(n=64)
    stream = io.StringIO()
    make_learner().fit(Batches(x, y, 32), 2, callbacks=[ProgressBar(stream=stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/2") and "loss:" in lines[0] and "accuracy:" in lines[0]


def test_progress_bar_live_mode_shows_eta_and_running_metrics():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    x, y = make_data(n=64)
    stream = Tty()
    make_learner().fit(Batches(x, y, 16), 1, callbacks=[ProgressBar(stream=stream, refresh_s=0)])
    text = stream.getvalue()
    assert "[" in text and "<" in text and "loss:" in text  # bar, elapsed<eta, running loss
    assert text.rstrip().splitlines()[-1].lstrip("\r").startswith("Epoch 1/1")


def test_progress_reports_whole_lines_at_a_slow_period_off_a_terminal(monkeypatch):
    from mlrepro.engine import progress

    clock = iter(range(0, 10_000, 10))  # every update is 10 s after the previous one
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = progress.Progress(100, "attack", unit="image", stream=stream, every_s=30)
    for _ in range(10):
        bar.update(10)
    bar.close("done")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and lines[-1] == "done"
    assert 2 <= len(lines) - 1 <= 4  # one line per 30 s, not one per update
    assert lines[0].startswith("attack 30/100 00:30<01:10") and "image/s" in lines[0]
