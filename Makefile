# The two entry points of a fresh machine: `make demo` and `make test`.
# Everything they need (apt packages, the virtualenv, Kafka's jars, the
# Kubernetes binaries) is installed by the targets below, idempotently.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test gates setup system clean-stack

# The runtime and its test tools, then the development package (dev/: the local stack,
# `responder stack`, `responder demo`) into the same virtualenv; the wheel has none of dev/.
$(STAMP): pyproject.toml dev/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e ./dev
	touch $(STAMP)

system:
	bash deploy/local/install.sh

setup: system $(STAMP)

gates: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: setup gates
	bash deploy/local/run-tests.sh

demo: setup
	$(VENV)/bin/responder --log-format console demo

clean-stack:
	-$(VENV)/bin/responder stack down
	rm -rf .stack
