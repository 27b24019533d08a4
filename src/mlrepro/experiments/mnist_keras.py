"""The Keras post's MNIST convnet, written with mlrepro.keras as the post writes it.

Claim: the post's program (Adadelta, batch 50, 10 epochs) gives a "high performing" classifier; the
previous post's TF version reached 98 %; ours: ≥ 99.0 % test accuracy from the post's own code.
Run:   mlrepro run mnist-keras --seeds 0,1,2        Quick: mlrepro run mnist-keras --quick
The same program as a script: examples/keras_mnist.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..engine import Checkpoint, ProgressBar, RunLogger
from ..keras.datasets import fashion_mnist, mnist
from ..keras.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from ..keras.models import Sequential
from ..keras.optimizers import Adadelta
from ..keras.utils import to_categorical
from ..plotting import plot_history

CLAIM = "the post's Keras program; ours: ≥ 99.0 %"
HEADLINE = ("test_accuracy",)


@dataclass(frozen=True)
class Config:
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"  # blog: mnist
    epochs: int = 10  # blog
    batch_size: int = 50  # blog
    lr: float = 1.0  # blog: Adadelta() with Keras 2's default learning rate
    train_limit: int = 0  # ours: 0 = all 60,000 training images
    test_limit: int = 0  # ours: 0 = all 10,000 test images
    precision: Literal["fp32", "bf16"] = "fp32"  # ours

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")


PRESETS = {"quick": {"epochs": 1, "train_limit": 500, "test_limit": 500}}


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
    model.compile(optimizer=Adadelta(learning_rate=cfg.lr), loss="categorical_crossentropy",
                  metrics=["accuracy"], precision=cfg.precision)
    return model


def input_spec(cfg: Config) -> dict:
    """One input's shape: channels-last, pixels in [0, 1] as the post scales them."""
    return {"shape": (28, 28, 1)}


def run(cfg: Config, ctx) -> dict:
    num_classes = 10
    model = build_model(cfg)

    dataset = mnist if cfg.dataset == "mnist" else fashion_mnist
    (x_train, y_train), (x_test, y_test) = dataset.load_data(ctx.data_dir)
    if len(x_train) < 60_000:
        ctx.note(f"used the bundled {len(x_train)}-image {cfg.dataset} sample; "
                 "point --data-dir or MLREPRO_DATA at the full data")
    if cfg.train_limit:
        x_train, y_train = x_train[: cfg.train_limit], y_train[: cfg.train_limit]
    if cfg.test_limit:
        x_test, y_test = x_test[: cfg.test_limit], y_test[: cfg.test_limit]
    x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.
    x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255.
    y_train = to_categorical(y_train, num_classes)
    y_test = to_categorical(y_test, num_classes)

    # The run folder's history, checkpoints and progress: the engine's callbacks, passed to fit.
    callbacks = [RunLogger(ctx.run_dir), Checkpoint(ctx.run_dir, ctx.config)]
    if ctx.verbose:
        callbacks.append(ProgressBar())
    initial_epoch = 0
    if ctx.resume and (state := ctx.run_dir.load_checkpoint()) is not None:
        model.learner().load_state_dict(state)
        initial_epoch = model.learner().epoch
    if initial_epoch < cfg.epochs:
        model.fit(x_train, y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0,
                  callbacks=callbacks, initial_epoch=initial_epoch)
    rows = ctx.run_dir.history()
    plot_history(rows, ctx.run_dir.plot_path("curves.png"), f"Keras post's convnet on {cfg.dataset}")

    loss, accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    return {"test_accuracy": accuracy, "test_loss": loss, "train_accuracy": rows[-1]["accuracy"],
            "epochs": len(rows), "params": model.count_params()}
