# pcsep: setup, demo and tests. `make demo` and `make test` are the README's Quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel first: a plain `torch` requirement resolved with no torch installed pulls a
# multi-GB CUDA build. pyproject's range accepts this one as installed.
TORCH  ?= torch==2.13.0
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SF2    := /usr/share/sounds/sf2/FluidR3_GM.sf2

.PHONY: setup setup-train setup-test apt demo test lint bench completions clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	touch $@

$(VENV)/.base: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e .
	touch $@

setup: $(VENV)/.base

# Training data renders with FluidSynth and the FluidR3_GM soundfont (Debian packages).
apt:
	@if ! command -v fluidsynth >/dev/null || [ ! -f $(SF2) ]; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends fluidsynth fluid-soundfont-gm; \
	fi

$(VENV)/.train: pyproject.toml $(VENV)/.base
	$(BIN)/pip install -q -e '.[train]'
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.train
	$(BIN)/pip install -q -e '.[test,train]'
	touch $@

setup-train: apt $(VENV)/.train
setup-test: apt $(VENV)/.test

# Separates the shipped example (a synthetic quartet) with the bundled model, offline.
demo: setup
	$(BIN)/pcsep separate pcsep_cli/examples/quartet/mixture.flac \
		pcsep_cli/examples/quartet/scene.ply -o separated --overwrite --offline

test: setup-test
	$(BIN)/python -m pytest -q

lint: setup-test
	$(BIN)/ruff check pcsep_cli tests
	$(BIN)/ruff format --check pcsep_cli tests
	$(BIN)/python -m pcsep_cli.completions --check

# Regenerate completions/pcsep.{bash,zsh,fish} from the Typer app (a test checks they are current).
completions: setup
	$(BIN)/python -m pcsep_cli.completions

bench: setup-test
	@for f in tests/benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
