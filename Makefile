# pytest-promotion: everything bootstraps from a bare python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ENV    ?= dev
FAULT  ?=
PYTEST_ARGS ?=
DEV_DIR := .promotion

.PHONY: help venv test test-unit test-integration lint typecheck promote \
        bench clean dev dev-logs dev-stop config-reference

help:
	@echo "make promote-dev      run the repo's gates/ for dev (also promote-staging, promote-prod, promote ENV=...)"
	@echo "                      FAULT=unhealthy|500|slow|expiring|version: a misbehaving target, to see a rollback"
	@echo "make test             the project's tests (unit + integration tiers)"
	@echo "make dev              the demo target in the background (dev-logs, dev-stop)"
	@echo "make env-NAME         the gates NAME would run (promotion plan), nothing probed"
	@echo "make bench            benchmarks under bench/, figures printed"
	@echo "make lint typecheck   ruff (format + lint) and mypy --strict"

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing pytest-promotion with its test tools (first time: about a minute)"
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "==> pip install -e '.[test]'"
	@# setuptools' note on editable installs is information, not a problem: silenced
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)
	@echo "==> installed"

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

# -v: each gate's name as it starts, so a long one shows what it is.
define run_promote
PROMOTION_DEMO_FAULT=$(FAULT) $(BIN)/python -m pytest --env=$(1) gates/ -v \
	-p no:cacheprovider --junitxml=gate-$(1).xml \
	--promotion-report=decision-$(1).json $(PYTEST_ARGS)
endef

promote: $(STAMP)
	$(call run_promote,$(ENV))

promote-%: $(STAMP)
	$(call run_promote,$*)

# The seed's local stack: the demo target in the background, its URL and CA in
# $(DEV_DIR)/dev.env (`set -a; . $(DEV_DIR)/dev.env` loads them into a shell).
dev: $(STAMP)
	@mkdir -p $(DEV_DIR)
	@if [ -f $(DEV_DIR)/dev.pid ] && kill -0 "$$(cat $(DEV_DIR)/dev.pid)" 2>/dev/null; then \
		echo "demo target already running (pid $$(cat $(DEV_DIR)/dev.pid)); make dev-stop first"; exit 0; fi; \
	PROMOTION_DEMO_FAULT=$(FAULT) nohup $(BIN)/python -m pytest_promotion.demo serve \
		--env-file $(DEV_DIR)/dev.env >$(DEV_DIR)/dev.log 2>&1 & echo $$! >$(DEV_DIR)/dev.pid; \
	for i in $$(seq 1 100); do \
		$(BIN)/python -m pytest_promotion.demo ready $(DEV_DIR)/dev.env 2>/dev/null && break; sleep 0.2; done; \
	$(BIN)/python -m pytest_promotion.demo ready $(DEV_DIR)/dev.env || { tail -n 20 $(DEV_DIR)/dev.log; exit 1; }; \
	cat $(DEV_DIR)/dev.log; echo "variables: $(DEV_DIR)/dev.env; logs: make dev-logs; stop: make dev-stop"

dev-logs:
	@tail -n 50 $(DEV_DIR)/dev.log 2>/dev/null || echo "no demo target log: make dev first"

dev-stop:
	@if [ -f $(DEV_DIR)/dev.pid ]; then kill "$$(cat $(DEV_DIR)/dev.pid)" 2>/dev/null || true; \
		rm -f $(DEV_DIR)/dev.pid; echo "demo target stopped"; else echo "no demo target running"; fi

env-%: $(STAMP)
	$(BIN)/promotion plan --env $* gates/

config-reference: $(STAMP)
	$(BIN)/python -m pytest_promotion.reference > docs/config-reference.md

bench: $(STAMP)
	$(BIN)/python bench/core_overhead.py
	$(BIN)/python bench/coverage_large.py
	$(BIN)/python bench/probes.py --breakdown
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/fleet.py --also-concurrency 0

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .promotion gate-*.xml decision-*.json
