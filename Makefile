# Each target does its own setup: a virtual environment in .venv with tether installed in it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint typecheck clean

# The engine, runner and real-server tests, run a second time on the pure-Python path.
PURE_TESTS := tests/test_engine.py tests/test_engine_fuzz.py tests/test_connection.py \
	tests/test_wire.py tests/test_nginx_runs.py tests/test_quick_check.py \
	tests/test_compiled.py tests/test_feed.py tests/test_open_model.py \
	tests/test_leak_mode.py tests/test_exit_codes.py tests/test_workers.py \
	tests/test_prometheus.py tests/test_one_url.py tests/test_h2.py \
	tests/test_h2_compiled.py tests/test_h2_hostile.py tests/test_flows.py

# pip builds the compiled extension (Cython) along with the install.
$(STAMP): pyproject.toml setup.py src/tether/engine/_compiled.pyx $(wildcard src/tether/engine/*.pxi)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tether demo

test: $(STAMP)
	bash scripts/ensure-nginx
	bash scripts/ensure-go
	bash scripts/ensure-browser
	bash scripts/ensure-prometheus
	bash scripts/ensure-curl
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest
	TETHER_PURE_PYTHON=1 $(BIN)/pytest -q $(PURE_TESTS)

bench: $(STAMP)
	bash scripts/ensure-nginx
	$(BIN)/python bench/run.py --output bench/RESULTS.md

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -f src/tether/engine/_compiled.c src/tether/engine/_compiled.*.so
