# Developers and CI run the same targets (.ci/run calls `make test`).
# uv is installed from PyPI on first use; the workspace goes into .venv.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: bootstrap demo test lint pytest quick wheels bench clean esphome-venv

bootstrap:  ## install uv (if missing) and the whole workspace, as locked
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -c "import uv" 2>/dev/null \
		|| PIP_BREAK_SYSTEM_PACKAGES=1 $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --all-packages --frozen --quiet

# ESPHome pins paho-mqtt 1.6 (the workspace uses 2.x): it gets its own venv, which
# tests/deploy/test_deploy_esphome.py uses to run `esphome config` on every node.
ESPHOME_VERSION := 2026.6.5
ESPHOME_VENV := .venv-esphome

esphome-venv: bootstrap  ## ESPHome $(ESPHOME_VERSION) in .venv-esphome (validates node configs)
	@test -f $(ESPHOME_VENV)/.esphome-$(ESPHOME_VERSION) || { \
		$(UV) venv --quiet --allow-existing --python $(PYTHON) $(ESPHOME_VENV) \
		&& $(UV) pip install --quiet --python $(ESPHOME_VENV)/bin/python esphome==$(ESPHOME_VERSION) \
		&& touch $(ESPHOME_VENV)/.esphome-$(ESPHOME_VERSION); }

demo: bootstrap  ## the whole path on embedded defaults (no server to install)
	$(UV) run leaksense demo

test: bootstrap esphome-venv lint pytest  ## what CI runs: lint, types, then every test

lint: bootstrap
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

pytest: bootstrap
	$(UV) run pytest

quick: bootstrap  ## tests that need no external server
	$(UV) run pytest -m "not mqtt and not influx and not slow and not packaging and not browser"

wheels: bootstrap  ## one wheel per deployable, in dist/
	$(UV) build --all-packages --wheel --out-dir dist

bench: bootstrap  ## long benchmarks; numbers go to docs/benchmarks.md
	$(UV) run python benchmarks/bench_simulator.py
	$(UV) run python benchmarks/bench_path.py
	$(UV) run python benchmarks/bench_ingest.py
	$(UV) run python benchmarks/bench_replay.py
	$(UV) run python benchmarks/bench_detection.py
	$(UV) run python benchmarks/bench_reports.py
	$(UV) run python benchmarks/bench_gateway.py

clean:
	rm -rf dist .mypy_cache .ruff_cache .pytest_cache leaksense-demo
