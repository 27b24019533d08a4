"""DQN on ViZDoom basic: environment steps per second, ours vs a loop written like the blog's.

The blog's loop (after ViZDoom's 2018 `learning_pytorch.py`): one DoomGame rendering 640×480,
each frame resized to 30×45 float32, a float32 replay memory sampled with `random.sample`, and one
update per environment step whose targets come from two extra forward passes (`self(s2)`,
`self(s1)`) before the trained one. Ours: the engine renders 160×120 in a worker process and plays
while the network learns, uint8 replay sampled with one `torch.randint`, batched action choice.

Both sides do exactly one update of a 64-transition batch per environment step (after the first
64 steps), with the blog's network. Rows:
  env alone          random actions, no learning
  env + learning     the blog's update rule on both sides; ours also with the improved rule
                     (target net, Double DQN, dueling head, Huber, Adam)
  threads            ours and the blog's update at 1 and 2 torch threads, alone and next to a
                     busy process (a Python spin loop started here, stopped at the end)

Run:   python benchmarks/bench_dqn.py                 (≈ 4 minutes on a 2-core CPU)
       python benchmarks/bench_dqn.py --steps 500     (a quicker look)
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import random
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn


# --- the blog's loop --------------------------------------------------------------------------
class BlogReplayMemory:
    """The blog's ReplayMemory: float32 tensors, `random.sample` indices."""

    def __init__(self, capacity, resolution):
        shape = (capacity, 1, *resolution)
        self.s1 = torch.zeros(shape, dtype=torch.float32)
        self.s2 = torch.zeros(shape, dtype=torch.float32)
        self.a = torch.zeros(capacity, dtype=torch.long)
        self.r = torch.zeros(capacity, dtype=torch.float32)
        self.isterminal = torch.zeros(capacity, dtype=torch.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add_transition(self, s1, action, s2, isterminal, reward):
        idx = self.pos
        self.s1[idx, 0, :, :] = s1
        self.a[idx] = action
        if not isterminal:
            self.s2[idx, 0, :, :] = s2
        self.isterminal[idx] = isterminal
        self.r[idx] = reward
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def get_sample(self, size):
        idx = random.sample(range(self.size), size)
        return self.s1[idx], self.a[idx], self.s2[idx], self.isterminal[idx], self.r[idx]


class BlogQNet(nn.Module):
    def __init__(self, n_actions, lr=0.00025, discount=0.99, batch_size=64):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=6, stride=3)
        self.conv2 = nn.Conv2d(8, 8, kernel_size=3, stride=2)
        self.fc1 = nn.Linear(192, 128)
        self.fc2 = nn.Linear(128, n_actions)
        self.criterion = nn.MSELoss()
        self.optimizer = torch.optim.SGD(self.parameters(), lr)
        self.memory = BlogReplayMemory(10_000, (30, 45))
        self.discount, self.batch_size = discount, batch_size

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = x.view(-1, 192)
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    def get_best_action(self, state):
        _, index = torch.max(self(state), 1)
        return index

    def learn_from_memory(self):
        if self.memory.size < self.batch_size:
            return
        s1, a, s2, isterminal, r = self.memory.get_sample(self.batch_size)
        q2, _ = torch.max(self(s2).detach(), dim=1)
        target_q = self(s1).detach()
        target_q[torch.arange(target_q.shape[0]), a] = r + self.discount * (1 - isterminal) * q2
        loss = self.criterion(self(s1), target_q)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def blog_game(resolution: str = "RES_640X480"):
    import vizdoom as vzd

    from mlrepro.rl.env import _working_dir, scenario_config

    game = vzd.DoomGame()
    game.load_config(str(scenario_config("basic")))
    game.set_doom_config_path(os.path.join(WORK_DIR, "_vizdoom.ini"))
    game.set_window_visible(False)
    game.set_mode(vzd.Mode.PLAYER)
    game.set_screen_format(vzd.ScreenFormat.GRAY8)
    game.set_screen_resolution(getattr(vzd.ScreenResolution, resolution))
    with _working_dir(WORK_DIR):
        game.init()
    return game


