"""The Keras post's MNIST convnet, written with mlrepro.keras as the post writes it.

Claim: the post's program (Adadelta, batch 50, 10 epochs) gives a "high performing" classifier; the
previous post's TF version reached 98 %; ours: ≥ 99.0 % test accuracy from the post's own code.
Run:   mlrepro run mnist-keras --seeds 0,1,2        Quick: mlrepro run mnist-keras --quick
The same program as a script: examples/keras_mnist.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from ..config import ExperimentConfig, opt
from ..experiment import DataSpec, Experiment, Preset, RunContext
from ..keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from ..keras.models import Sequential
from ..keras.optimizers import Adadelta
from ..keras.utils import to_categorical
from ..plotting import plot_history


@dataclass(frozen=True)
class Config(ExperimentConfig):
    dataset: Literal["mnist", "fashion-mnist"] = opt("mnist", "blog", "the dataset to train on")
    epochs: int = opt(10, "blog", "training epochs", ge=1)
    batch_size: int = opt(50, "blog", "minibatch size", ge=1)
    lr: float = opt(1.0, "blog", "Adadelta's learning rate (Keras 2's default)", gt=0)
    train_limit: int = opt(0, "ours", "training images used (0 = all 60,000)", ge=0)
    test_limit: int = opt(0, "ours", "test images used (0 = all 10,000)", ge=0)
    precision: Literal["fp32", "bf16"] = opt("fp32", "ours", "training precision (bf16 autocast)")


PRESETS = {
    "quick": Preset(
        {"epochs": 1, "train_limit": 500, "test_limit": 500},
        "smoke test: one epoch on 500 images",
        "seconds",
    )
}


def build_model(cfg: Config | None = None) -> Sequential:
    """The post's model, line by line (its `input_shape` moved from add() into the layer)."""
    cfg = cfg or Config()
    model = Sequential()
    model.add(Conv2D(32, (5, 5), padding="same", input_shape=(28, 28, 1)))
    model.add(MaxPooling2D(padding="same"))
    model.add(Conv2D(64, (5, 5), padding="same"))
    model.add(MaxPooling2D(padding="same"))
    model.add(Flatten())
    model.add(Dense(1024, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(256, activation="relu"))
    model.add(Dropout(0.5))
    model.add(Dense(10, activation="softmax"))
    model.compile(
        optimizer=Adadelta(learning_rate=cfg.lr),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        precision=cfg.precision,
    )
    return model


def network(cfg: Config) -> nn.Module:
    """The torch module behind the post's model: what a run's checkpoint holds."""
    return build_model(cfg).net


def data_spec(cfg: Config) -> DataSpec:
    """Channels-last inputs, pixels in [0, 1] as the post scales them; softmax outputs."""
    return DataSpec(cfg.dataset, (28, 28, 1), 10, channels_last=True, scores="probabilities")


def run(cfg: Config, ctx: RunContext) -> dict:
    num_classes = 10
    model = build_model(cfg)

    # The post's `mnist.load_data()`, through the run's data loader (which records what was read).
    train, test = ctx.load(cfg.dataset, "train", "test")
    (x_train, y_train), (x_test, y_test) = (
        (train.images[:, 0].numpy(), train.labels.numpy()),
        (test.images[:, 0].numpy(), test.labels.numpy()),
    )
    if cfg.train_limit:
        x_train, y_train = x_train[: cfg.train_limit], y_train[: cfg.train_limit]
    if cfg.test_limit:
        x_test, y_test = x_test[: cfg.test_limit], y_test[: cfg.test_limit]
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255.0
    y_train = to_categorical(y_train, num_classes)
    y_test = to_categorical(y_test, num_classes)

    # The run's lifecycle (restore on --resume; history, checkpoint, progress) as fit's callbacks.
    callbacks = ctx.lifecycle(model.learner())
    initial_epoch = model.learner().epoch
    if initial_epoch < cfg.epochs:
        model.fit(
            x_train,
            y_train,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            verbose=0,
            callbacks=callbacks,
            initial_epoch=initial_epoch,
        )
    rows = ctx.run_dir.history()
    plot_history(
        rows,
        ctx.run_dir.plot_path("curves.png"),
        f"Keras post's convnet on {cfg.dataset}",
        steps=ctx.run_dir.steps(),
    )

    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    return {
        "test_accuracy": accuracy,
        "test_loss": loss,
        "train_accuracy": rows[-1]["accuracy"],
        "epochs": len(rows),
        "params": model.count_params(),
    }


EXPERIMENT = Experiment(
    name="mnist-keras",
    config=Config,
    run=run,
    presets=PRESETS,
    summary=__doc__.splitlines()[0],
    claim="the post's Keras program; ours: ≥ 99.0 %",
    headline=("test_accuracy",),
    data=data_spec,
    build_model=network,
)
