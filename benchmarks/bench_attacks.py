"""FGSM and PGD-10 on the MNIST CNN over the test set: mlrepro.attacks vs torchattacks 3.5.1.

Both get the same model (the TF post's CNN with its normalisation inside), the same [0, 1] test
images and the same batches; PGD starts at the input (no random start) so the outputs must agree.
Timings alternate between the two libraries so machine load hits both alike; the best of
`--repeats` runs is reported after one untimed warm-up each. Prints throughput (images/s), the
ratio ours/theirs (> 1: mlrepro is faster) and max |Δ| between the adversarial images.

Run:   python benchmarks/bench_attacks.py [--run-dir RUNS/mnist-cnn/...] [--threads 2]
       (needs `pip install --no-deps torchattacks==3.5.1`; without --run-dir a CNN is trained
       for one epoch on 10,000 images first)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch


def load_model(run_dir: str | None, data_dir: str | None):
    from mlrepro.export import load_run_model
    from mlrepro.runner import run_experiment

    if run_dir is None:
        out = tempfile.mkdtemp(prefix="bench-attacks-")
        rd, m = run_experiment(
            "mnist-cnn",
            overrides={"train_limit": 10_000, "epochs": 1},
            out=out,
            device="cpu",
            data_dir=data_dir,
            verbose=False,
        )
        print(
            "trained mnist-cnn for 1 epoch on 10,000 images: "
            f"test accuracy {m['test_accuracy']:.4f}"
        )
        run_dir = str(rd.path)
    model, _, _ = load_run_model(run_dir)
    return model.eval()


def batched(fn, x, y, bs):
    return torch.cat([fn(x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--run-dir", default=None, help="a trained mnist-cnn (or adv-train-mnist) run folder"
    )
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=10_000, help="test images (default: all 10,000)")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import torchattacks

    from mlrepro.attacks import fgsm, pgd
    from mlrepro.data import load_dataset

    model = load_model(args.run_dir, args.data_dir)
    test = load_dataset("mnist", "test", args.data_dir)
    x = test.images[: args.limit].float().div(255)
    y = test.labels[: args.limit]
    eps, alpha = args.eps, args.eps / 4
    contenders = {
        "FGSM": (lambda xb, yb: fgsm(model, xb, yb, eps), torchattacks.FGSM(model, eps=eps)),
        "PGD-10": (
            lambda xb, yb: pgd(model, xb, yb, eps, alpha=alpha, steps=10, random_start=False),
            torchattacks.PGD(model, eps=eps, alpha=alpha, steps=10, random_start=False),
        ),
    }
    print(
        f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} logical cores), "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"torchattacks {torchattacks.__version__}, "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    print(f"{len(x)} MNIST test images, batch {args.batch_size}, eps {eps}, PGD alpha {alpha}")
    for name, (ours, theirs) in contenders.items():
        best = {"mlrepro": float("inf"), "torchattacks": float("inf")}
        outs = {}
        batched(ours, x[: args.batch_size], y[: args.batch_size], args.batch_size)  # warm-up
        batched(theirs, x[: args.batch_size], y[: args.batch_size], args.batch_size)
        for _ in range(args.repeats):
            for label, fn in (("mlrepro", ours), ("torchattacks", theirs)):
                start = time.perf_counter()
                outs[label] = batched(fn, x, y, args.batch_size)
                best[label] = min(best[label], time.perf_counter() - start)
        diff = (outs["mlrepro"] - outs["torchattacks"]).abs().max().item()
        with torch.no_grad():
            acc = (
                (batched(lambda xb, _: model(xb).argmax(1), outs["mlrepro"], y, 1000) == y)
                .float()
                .mean()
            )
        ratio = best["torchattacks"] / best["mlrepro"]
        print(
            f"{name:>7}: mlrepro {len(x) / best['mlrepro']:8.0f} img/s ({best['mlrepro']:.1f} s), "
            f"torchattacks {len(x) / best['torchattacks']:8.0f} img/s "
            f"({best['torchattacks']:.1f} s), "
            f"ratio {ratio:.3f}x; max |Δ| = {diff:.1e}; accuracy under attack {acc:.4f}"
        )


if __name__ == "__main__":
    main()
