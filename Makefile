# spitwall — the two commands: `make run` and `make test`.
# Both create .venv and install what they need (Debian packages too, when root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.sysdeps
CONFIG ?= config/spitwall.toml
# Debian packages: SIPp (sip-tester), secsipidx for STIR/SHAKEN interop, espeak-ng/sox for
# prompts, chromium for the web-page test.
DEBS_RUN := espeak-ng sox
DEBS_TEST := sip-tester secsipidx chromium $(DEBS_RUN)
DEBS_BENCH := sip-tester kamailio

.PHONY: run test lint fmt sysdeps sysdeps-run venv bench demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Install missing Debian packages when running as root; otherwise say what is missing.
sysdeps:
	@bash tools/sysdeps.sh $(DEBS_TEST)

sysdeps-run:
	@bash tools/sysdeps.sh $(DEBS_RUN)

run: $(STAMP) sysdeps-run
	$(BIN)/spitwall serve --config $(CONFIG)

demo: $(STAMP) sysdeps-run
	$(BIN)/spitwall demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict proxy/sip attestation reputation

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) sysdeps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	@bash tools/sysdeps.sh $(DEBS_BENCH)
	$(BIN)/python bench/sipp_ramp.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
