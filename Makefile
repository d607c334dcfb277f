# Two commands from a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TOOLS := .tools
CONFORMANCE := @modelcontextprotocol/conformance@0.1.16
# The suite needs Node 22 (the machines have Node 20): npm's `node@22` package brings its own binary.
CONFORMANCE_STAMP := $(TOOLS)/.installed-conformance-0.1.16

.PHONY: demo test lint bench soak clean conformance

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mcp-connections demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src
	$(BIN)/mypy --platform darwin src
	$(BIN)/mypy --platform win32 src

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The soak runs 30 s inside `make test`; here 5 minutes unless SOAK_SECONDS says otherwise.
soak: $(STAMP)
	SOAK_SECONDS=$${SOAK_SECONDS:-300} $(BIN)/python -m pytest tests/soak -q -s -p no:cacheprovider --timeout=0

$(CONFORMANCE_STAMP):
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error $(CONFORMANCE) node@22
	touch $@

# The official MCP conformance suite against tests/conformance/client.py (see tests/conformance/run.py).
conformance: $(STAMP) $(CONFORMANCE_STAMP)
	$(BIN)/python tests/conformance/run.py

clean:
	rm -rf $(VENV) $(TOOLS) build dist .mypy_cache .ruff_cache .pytest_cache
