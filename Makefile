# Two commands do all the set-up: `make run` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint typecheck unit run bench soak clean

# (Re)create the virtual environment whenever the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy core train bot sandbox cli bench migrations

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

run: $(STAMP)
	$(BIN)/lstmbot db upgrade
	@if [ -n "$$TELEGRAM_TOKEN" ]; then $(BIN)/lstmbot run; else $(BIN)/lstmbot sandbox; fi

# Benchmarks print this project's numbers beside the book's recipe (or the target) from one run.
# Run them on a quiet machine: anything else using the CPU shows up in every figure.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench.generate
	$(BIN)/python -m bench.storage
	$(BIN)/python -m bench.bot
	$(BIN)/python -m bench.train

# Ten minutes of simulated users with injected faults (issue 7's soak).
soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