def blog_preprocess(img):
    # The blog: skimage.transform.resize(img, (30, 45)) → float in [0, 1]; PIL's bilinear here.
    return torch.from_numpy(
        np.asarray(Image.fromarray(img).resize((45, 30), Image.BILINEAR), dtype=np.float32) / 255
    )


class BlogLoop:
    """The blog's perform_learning_step with its game, model and memory kept between calls."""

    def __init__(self, resolution: str = "RES_640X480", learn: bool = True, eps: float = 0.5):
        self.game, self.learn, self.eps = blog_game(resolution), learn, eps
        self.actions = [list(a) for a in itertools.product([0, 1], repeat=3)]
        self.model = BlogQNet(len(self.actions))
        self.game.new_episode()

    def run(self, steps: int, budget_s: float = 1e9) -> float:
        """`steps` environment steps; returns steps per second."""
        game, model, actions = self.game, self.model, self.actions
        start, n = time.perf_counter(), 0
        while n < steps and time.perf_counter() - start < budget_s:
            s1 = blog_preprocess(game.get_state().screen_buffer)
            if not self.learn or random.random() <= self.eps:
                a = torch.tensor(random.randint(0, len(actions) - 1)).long()
            else:
                a = model.get_best_action(s1.reshape([1, 1, 30, 45]))
            reward = game.make_action(actions[a], 12)
            isterminal = game.is_episode_finished()
            s2 = None if isterminal else blog_preprocess(game.get_state().screen_buffer)
            model.memory.add_transition(s1, a, s2, float(isterminal), reward)
            if self.learn:
                model.learn_from_memory()
            if isterminal:
                game.new_episode()
            n += 1
        return n / (time.perf_counter() - start)

    def close(self):
        self.game.close()


# --- ours -------------------------------------------------------------------------------------
def make_agent(improved: bool):
    from mlrepro.rl import DQN, QNet

    torch.manual_seed(0)
    if improved:
        return DQN(
            QNet(8, dueling=True),
            lr=1e-3,
            optimizer="adam",
            loss="huber",
            double=True,
            target_update_steps=500,
            grad_clip_norm=10.0,
            reward_scale=0.01,
        )
    return DQN(QNet(8), lr=0.00025, optimizer="sgd", loss="mse_all")


class OursLoop:
    """`learning_steps` on a vector environment; ε = 0.5 like the blog-like loop."""

    def __init__(self, envs, learn: bool = True, improved: bool = False):
        from mlrepro.rl import ReplayMemory

        self.envs, self.learn = envs, learn
        self.agent, self.memory = make_agent(improved), ReplayMemory(10_000, (1, 30, 45))
        self.calls = 0

    def run(self, steps: int, budget_s: float = 1e9) -> float:
        from mlrepro.rl.train import learning_steps

        start, n = time.perf_counter(), 0
        while n < steps and time.perf_counter() - start < budget_s:
            self.calls += 1
            n += learning_steps(
                self.agent,
                self.envs,
                self.memory,
                min(250, steps - n),
                epsilon_at=lambda k: 0.5,
                batch_size=64,
                seed=self.calls,
                learning_starts=64 if self.learn else 10**12,
            )["steps"]
        return n / (time.perf_counter() - start)

    def close(self):
        pass


