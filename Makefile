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

# Training data renders from several sound sources (Debian packages; pcsep_cli/synth/sources.py):
# FluidSynth with the FluidR3_GM, MuseScore General, Csound GM and OPL3 soundfonts, TiMidity++
# with freepats, STK's stk-demo (with faketime, which makes it deterministic). Never
# timgm6mb-soundfont: it is kept for an independent check.
APT_PKGS := fluidsynth fluid-soundfont-gm musescore-general-soundfont csound-soundfont \
	opl3-soundfont timidity freepats stk faketime
apt:
	@if ! command -v fluidsynth >/dev/null || ! command -v timidity >/dev/null || \
		! command -v stk-demo >/dev/null || ! command -v faketime >/dev/null || \
		[ ! -f $(SF2) ] || [ ! -f /usr/share/sounds/sf3/MuseScore_General.sf3 ] || \
		[ ! -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || \
		[ ! -f /usr/share/sounds/sf2/OPL-3_FM_128M.sf2 ] || [ ! -f /etc/timidity/freepats.cfg ]; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(APT_PKGS); \
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
