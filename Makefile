# The README's commands. Each target makes its own virtual environment and installs torch first,
# pinned to the CPU build this project is tested with, so nothing pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)),)
  export MLREPRO_DATA ?= $(SHARED_DATA)
endif

.PHONY: demo test test-slow bench results-table lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	-$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.base: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[rl]"
	touch $@

# torchattacks is the attacks' test and benchmark reference; --no-deps because its torchvision
# requirement would replace the CPU torch with a CUDA build (its code does not use torchvision).
$(VENV)/.dev: $(VENV)/.base
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps "torchattacks==3.5.1"
	touch $@

demo: $(VENV)/.base  ## install, then a short tour of every experiment's quick preset
	$(BIN)/mlrepro demo

test: $(VENV)/.dev  ## install, then the fast test suite
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.dev  ## the long reproductions marked slow
	$(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.dev  ## side-by-side benchmarks against peers
	$(BIN)/python -m pip install -q -e ".[keras-bench]"
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

results-table: $(VENV)/.base  ## regenerate the README's results table from results/*.json
	$(BIN)/mlrepro report --results-dir results --readme README.md

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) runs build dist src/*.egg-info