def race(contenders: dict, steps: int, chunk: int = 250) -> dict[str, float]:
    """Steps per second of each contender: `steps` each, in alternating chunks (so that load from
    other processes hits all alike), median over chunks; the first chunk is an untimed warm-up."""
    rates = {name: [] for name in contenders}
    for c in contenders.values():
        c.run(min(chunk, 100))
    for _ in range(max(1, steps // chunk)):
        for name, c in contenders.items():
            rates[name].append(c.run(chunk))
    return {name: statistics.median(r) for name, r in rates.items()}


# --- threads ----------------------------------------------------------------------------------
def updates_per_s(threads: int, seconds: float = 4.0) -> float:
    torch.set_num_threads(threads)
    model = BlogQNet(8)
    for _ in range(200):
        model.memory.add_transition(torch.rand(30, 45), 0, torch.rand(30, 45), 0.0, -1.0)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        model.learn_from_memory()
        n += 1
    return n / (time.perf_counter() - start)


def busy_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


WORK_DIR = ""


def main(argv=None) -> None:
    global WORK_DIR
    import tempfile

    import vizdoom

    from mlrepro.rl.env import make_vector_env

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="environment steps per row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    WORK_DIR = tempfile.mkdtemp(prefix="bench-dqn-")
    torch.set_num_threads(1)

    print(
        f"DQN on ViZDoom basic, frame repeat 12, {args.steps} environment steps per row, rows of "
        "a group interleaved in chunks of 250 steps (median of the chunks)"
    )
    print(f"  cpu: {_cpu_name()} ({os.cpu_count()} logical cores), {platform.system()}")
    print(f"  torch {torch.__version__}, vizdoom {vizdoom.__version__}, numpy {np.__version__}")
    print(f"  load average before: {os.getloadavg()[0]:.2f}")

    def show(rates: dict[str, float], unit: str = "steps/s") -> None:
        for name, v in rates.items():
            print(f"  {name:<58} {v:8.0f} {unit}", flush=True)

    vec = {
        (n, a): make_vector_env(n, asynchronous=a, work_dir=f"{WORK_DIR}/{n}{a}")
        for n, a in [(1, False), (1, True), (2, True), (4, True)]
    }
    print("env alone (random actions, no learning):")
    blog_640, blog_160 = BlogLoop(learn=False), BlogLoop("RES_160X120", learn=False)
    contenders = {
        "blog-like: one game at 640x480, resize per frame": blog_640,
        "blog-like at 160x120": blog_160,
    }
    for (n, a), envs in vec.items():
        name = f"ours: {n} env{'s' if n > 1 else ''}, {'worker processes' if a else 'in-process'}"
        contenders[name] = OursLoop(envs, learn=False)
    show(race(contenders, args.steps))
    blog_640.close()
    blog_160.close()

    print("env + learning (one 64-transition update per environment step, 1 torch thread):")
    blog = BlogLoop()
    contenders = {
        "blog-like loop": blog,
        "ours, the blog's update rule, 1 env in a worker": OursLoop(vec[1, True]),
        "ours, the blog's update rule, 1 env in-process": OursLoop(vec[1, False]),
        "ours, the blog's update rule, 2 envs in workers": OursLoop(vec[2, True]),
        "ours, improved update rule, 1 env in a worker": OursLoop(vec[1, True], improved=True),
    }
    learn = race(contenders, args.steps)
    show(learn)
    blog.close()
    blog_default = BlogLoop()
    torch.set_num_threads(os.cpu_count() or 1)  # what the blog's program gets: torch's default
    label = f"blog-like loop at torch's default {torch.get_num_threads()} threads"
    show({label: blog_default.run(args.steps // 3, budget_s=20)})
    torch.set_num_threads(1)
    blog_default.close()

    print("threads, next to nothing extra vs a busy process (a Python spin loop started here):")
    threads = {}
    for busy in (False, True):
        proc = busy_process() if busy else None
        try:
            time.sleep(0.5 if busy else 0)
            for n_threads in (1, 2):
                label = f"{'busy process' if busy else 'no extra load'}, {n_threads} thread(s)"
                u = updates_per_s(n_threads)
                torch.set_num_threads(n_threads)
                v = OursLoop(vec[1, True]).run(args.steps // 3, budget_s=20)
                threads[busy, n_threads] = v
                show({f"blog's update alone, {label}": u}, "updates/s")
                show({f"ours, env + learning, {label}": v})
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
    torch.set_num_threads(1)
    for envs in vec.values():
        envs.close()

    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    b = learn["blog-like loop"]
    print(
        f"ratio ours / blog-like at the same number of updates: "
        f"{learn['ours, the blog' + chr(39) + 's update rule, 1 env in a worker'] / b:.2f}x "
        f"(1 env in a worker), "
        f"{learn['ours, the blog' + chr(39) + 's update rule, 2 envs in workers'] / b:.2f}x "
        f"(2 envs); improved rule {learn['ours, improved update rule, 1 env in a worker'] / b:.2f}x"
    )
    print(
        f"ours at 2 threads vs 1 next to a busy process: "
        f"{threads[True, 1] / max(threads[True, 2], 1e-9):.1f}x slower"
    )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
