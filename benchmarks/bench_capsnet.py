"""CapsNet training step on MNIST: images per second, ours vs a port written like the public ones.

The port below follows the best-known public PyTorch port (XifengGuo/CapsNet-Pytorch): W of shape
(10, 1152, 16, 8) multiplied by u broadcast to (B, 1, 1152, 8, 1), i.e. B × 11,520 matmuls of
(16 × 8) @ (8 × 1); routing by broadcasting c (B, 10, 1152, 1) against û and summing; the margin
loss plus 0.392 × MSE (= 0.0005 × sum of squared errors); torch's default Adam. One change from
that port: its PrimaryCaps groups 8 consecutive values of the flattened (channel, row, column)
output into a capsule; here, as in the paper and in ours, a capsule is 8 channels at one position,
so both models compute the same function and the check below compares them at the same weights.

Ours: û in one batched matmul into a reused buffer, routing as batched matmuls in a parent-major
view, the backward of the last routing step written out (mlrepro.nn.capsnet), fused Adam.

Both train on the same batch of 100 real MNIST images (the port's batch size), fp32 and bf16
autocast, each timed over --steps steps after one warm-up step, in one process.
Run:   python benchmarks/bench_capsnet.py                 (≈ 2 minutes at 2 threads)
       python benchmarks/bench_capsnet.py --steps 2 --no-bf16
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from mlrepro.data import load_mnist
from mlrepro.nn.capsnet import CapsNet, capsnet_loss


# --- the port ---------------------------------------------------------------------------------
def port_squash(inputs, axis=-1):
    norm = torch.norm(inputs, p=2, dim=axis, keepdim=True)
    scale = norm**2 / (1 + norm**2) / (norm + 1e-8)
    return scale * inputs


class PortDenseCapsule(nn.Module):
    def __init__(self, in_num_caps, in_dim_caps, out_num_caps, out_dim_caps, routings=3):
        super().__init__()
        self.in_num_caps, self.out_num_caps, self.routings = in_num_caps, out_num_caps, routings
        self.weight = nn.Parameter(
            0.01 * torch.randn(out_num_caps, in_num_caps, out_dim_caps, in_dim_caps)
        )

    def forward(self, x):
        # weight (10, 1152, 16, 8) @ x (B, 1, 1152, 8, 1) → x_hat (B, 10, 1152, 16)
        x_hat = torch.squeeze(torch.matmul(self.weight, x[:, None, :, :, None]), dim=-1)
        x_hat_detached = x_hat.detach()
        b = torch.zeros(x.size(0), self.out_num_caps, self.in_num_caps, device=x.device)
        for i in range(self.routings):
            c = F.softmax(b, dim=1)
            if i == self.routings - 1:
                outputs = port_squash(torch.sum(c[:, :, :, None] * x_hat, dim=-2, keepdim=True))
            else:
                outputs = port_squash(
                    torch.sum(c[:, :, :, None] * x_hat_detached, dim=-2, keepdim=True)
                )
                b = b + torch.sum(outputs * x_hat_detached, dim=-1)
        return torch.squeeze(outputs, dim=-2)


class PortPrimaryCapsule(nn.Module):
    def __init__(self, in_channels, out_channels, dim_caps, kernel_size, stride=1):
        super().__init__()
        self.dim_caps = dim_caps
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride)

    def forward(self, x):
        outputs = self.conv2d(x)  # (B, 256, 6, 6)
        b = x.size(0)
        # The paper's capsules: 8 channels at one position (the port: 8 consecutive flat values).
        outputs = outputs.view(b, -1, self.dim_caps, outputs.size(2) * outputs.size(3))
        return port_squash(outputs.permute(0, 1, 3, 2).reshape(b, -1, self.dim_caps))


class PortCapsuleNet(nn.Module):
    def __init__(self, routings=3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 256, kernel_size=9, stride=1, padding=0)
        self.primarycaps = PortPrimaryCapsule(256, 256, 8, kernel_size=9, stride=2)
        self.digitcaps = PortDenseCapsule(32 * 6 * 6, 8, 10, 16, routings)
        self.decoder = nn.Sequential(
            nn.Linear(16 * 10, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 784),
            nn.Sigmoid(),
        )
        self.relu = nn.ReLU()

    def forward(self, x, y=None):
        x = self.relu(self.conv1(x))
        x = self.primarycaps(x)
        x = self.digitcaps(x)
        length = x.norm(dim=-1)
        if y is None:
            index = length.max(dim=1)[1]
            y = torch.zeros(length.size()).scatter_(1, index.view(-1, 1), 1.0)
        reconstruction = self.decoder((x * y[:, :, None]).view(x.size(0), -1))
        return length, reconstruction.view(-1, 1, 28, 28)


def port_loss(y_true, y_pred, x, x_recon, lam_recon=0.0005 * 784):
    L = (
        y_true * torch.clamp(0.9 - y_pred, min=0.0) ** 2
        + 0.5 * (1 - y_true) * torch.clamp(y_pred - 0.1, min=0.0) ** 2
    )
    return L.sum(dim=1).mean() + lam_recon * nn.MSELoss()(x_recon, x)


def port_from_ours(ours: CapsNet) -> PortCapsuleNet:
    """The port with our weights (W reshaped from (I, K, J*D) to (J, I, D, K))."""
    port = PortCapsuleNet(ours.digits.iterations)
    state = {k: v for k, v in ours.state_dict().items()}
    with torch.no_grad():
        port.conv1.load_state_dict({"weight": state["conv1.weight"], "bias": state["conv1.bias"]})
        port.primarycaps.conv2d.load_state_dict(
            {"weight": state["primary.conv.weight"], "bias": state["primary.conv.bias"]}
        )
        w = ours.digits.weight  # (I, K, J*D)
        port.digitcaps.weight.copy_(w.view(w.shape[0], w.shape[1], 10, -1).permute(2, 0, 3, 1))
        port.decoder.load_state_dict(ours.decoder.state_dict())
    return port


# --- timing -----------------------------------------------------------------------------------
def make_steps(ours: CapsNet, port: PortCapsuleNet, x: torch.Tensor, y: torch.Tensor):
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-3, fused=True)
    opt_port = torch.optim.Adam(port.parameters(), lr=1e-3)
    y_onehot = F.one_hot(y, 10).float()

    def ours_step():
        loss, _ = capsnet_loss(ours, x, y)
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()

    def port_step():
        length, recon = port(x, y_onehot)
        loss = port_loss(y_onehot, length, x, recon)
        opt_port.zero_grad(set_to_none=True)
        loss.backward()
        opt_port.step()

    return {"ours": ours_step, "port": port_step}


def images_per_s(step, autocast, batch: int, steps: int) -> float:
    with autocast():
        step()  # warm-up: oneDNN primitives, buffers
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return batch * steps / (time.perf_counter() - start)


def check_same_function(ours: CapsNet, port: PortCapsuleNet, x, y) -> None:
    with torch.no_grad():
        v = ours.capsules(x)
        length, recon = port(x, F.one_hot(y, 10).float())
        loss_ours, _ = capsnet_loss(ours, x, y)
        loss_port = port_loss(F.one_hot(y, 10).float(), length, x, recon)
    print(
        "same weights, same batch: "
        f"max |Δ length| = {(v.norm(dim=-1) - length).abs().max().item():.2e}, "
        f"max |Δ reconstruction| = {(ours.reconstruct(v, y) - recon).abs().max().item():.2e}, "
        f"loss {loss_ours.item():.6f} vs {loss_port.item():.6f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mnist = load_mnist("train", args.data_dir)
    x = mnist.images[: args.batch_size].float() / 255
    y = mnist.labels[: args.batch_size]
    ours = CapsNet()
    port = port_from_ours(ours)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, "
        f"load {os.getloadavg()[0]:.2f}, batch {args.batch_size}, {args.steps} timed steps"
    )
    check_same_function(ours, port, x, y)
    steps = make_steps(ours, port, x, y)
    precisions = {"fp32": contextlib.nullcontext}
    if not args.no_bf16:
        precisions["bf16"] = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    for name, autocast in precisions.items():
        rates = {
            k: images_per_s(fn, autocast, args.batch_size, args.steps) for k, fn in steps.items()
        }
        print(
            f"{name}: ours {rates['ours']:.1f} images/s, port {rates['port']:.1f} images/s, "
            f"RATIO ours/port = {rates['ours'] / rates['port']:.2f}x",
            flush=True,
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
