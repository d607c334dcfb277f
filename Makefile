# Two commands from a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TOOLS := .tools
CONFORMANCE := @modelcontextprotocol/conformance@0.1.16
# The suite needs Node 22 (the machines have Node 20): npm's `node@22` package brings its own binary.
CONFORMANCE_STAMP := $(TOOLS)/.installed-conformance-0.1.16
# The MCP Inspector's CLI drives `serve` in the tests: a client nobody here wrote. Inspector 2.x needs
# Node 22 too; it gets its own folder and its own node@22.
INSPECTOR := @modelcontextprotocol/inspector@2.12.0
INSPECTOR_DIR := $(TOOLS)/inspector
INSPECTOR_STAMP := $(INSPECTOR_DIR)/.installed-2.12.0
PEERS := $(TOOLS)/peers
PEERS_STAMP := $(PEERS)/.installed

.PHONY: demo test lint bench soak clean conformance inspector bench-peers tmux

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,otel]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mcp-connections demo

test: $(STAMP) $(INSPECTOR_STAMP) tmux
	$(BIN)/python -m pytest

# The watch tests drive the live view in a real terminal: tmux, a Debian package (CI runs as root).
tmux:
	@command -v tmux >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) \
		|| echo "tmux could not be installed: the terminal tests of watch will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src
	$(BIN)/mypy --platform darwin src
	$(BIN)/mypy --platform win32 src

bench: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python benchmarks/run.py

# The soak runs 30 s inside `make test`; here 5 minutes unless SOAK_SECONDS says otherwise.
soak: $(STAMP)
	SOAK_SECONDS=$${SOAK_SECONDS:-300} $(BIN)/python -m pytest tests/soak -q -s -p no:cacheprovider --timeout=0

$(INSPECTOR_STAMP):
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p $(INSPECTOR_DIR) && \
		npm install --prefix $(INSPECTOR_DIR) --no-audit --no-fund --loglevel=error $(INSPECTOR) node@22 && \
		touch $@; \
	else \
		echo "npm not found: the MCP Inspector tests (tests/test_gateway_inspector.py) will be skipped"; \
	fi

inspector: $(INSPECTOR_STAMP)

# The gateway's peers for `make bench`, each in a venv of its own: mcp-proxy needs mcp<2.
$(PEERS_STAMP):
	$(PYTHON) -m venv $(PEERS)/fastmcp
	$(PEERS)/fastmcp/bin/python -m pip install --quiet fastmcp==4.1.6
	$(PYTHON) -m venv $(PEERS)/mcp-proxy
	$(PEERS)/mcp-proxy/bin/python -m pip install --quiet mcp-proxy==0.13.0
	touch $@

bench-peers: $(PEERS_STAMP)

$(CONFORMANCE_STAMP):
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error $(CONFORMANCE) node@22
	touch $@

# The official MCP conformance suite against tests/conformance/client.py (see tests/conformance/run.py).
conformance: $(STAMP) $(CONFORMANCE_STAMP)
	$(BIN)/python tests/conformance/run.py

clean:
	rm -rf $(VENV) $(TOOLS) build dist .mypy_cache .ruff_cache .pytest_cache
