# Tollgate: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck format bench mutation clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## run: install, migrate the embedded SQLite database, seed demo data, serve on 127.0.0.1:8000
## The offline Stripe simulator fills the admin with subscriptions, entitlements and an audit
## trail while the server starts; a fake Stripe API on 127.0.0.1:12111 answers dj-stripe's
## mirror, so its customers, subscriptions and invoices fill too (nothing leaves the machine).
## The demo relaxes the admin's second factor (DEBUG is on).
RUN_PORT ?= 8000
STRIPE_FAKE_PORT ?= 12111
run: export ADMIN_REQUIRE_2FA ?= false
run: export LOG_LEVEL ?= WARNING
run: export STRIPE_API_HOST = http://127.0.0.1:$(STRIPE_FAKE_PORT)
# Well-formed (dj-stripe checks the shape), and only ever sent to the fake above.
run: export STRIPE_SECRET_KEY = sk_test_51TollgateOfflineDemo0000000000
run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_seed
	@$(BIN)/python manage.py stripe_fake_api --port $(STRIPE_FAKE_PORT) & fake=$$!; \
	$(BIN)/python manage.py runserver --noreload 127.0.0.1:$(RUN_PORT) & server=$$!; \
	trap 'kill $$server $$fake 2>/dev/null' INT TERM EXIT; \
	$(BIN)/python manage.py stripe_simulate all --customers 2 --seed 1 --wait 60 \
	  --base-url http://127.0.0.1:$(RUN_PORT) --stripe-api $$STRIPE_API_HOST \
	  || echo "stripe_simulate reported lost deliveries (see above)"; \
	kill -0 $$fake 2>/dev/null || echo "The fake Stripe API did not start (see above)"; \
	echo "Tollgate is serving on http://127.0.0.1:$(RUN_PORT)/admin/ (Ctrl-C to stop)"; \
	wait $$server

## test: lint, type check, then the whole suite on throwaway PostgreSQL and Redis servers
test: lint typecheck
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

## typecheck: mypy --strict with the Django and DRF plugins ([tool.mypy] in pyproject.toml;
## no module is exempt: docs/testing.md)
typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .coverage htmlcov
