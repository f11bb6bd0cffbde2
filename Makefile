# The README's two commands: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo dist-demo test lint format bench openapi-snapshot sandbox-up sandbox-down clean

$(STAMP): pyproject.toml scripts/bootstrap
	scripts/bootstrap
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/gwm demo

# Distributed mode on this machine: PostgreSQL, RabbitMQ, `gwm api` (2 processes), two
# workers, beat and a simulated cluster, each process logging under .run/dist-demo/.
dist-demo: $(STAMP)
	$(VENV)/bin/python scripts/dist-demo

test: $(STAMP)
	scripts/run-tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gwm

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	bench/run

# Record /api/v1/openapi.json as docs/openapi-v1.json; refuses a change that is not an addition.
openapi-snapshot: $(STAMP)
	$(VENV)/bin/python -m tests.test_openapi_contract

sandbox-up:
	scripts/ganeti-sandbox up

sandbox-down:
	scripts/ganeti-sandbox down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
