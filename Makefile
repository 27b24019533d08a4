# The README's commands. Each target makes its own virtual environment, installs torch first (the CPU
# build unless asked otherwise), then mlrepro, every install held to the versions CI tests
# (constraints.txt).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := -c constraints.txt
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
  export MLREPRO_DATA ?= $(SHARED_DATA)
endif

# --- torch ---
# The version is constraints.txt's; the build comes from TORCH_INDEX, an index pip asks besides its
# configured one (PyPI, or a mirror). On Linux PyPI's torch is the CUDA build (several GB), so the
# default is PyTorch's CPU index and the exact CPU build (2.13.0+cpu): wherever that index can't be
# reached, pip takes the same +cpu wheel from its configured index if that carries one (a mirror),
# and otherwise stops, rather than fall back on the CUDA build.
#   make demo TORCH_INDEX=                                          # PyPI's default build (CUDA on Linux)
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cu128    # torch==2.13.0+cu128
# On macOS PyPI's wheel is already the CPU/MPS build, and download.pytorch.org/whl/cpu serves macOS
# that same arm64 wheel (no +cpu label), so the default there is pip's configured index alone.
TORCH_VERSION := $(shell sed -n 's/^torch==\([^ ;]*\).*/\1/p' constraints.txt)
ifeq ($(shell uname -s),Darwin)
  TORCH_INDEX ?=
else
  TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
endif
# PyTorch labels its x86_64 Linux builds with the index's last path part (2.13.0+cpu, +cu130, ...);
# elsewhere (aarch64, macOS) the plain version, of which pip takes the index's build if it has one.
UNAME := $(shell uname -s)/$(shell uname -m)
TORCH_LABEL := $(if $(and $(TORCH_INDEX),$(filter Linux/x86_64,$(UNAME))),$(lastword $(subst /, ,$(TORCH_INDEX))))
TORCH_SPEC := torch==$(TORCH_VERSION)$(if $(TORCH_LABEL),+$(TORCH_LABEL))
# Bounded, so an index that can't be reached costs seconds, not pip's default minutes. torch alone
# goes through TORCH_INDEX (--no-deps); its dependencies come with mlrepro's from pip's index.
TORCH_PIP_OPTS := --no-deps --timeout 10 --retries 1 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))

# One line naming the wheel pip installed (from its --report), and whether TORCH_INDEX gave it.
define TORCH_SOURCE
import importlib.metadata, json, sys, urllib.parse
report, index, log = sys.argv[1:]
got = [i for i in json.load(open(report))["install"] if i["metadata"]["name"] == "torch"]
if got:
    url = got[0]["download_info"]["url"]
    domain = urllib.parse.urlsplit(index).hostname.split(".", 1)[-1] if index else ""
    via = "" if (urllib.parse.urlsplit(url).hostname or "").endswith(domain) else (
        f" ({index} was not reachable or lacks it: {log})")
    print(f"torch {got[0]['metadata']['version']} from {url}{via}")
else:
    print(f"torch {importlib.metadata.version('torch')} was already installed")
endef
export TORCH_SOURCE

.PHONY: demo test test-slow bench gpu-evidence results-table lint dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	-$(PIP) install -q --upgrade pip

$(VENV)/.torch: $(BIN)/python constraints.txt
	@echo "installing $(TORCH_SPEC)$(if $(TORCH_INDEX), from $(TORCH_INDEX) or pip's index) (a minute or two the first time)"
	@$(PIP) install -q $(TORCH_PIP_OPTS) "$(TORCH_SPEC)" --report $(VENV)/torch.json \
	    2>$(VENV)/torch.log || { cat $(VENV)/torch.log; \
	    echo "No $(TORCH_SPEC) from $(if $(TORCH_INDEX),$(TORCH_INDEX) or )pip's configured index (log above)."; \
	    $(if $(TORCH_INDEX),echo "'make $(or $(MAKECMDGOALS),demo) TORCH_INDEX=' takes PyPI's default build" \
	        "(CUDA on Linux: several GB)."; )\
	    exit 1; }
	@$(BIN)/python -c "$$TORCH_SOURCE" $(VENV)/torch.json "$(TORCH_INDEX)" $(VENV)/torch.log
	@touch $@

$(VENV)/.base: $(VENV)/.torch pyproject.toml constraints.txt
	@echo "installing mlrepro[rl] and its dependencies (pinned by constraints.txt)"
	$(PIP) install -q $(CONSTRAINTS) -e ".[rl]"
	touch $@

# torchattacks is the attacks' test and benchmark reference; --no-deps because its torchvision
# requirement would replace the CPU torch with a CUDA build (its code does not use torchvision).
$(VENV)/.dev: $(VENV)/.base
	@echo "installing mlrepro[dev]: the test, lint and tracking tools (pinned by constraints.txt)"
	$(PIP) install -q $(CONSTRAINTS) -e ".[dev]"
	$(PIP) install -q $(CONSTRAINTS) --no-deps torchattacks
	touch $@

demo: $(VENV)/.base  ## install, then a short tour of every experiment's quick preset
	$(BIN)/mlrepro demo

test: $(VENV)/.dev  ## install, then the fast test suite
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.dev  ## the long reproductions marked slow
	$(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.dev  ## side-by-side benchmarks against peers
	$(PIP) install -q $(CONSTRAINTS) -e ".[keras-bench]"
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# On one CUDA GPU: the GPU results within a wall-time budget (benchmarks/gpu_evidence.py; docs/results.md,
# "GPU evidence"). No install step, so it also runs where nothing can be installed: the python3 (and
# its CUDA torch) of the machine, or .venv's where there is one; mlrepro comes from src/.
#   make gpu-evidence GPU_EVIDENCE_ARGS="--export DIR"      # also copy evidence.json + a bundle to DIR
#   make gpu-evidence GPU_EVIDENCE_ARGS=--smoke             # every stage at toy scale on the CPU
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-evidence:  ## the GPU stages, time-boxed, in one command
	PYTHONPATH=src $(GPU_PYTHON) benchmarks/gpu_evidence.py $(GPU_EVIDENCE_ARGS)

results-table: $(VENV)/.base  ## regenerate the README's results table from results/*.json
	$(BIN)/mlrepro report --results-dir results --readme README.md

lint: $(VENV)/.dev  ## ruff (rules and format), import layers, types, Dockerfiles
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile Dockerfile.cuda

dist: $(VENV)/.dev  ## the sdist and wheel, in dist/
	$(BIN)/python -m build

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info
