# driftline — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := bash
UV ?= uv

.PHONY: help install demo test test-fast lint format server-start server-stop clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-13s %s\n", $$1, $$2}'

install: ## Install driftline and its pinned dependencies (uv.lock) into .venv
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen

demo: install ## Run the whole loop on synthetic fraud data against a managed local Prefect server
	$(UV) run driftline demo

test: install ## Run every test, integration tests against real servers included
	$(UV) run pytest

test-fast: install ## Run the unit tests only (no servers, no statistical trials)
	$(UV) run pytest -m "not integration and not statistical"

lint: install ## ruff lint + format check, mypy strict on the source
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: install ## Format and fix what ruff can
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

server-start: install ## Start the managed Prefect server (.driftline/prefect) and print its URLs
	$(UV) run driftline server start

server-stop: ## Stop the managed Prefect server
	$(UV) run driftline server stop

clean: ## Remove local state (.driftline/) and caches; stops the managed server first
	-$(UV) run driftline server stop
	rm -rf .driftline .pytest_cache .mypy_cache .ruff_cache
