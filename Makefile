# driftline — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := bash
UV ?= uv

.PHONY: help install demo demo-stop test test-fast lint format bench bench-quick server-start server-stop clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

# --compile-bytecode: each process then reads .pyc rather than compiling ~12,000 modules from source, which it does
# every time where PYTHONDONTWRITEBYTECODE is set (as on the project's machine): 7 s of a 10k-row train run.
install: ## Install driftline and its pinned dependencies (uv.lock) into .venv
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode

DEMO_SERVER_HOME := .driftline/demo/prefect

demo: install ## Run the whole loop on synthetic fraud data, on the demo's own Prefect server (port 4300, kept)
	$(UV) run driftline demo

demo-stop: ## Stop the demo's Prefect server (.driftline/demo/prefect)
	$(UV) run driftline server stop --home $(DEMO_SERVER_HOME)

test: install ## Run every test, integration tests against real servers included
	$(UV) run pytest

test-fast: install ## Run the unit tests only (no servers, no statistical trials)
	$(UV) run pytest -m "not integration and not statistical and not load"

lint: install ## ruff lint + format check, mypy strict on the source
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: install ## Format and fix what ruff can
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

ONLY ?=

bench: install ## Run every workload (bench/w*_*.py) side by side, write docs/benchmarks.md (ONLY=W2,W4 to pick)
	$(UV) run python bench/run.py $(if $(ONLY),--only $(ONLY))

bench-quick: install ## The same at small sizes, 1-2 runs (a smoke test, minutes); also writes docs/benchmarks.md
	$(UV) run python bench/run.py --quick $(if $(ONLY),--only $(ONLY))

server-start: install ## Start the managed Prefect server (.driftline/prefect) and print its URLs
	$(UV) run driftline server start

server-stop: ## Stop the managed Prefect server
	$(UV) run driftline server stop

clean: ## Remove local state (.driftline/) and caches; stops the managed and the demo's servers first
	-$(UV) run driftline server stop
	-$(UV) run driftline server stop --home $(DEMO_SERVER_HOME)
	rm -rf .driftline .pytest_cache .mypy_cache .ruff_cache
