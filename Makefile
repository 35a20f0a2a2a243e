# Every target creates .venv itself; nothing needs to be installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU machines: take the pinned CPU build of torch (a local wheel here) before anything
# else, so no dependency drags in the multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: install lint test test-all browser demo bench baselines clean imitation-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test,warp]"
	$(PY) -m pip install -q --no-deps "open_clip_torch>=3.0,<4"  # its BPE vocabulary for clip:open_clip: (no torchvision)
	touch $(STAMP)

install: $(STAMP)

# pyflakes/pycodestyle errors, the import layers (pyproject [tool.importlinter]) and types of the core
lint: $(STAMP)
	$(VENV)/bin/ruff check robreward sims tests benchmarks scripts
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# the fast lane (< 5 min on 2 cores, no apt-get): unit, contract and tiny-budget smoke tests
test: lint
	$(PY) -m pytest -q -m "not slow and not browser and not ray and not benchmark" $(PYTEST_ARGS) tests

# everything: the fast lane, the slow learning tests, the browser test (chromium) and Ray; the 25 slowest
# tests are listed before the summary (where CI's time goes). PYTEST_ARGS adds pytest options to both lanes.
test-all: lint browser
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS) tests

# Debian's chromium for the labeling app's browser test (Playwright drives it; no `playwright install`)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

demo: $(STAMP)
	bash scripts/demo.sh

bench: $(STAMP)
	$(PY) benchmarks/sim_cpu.py

clean:
	rm -rf $(VENV) build *.egg-info

# hand + sparse PPO baselines over 3 seeds for every task (hours on 2 cores; resumable; subset: TASKS=reach,push)
baselines: $(STAMP)
	$(PY) scripts/baselines.py $(if $(TASKS),--tasks $(TASKS),)

# imitation's PreferenceComparisons for benchmarks/prefs.py --imitation: imitation 1.0.1 pins
# gymnasium 0.29 and SB3 2.2, so it gets a virtual environment of its own (sacred needs pkg_resources)
IMITATION_VENV := .venv-imitation
$(IMITATION_VENV)/.installed:
	$(PYTHON) -m venv $(IMITATION_VENV)
	$(IMITATION_VENV)/bin/python -m pip install -q --upgrade pip
	$(IMITATION_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(IMITATION_VENV)/bin/python -m pip install -q "imitation==1.0.1" "gymnasium[mujoco]==0.29.1" \
		"stable-baselines3==2.2.1" "setuptools<81"
	touch $@

imitation-venv: $(IMITATION_VENV)/.installed
