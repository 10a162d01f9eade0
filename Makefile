# Lanyard: `make run` to try it, `make test` to test it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
# Two processes: each test still gets its own database; override with make test PYTEST_ARGS=...
PYTEST_ARGS ?= -n 2

.PHONY: run test install install-dev lint bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt

install-dev: $(BIN)/activate tests/browser/node_modules/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt

# axe-core for the accessibility tests, from npm (no lock file: it would record the registry's host)
tests/browser/node_modules/.installed: tests/browser/package.json
	npm install --prefix tests/browser --no-package-lock --no-audit --no-fund --silent
	touch $@

## make run: install, migrate, create the demo school, print its sign-ins and serve on 127.0.0.1:5000
run: install
	LANYARD_ENV=development $(BIN)/flask db upgrade
	LANYARD_ENV=development $(BIN)/flask demo
	LANYARD_ENV=development $(BIN)/flask run --host 127.0.0.1 --port 5000

## make test: the whole suite, on SQLite and PostgreSQL, browser journeys included
test: install-dev
	$(BIN)/ruff check app tests benchmarks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check app tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
