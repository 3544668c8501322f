# One entry point for people and CI. `make demo` sets everything up from uv.lock and runs the offline demo;
# `make test` runs the test suite (.ci/run calls exactly that).
PYTHON ?= python3
UV_VERSION ?= 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy

.PHONY: setup demo test test-fast stop lint bench clean

$(UV):
	@echo "==> installing uv $(UV_VERSION) into $(TOOLS)/"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	@echo "==> installing Apex and its dependencies from uv.lock"
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: $(VENV)/.synced

demo: setup
	$(VENV)/bin/apex demo

stop: setup
	$(VENV)/bin/apex stop

test: setup
	$(VENV)/bin/pytest

test-fast: setup
	$(VENV)/bin/pytest -m "not slow and not e2e"

PY_DIRS := contracts gateway optimizers iac sandbox dagster_project dashboards tests bench

# Style, the allowed import directions (pyproject's [tool.importlinter]) and types ([tool.mypy]).
lint: setup
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/ruff format --check $(PY_DIRS)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python bench/gateway_bench.py

clean:
	rm -rf data dbt/target dbt/logs
