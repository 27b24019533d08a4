import os
from pathlib import Path

import pytest

# Read before any test changes the environment.
_ENV_DATA = os.environ.get("MLREPRO_DATA")
# Tests on the full datasets share the persistent cache, so the slow first decode of the full
# CIFAR-10 copy (tens of seconds) is paid once, not on every run.
_REAL_CACHE = os.environ.get("MLREPRO_CACHE") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlrepro"
)


def full_data_dir() -> Path | None:
    """The full datasets: $MLREPRO_DATA, else shared/data beside the repository, else None."""
    if _ENV_DATA and Path(_ENV_DATA).is_dir():
        return Path(_ENV_DATA)
    guess = Path(__file__).resolve().parents[3] / "shared" / "data"
    return guess if guess.is_dir() else None


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No network, a private cache, and no data folder unless a test passes one."""
    monkeypatch.setenv("MLREPRO_OFFLINE", "1")
    monkeypatch.setenv("MLREPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLREPRO_DATA", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the user data dir is then empty too


@pytest.fixture
def full_data(monkeypatch) -> Path:
    """The folder with the full datasets, with the persistent cache; skips if absent."""
    folder = full_data_dir()
    if folder is None:
        pytest.skip("full datasets not found (set MLREPRO_DATA)")
    monkeypatch.setenv("MLREPRO_CACHE", _REAL_CACHE)
    return folder
