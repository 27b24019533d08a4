"""Experience replay as preallocated tensors: uint8 frames, sampling is one `randint` + gather."""

from __future__ import annotations

import collections

import numpy as np
import torch


class ReplayMemory:
    """A ring buffer of transitions (s1, a, r, s2, done), overwritten oldest first.

    The blog keeps float32 frames and samples with `random.sample(range(size), 64)`, a Python list
    of 64 ints per update; here frames are uint8 (4× less memory, converted to [0, 1] floats in the
    sampled batch only) and indices come from one `torch.randint` call, uniform with replacement
    (as in DQN libraries; with 10,000 stored transitions a batch of 64 rarely repeats one).

    Args:
        obs_shape: one observation's shape, e.g. (1, 30, 45).
        generator: the RNG for sampling (its state is part of `state_dict`, so resuming is exact).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        *,
        device="cpu",
        generator: torch.Generator | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity, self.device = capacity, torch.device(device)
        # s1 and s2 side by side, so that a batch of both is one gather and one conversion.
        self.frames = torch.zeros((capacity, 2, *obs_shape), dtype=torch.uint8, device=self.device)
        self.s1, self.s2 = self.frames[:, 0], self.frames[:, 1]  # views
        self.a = torch.zeros(capacity, dtype=torch.long, device=self.device)
        self.r = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.done = torch.zeros(capacity, dtype=torch.float32, device=self.device)
        self.size = 0
        self.pos = 0
        self.generator = generator if generator is not None else torch.Generator()

    def __len__(self) -> int:
        return self.size

    def add(self, s1, a, r, s2, done) -> None:
        """Store a batch of n transitions: s1, s2 (n, *obs_shape) uint8; a, r, done (n,)."""
        s1 = torch.as_tensor(s1)
        n = s1.shape[0]
        if n > self.capacity:
            raise ValueError(f"adding {n} transitions to a memory of capacity {self.capacity}")
        idx = (self.pos + torch.arange(n)) % self.capacity  # wraps around: oldest overwritten
        idx = idx.to(self.device)
        self.s1[idx] = s1.to(self.device, torch.uint8)
        self.s2[idx] = torch.as_tensor(s2).to(self.device, torch.uint8)
        self.a[idx] = torch.as_tensor(a).to(self.device, torch.long)
        self.r[idx] = torch.as_tensor(r).to(self.device, torch.float32)
        self.done[idx] = torch.as_tensor(done).to(self.device, torch.float32)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, batch_size: int) -> torch.Tensor:
        if self.size == 0:
            raise ValueError("sampling from an empty replay memory")
        return torch.randint(0, self.size, (batch_size,), generator=self.generator).to(self.device)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        """(s1, a, r, s2, done): frames as float32 in [0, 1] (B, *obs_shape), the rest (B,)."""
        i = self.sample_indices(batch_size)
        frames = self.frames[i].float().div_(255)  # (B, 2, *obs_shape)
        return frames[:, 0], self.a[i], self.r[i], frames[:, 1], self.done[i]

    def state_dict(self) -> dict:
        n = self.size
        return {
            "s1": self.s1[:n].clone(),
            "s2": self.s2[:n].clone(),
            "a": self.a[:n].clone(),
            "r": self.r[:n].clone(),
            "done": self.done[:n].clone(),
            "pos": self.pos,
            "size": n,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        n = state["size"]
        if n > self.capacity:
            raise ValueError(
                f"checkpoint holds {n} transitions, more than capacity {self.capacity}"
            )
        for key in ("s1", "s2", "a", "r", "done"):
            getattr(self, key)[:n] = state[key].to(self.device)
        self.size, self.pos = n, state["pos"]
        self.generator.set_state(state["generator"])


class NStepTransitions:
    """Turns the 1-step transitions of `n_envs` environments into n-step ones (Sutton 1988;
    Rainbow, Hessel et al. 2018): (s_t, a_t, Σ_{k<n} γ^k r_{t+k}, s_{t+n}, done).

    A transition is emitted once n steps have followed it, or when its episode ends first; it is
    then terminal (done = 1), so its bootstrap term, γ^n Q(s_{t+n}), is never used and every
    non-terminal transition spans exactly n steps. Transitions of an episode cut off by the caller
    (never completed) are never emitted. With n = 1 this passes transitions through unchanged.
    """

    def __init__(self, n_envs: int, n: int, gamma: float):
        if n < 1:
            raise ValueError(f"n-step returns need n >= 1, got {n}")
        self.n, self.gamma = n, gamma
        # per environment: [s1, a, discounted reward so far, steps so far] of unfinished transitions
        self.pending: list[collections.deque] = [collections.deque() for _ in range(n_envs)]

    def add(self, s1, a, r, s2, done) -> tuple[np.ndarray, ...] | None:
        """One vector step (s1, s2 (N, ...); a, r, done (N,)) in; completed transitions out, or
        None."""
        out = []
        for i, pending in enumerate(self.pending):
            pending.append([s1[i], a[i], 0.0, 0])
            for t in pending:
                t[2] += self.gamma ** t[3] * float(r[i])
                t[3] += 1
            if done[i]:
                out += [(s, act, ret, s2[i], True) for s, act, ret, _ in pending]
                pending.clear()
            elif len(pending) == self.n:
                s, act, ret, _ = pending.popleft()
                out.append((s, act, ret, s2[i], False))
        if not out:
            return None
        s1_out, a_out, r_out, s2_out, done_out = zip(*out)
        return (
            np.stack(s1_out),
            np.asarray(a_out),
            np.asarray(r_out, np.float32),
            np.stack(s2_out),
            np.asarray(done_out),
        )
