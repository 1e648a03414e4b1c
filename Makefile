# pytest-promotion: everything bootstraps from a bare python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ENV    ?= dev
PYTEST_ARGS ?=

.PHONY: help venv test test-unit test-integration lint typecheck promote promote-dev \
        promote-staging promote-prod bench clean

help:
	@echo "make test             the project's tests (unit + integration tiers)"
	@echo "make promote-dev      run the repo's gates/ for dev (also promote-staging, promote-prod, promote ENV=...)"
	@echo "make bench            benchmarks under bench/, figures printed"
	@echo "make lint typecheck   ruff (format + lint) and mypy --strict"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check pytest_promotion tests gates bench
	$(BIN)/ruff check pytest_promotion tests gates bench

typecheck: $(STAMP)
	$(BIN)/mypy

promote: $(STAMP)
	$(BIN)/python -m pytest --env=$(ENV) gates/ --junitxml=gate-$(ENV).xml \
		--promotion-report=decision-$(ENV).json $(PYTEST_ARGS)

promote-dev:
	$(MAKE) promote ENV=dev

promote-staging:
	$(MAKE) promote ENV=staging

promote-prod:
	$(MAKE) promote ENV=prod

bench: $(STAMP)
	$(BIN)/python bench/core_overhead.py
	$(BIN)/python bench/coverage_large.py
	$(BIN)/python bench/probes.py --breakdown

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache gate-*.xml decision-*.json
