# Tollgate: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench mutation clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## run: install, migrate the embedded SQLite database, seed demo data, serve on 127.0.0.1:8000
## The offline Stripe simulator fills the admin with subscriptions, entitlements and an audit
## trail while the server starts. The demo relaxes the admin's second factor (DEBUG is on).
run: export ADMIN_REQUIRE_2FA ?= false
run: export LOG_LEVEL ?= WARNING
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_seed
	@$(BIN)/python manage.py runserver --noreload 127.0.0.1:8000 & server=$$!; \
	trap 'kill $$server 2>/dev/null' INT TERM EXIT; \
	$(BIN)/python manage.py stripe_simulate all --customers 2 --seed 1 --wait 60 \
	  || echo "stripe_simulate reported lost deliveries (see above)"; \
	echo "Tollgate is serving on http://127.0.0.1:8000/admin/ (Ctrl-C to stop)"; \
	wait $$server

## test: lint, then the whole suite on throwaway PostgreSQL and Redis servers
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash .ci/with-services.sh $(BIN)/pytest --cov --cov-report=term:skip-covered --durations=15 $(PYTEST_ARGS)

## bench: benchmarks and fault drills on PostgreSQL, Redis, gunicorn and a Celery worker
## (not part of make test); writes docs/benchmarks.md. BENCH_ARGS="--only ingest --scale 0.2"
bench: $(STAMP)
	TOLLGATE_PG_DURABLE=1 bash .ci/with-services.sh $(BIN)/python -m bench.run $(BENCH_ARGS)

## mutation: mutmut on the pure decision modules (not part of make test); score and survivors
## in mutants/report.md, recorded in docs/testing.md. Fast unit tests on SQLite: no services.
mutation: $(STAMP)
	env -u CI -u DATABASE_URL -u REDIS_URL $(BIN)/python .ci/mutation.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage htmlcov
