import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests never touch the network.
os.environ.setdefault("MLREPRO_OFFLINE", "1")
# Test workloads are tiny: one intra-op thread is as fast, and it cannot fall into OpenMP's
# spin-waiting when another process (ViZDoom, a second job) holds the other core.
torch.set_num_threads(1)


def shared_data_dir() -> Path | None:
    """The full datasets: $MLREPRO_DATA, else ../shared/data beside the repository, else None."""
    env = os.environ.get("MLREPRO_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    guess = REPO.parent / "shared" / "data"
    return guess if guess.is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path | None:
    return shared_data_dir()
