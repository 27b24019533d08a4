"""The sdist and wheel: they build, carry the bundled data, and install and run outside the
checkout."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "src" / "mlrepro" / "data" / "samples"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel built as `python -m build` builds them (the wheel from the sdist), from a
    copy of the checkout, so that the build's egg-info never lands in it."""
    pytest.importorskip("build")
    tree, out = tmp_path_factory.mktemp("tree") / "mlrepro", tmp_path_factory.mktemp("dist")
    shutil.copytree(
        REPO,
        tree,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "runs",
            "results",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


def _package_files(root: Path) -> set[str]:
    return {
        p.relative_to(root.parents[2]).as_posix()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_wheel_and_sdist_carry_the_package_data(dist):
    expected = _package_files(SAMPLES)  # mlrepro/data/samples/...
    assert expected
    if (REPO / "src" / "mlrepro" / "py.typed").exists():
        expected.add("mlrepro/py.typed")
    (wheel,) = dist.glob("*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert expected <= in_wheel, sorted(expected - in_wheel)
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/src/", 1)[1] for name in tar.getnames() if "/src/" in name}
    assert expected <= in_sdist, sorted(expected - in_sdist)


def _torch_requirement() -> tuple[list[str], str]:
    """pip arguments for the torch build this interpreter runs (2.13.0+cpu here, never a CUDA
    build unless this one is)."""
    version = importlib.metadata.version("torch")
    local = version.partition("+")[2]
    index = ["--extra-index-url", f"https://download.pytorch.org/whl/{local}"] if local else []
    return index, f"torch=={version}"


def test_wheel_installs_and_runs_outside_the_checkout(dist, tmp_path):
    (wheel,) = dist.glob("*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--timeout", "10", "--retries", "1"]
    index, torch_req = _torch_requirement()
    # torch first, the same build as this environment's, then the wheel at the tested versions.
    subprocess.run([*pip, "--no-deps", *index, torch_req], check=True)
    subprocess.run([*pip, "-c", str(REPO / "constraints.txt"), f"{wheel}[rl]"], check=True)

    work = tmp_path / "elsewhere"  # no source tree here, and none on the path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLREPRO_DATA")}
    env.update(MLREPRO_CACHE=str(tmp_path / "cache"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    mlrepro = str(py.parent / "mlrepro")

    def run(*args: str) -> str:
        out = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    where = run(str(py), "-c", "import mlrepro; print(mlrepro.__file__)").strip()
    assert Path(where).is_relative_to(env_dir), where
    assert importlib.metadata.version("mlrepro") in run(mlrepro, "--version")
    run_dir = Path(run(mlrepro, "run", "linreg-line", "--quick").strip().splitlines()[-1])
    run_dir = run_dir if run_dir.is_absolute() else work / run_dir
    assert (run_dir / "metrics.json").is_file(), run_dir
    assert run_dir.is_relative_to(work)
