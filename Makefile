# Two commands do all the set-up: `make run` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Two stamps: serving needs only the runtime (no TensorFlow); tests need everything (.[dev] includes train).
RUNTIME_STAMP := $(VENV)/.runtime-stamp
STAMP := $(VENV)/.installed-stamp
# The sandbox's port: `make run PORT=8081`, or SANDBOX_PORT in the environment.
PORT ?= $(or $(SANDBOX_PORT),8080)

.PHONY: install install-dev test test-tools lint typecheck unit run bench soak clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Installing needs the package registry (PyPI) and nothing else; say so once if it fails.
NO_INDEX := echo "make: could not install the project's packages: is the package index (PyPI) reachable?" >&2; exit 1

# (Re)install whenever the project's dependencies or the C kernel's sources change.
KERNEL_SOURCES := core/qkernel.c core/qsample.c core/qsearch.c core/qpython.c
$(RUNTIME_STAMP): pyproject.toml setup.py $(KERNEL_SOURCES) | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e . || { $(NO_INDEX); }
	touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml setup.py $(KERNEL_SOURCES) | $(VENV)/bin/python
	$(BIN)/python -m pip install -q -e '.[dev]' || { $(NO_INDEX); }
	touch $(STAMP) $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP)

install-dev: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy core train bot sandbox cli bench migrations

unit: $(STAMP) test-tools
	$(BIN)/pytest -q -n 2 --dist loadfile

# Two Debian programs the tests drive: Chromium (tests/browser, through Playwright, no browser
# download) and HAProxy (tests/e2e/test_replicas.py, in front of the replicas). Installed here
# when missing, so that `make test` alone sets up a fresh machine (sudo unless root).
test-tools:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "make: installing$$missing for the tests"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: lint typecheck unit

# A token in the environment or in .env (which the bot's settings read too) runs the bot;
# without one, the local sandbox.
run: $(RUNTIME_STAMP)
	$(BIN)/lstmbot db upgrade
	@if [ -n "$$TELEGRAM_TOKEN" ] || grep -Eqs '^[[:space:]]*TELEGRAM_TOKEN=[^[:space:]#]' .env; then \
		$(BIN)/lstmbot run; else $(BIN)/lstmbot sandbox --port $(PORT); fi

# Benchmarks print this project's numbers beside the book's recipe (or the target) from one run.
# Run them on a quiet machine: anything else using the CPU shows up in every figure.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench.generate
	$(BIN)/python -m bench.storage
	$(BIN)/python -m bench.bot
	$(BIN)/python -m bench.novelty
	$(BIN)/python -m bench.leaderboard
	$(BIN)/python -m bench.train
	$(BIN)/python -m bench.coldstart
	$(BIN)/python -m bench.voices --float-stride 10

# Ten minutes of simulated users with injected faults (issue 7's soak).
soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
