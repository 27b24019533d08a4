"""Throughput: mlrepro.keras.Sequential vs Keras 3 (torch backend) on the Keras post's convnet.

Same network (conv 32 → pool → conv 64 → pool → dense 1024 → dense 256 → dense 10, 3,529,354
parameters), same random-but-fixed data (channels-last float32 images, one-hot labels), same batch
size, same optimizer (Adadelta, lr 1.0) and loss; each library runs `fit` for one epoch of
`--steps` steps with verbose=0. A plain-PyTorch loop over the same network (NCHW, fp32) is timed as
a reference. The timings alternate between the contenders so machine load hits all alike; the
median of `--repeats` runs is reported after one untimed warm-up each, and the ratio comes from
this one run.

Run:   python benchmarks/bench_fit_vs_keras.py  (needs Keras 3: pip install 'mlrepro[keras-bench]')
       python benchmarks/bench_fit_vs_keras.py --steps 100 --repeats 5 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: torch against torch

import numpy as np
import torch
from torch import nn


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    return x, y


def blog_layers(lib):
    """The post's layer stack, for either library (`lib` has Conv2D, MaxPooling2D, ...)."""
    return [
        lib.Conv2D(32, (5, 5), padding="same"),
        lib.MaxPooling2D(padding="same"),
        lib.Conv2D(64, (5, 5), padding="same"),
        lib.MaxPooling2D(padding="same"),
        lib.Flatten(),
        lib.Dense(1024, activation="relu"),
        lib.Dropout(0.5),
        lib.Dense(256, activation="relu"),
        lib.Dropout(0.5),
        lib.Dense(10, activation="softmax"),
    ]


def keras_model(precision: str):
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    model = keras.Sequential([keras.Input((28, 28, 1)), *blog_layers(keras.layers)])
    model.compile(
        optimizer=keras.optimizers.Adadelta(learning_rate=1.0),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def mlrepro_model(precision: str):
    from mlrepro import keras as mk

    model = mk.Sequential([mk.Input((28, 28, 1)), *blog_layers(mk.layers)])
    model.compile(
        optimizer=mk.optimizers.Adadelta(learning_rate=1.0),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        precision=precision,
    )
    return model


class PlainTorch:
    """The reference: the same network as a torch module, NCHW fp32, a textbook training loop."""

    def __init__(self):
        from mlrepro.nn import create_model

        self.model = create_model("keras_convnet_mnist")
        self.opt = torch.optim.Adadelta(self.model.parameters(), lr=1.0, rho=0.95, eps=1e-7)

    def fit(self, x, y, batch_size):
        x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NCHW, as plain torch code has it
        y = torch.from_numpy(y)
        self.model.train()
        for i in range(0, len(x), batch_size):
            loss = nn.functional.cross_entropy(
                self.model(x[i : i + batch_size]), y[i : i + batch_size]
            )
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


def timed_fit(name, model, x, y, batch_size) -> float:
    start = time.perf_counter()
    if name == "plain torch":
        model.fit(x, y, batch_size)
    else:
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="optimizer steps per timed fit")
    p.add_argument("--batch-size", type=int, default=50, help="the post's batch size")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="both libraries: fp32, or bf16 autocast (Keras: mixed_bfloat16 policy)",
    )
    p.add_argument("--no-plain-torch", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import keras
    except ImportError:
        print("skipped: Keras 3 is not installed (pip install 'mlrepro[keras-bench]')")
        return

    torch.manual_seed(0)
    x, y = make_data(args.steps * args.batch_size)
    contenders = {"keras": keras_model(args.precision), "mlrepro": mlrepro_model(args.precision)}
    if not args.no_plain_torch:
        contenders["plain torch"] = PlainTorch()
    warm = slice(0, 5 * args.batch_size)
    for name, model in contenders.items():
        timed_fit(name, model, x[warm], y[warm], args.batch_size)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, model in contenders.items():
            rates[name].append(timed_fit(name, model, x, y, args.batch_size))

    print(
        f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} logical cores), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), keras {keras.__version__} "
        f"(backend {keras.backend.backend()})"
    )
    print(
        f"Keras post's convnet, batch {args.batch_size}, {args.steps} steps per fit, "
        f"{args.precision}, median of {args.repeats}:"
    )
    med = {name: statistics.median(r) for name, r in rates.items()}
    for name, r in rates.items():
        print(
            f"  {name:<12} {med[name]:8.1f} images/s   (runs: {', '.join(f'{v:.0f}' for v in r)})"
        )
    print(f"mlrepro / keras: {med['mlrepro'] / med['keras']:.2f}x")
    if "plain torch" in med:
        print(
            f"keras / plain torch: {med['keras'] / med['plain torch']:.2f}x   "
            f"mlrepro / plain torch: {med['mlrepro'] / med['plain torch']:.2f}x"
        )


if __name__ == "__main__":
    main()
