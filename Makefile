# Lanyard: `make run` to try it, `make test` to test it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py
# Two processes: each test still gets its own database; override with make test PYTEST_ARGS=...
PYTEST_ARGS ?= -n 2

.PHONY: run test install install-dev lint lock units bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The lock files pin every package, transitive ones included, with the hash of each file PyPI serves;
# requirements.txt and requirements-dev.txt are what people edit, then `make lock`.
install: $(BIN)/activate
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock

install-dev: $(BIN)/activate tests/browser/node_modules/.installed
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock

## make lock: recompile requirements.lock and requirements-dev.lock (with hashes) after editing requirements*.txt
# uv runs from a throwaway venv; a pin already in a lock stays unless the .txt needs another.
LOCK_TOOLS ?= /tmp/lanyard-lock-tools
UV_VERSION ?= 0.13.9
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--no-emit-index-url --no-emit-find-links --custom-compile-command "make lock"
lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(LOCK_TOOLS)/bin/uv pip compile --quiet requirements.txt $(LOCK_FLAGS) -o requirements.lock
	$(LOCK_TOOLS)/bin/uv pip compile --quiet requirements-dev.txt -c requirements.lock $(LOCK_FLAGS) -o requirements-dev.lock

# axe-core for the accessibility tests, from npm (no lock file: it would record the registry's host)
tests/browser/node_modules/.installed: tests/browser/package.json
	$(PYTHON) tools/test_prereqs.py --ensure-npm
	npm install --prefix tests/browser --no-package-lock --no-audit --no-fund --silent
	touch $@

## make run: install, migrate, create the demo school, print its sign-ins and serve on 127.0.0.1:5000
run: install
	LANYARD_ENV=development $(BIN)/flask db upgrade
	LANYARD_ENV=development $(BIN)/flask demo
	LANYARD_ENV=development $(BIN)/flask run --host 127.0.0.1 --port 5000

# eslint for static/js, from npm (no lock file, as above)
tools/eslint/node_modules/.installed: tools/eslint/package.json
	npm install --prefix tools/eslint --no-package-lock --no-audit --no-fund --silent
	touch $@

## make gates: the static checks `make test` runs first: ruff (lint, complexity, format), mypy on app/, eslint on static/js
.PHONY: gates
gates: install-dev tools/eslint/node_modules/.installed
	$(BIN)/ruff check app tests benchmarks tools
	$(BIN)/ruff format --check app tests benchmarks tools
	$(BIN)/mypy
	tools/eslint/node_modules/.bin/eslint static/js

## make test: the whole suite, on SQLite and PostgreSQL, browser journeys included
# tools/test_prereqs.py installs Chromium (and PostgreSQL) with apt as root or names the package, uses
# LANYARD_TEST_PG or 127.0.0.1:5432 when it answers, else a throwaway cluster it removes afterwards, then runs pytest.
test: install-dev gates
	$(BIN)/python tools/test_prereqs.py $(PYTEST_ARGS)

## make units: check the systemd units in deploy/systemd with systemd-analyze verify (CI does too)
units:
	bash deploy/systemd/verify

lint: install-dev
	$(BIN)/ruff check app tests benchmarks tools

clean:
	rm -rf $(VENV) .pytest_cache

## make mutation: mutation-test the modules that protect people and records with mutmut, print each module's
## score and fail under 90% of non-equivalent mutants killed (issue 19). MODULES="app/services/imei.py ..."
## for some of them (each must be in [tool.mutmut] only_mutate in pyproject.toml). One worker, niced.
## make mutation-ci: the same over the modules CI runs ([tool.lanyard.mutation] ci; .ci/run calls it).
## Either gives mutmut only the chosen modules' own tests ([tool.lanyard.mutation.tests], tools/mutation_run.py).
# Run `make install-dev` first. Each mutant runs only the tests covering the mutated function, on SQLite.
# Modules too large to finish are limited to the functions named in [tool.lanyard.mutation] functions.
# Survivors that no test can kill are listed with the reason in tests/mutation_equivalents.toml.
.PHONY: mutation mutation-ci
MUTATION_MODULES = $(or $(MODULES),$(shell $(BIN)/python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["mutmut"]["only_mutate"]))'))
mutation:
	nice -n 10 $(BIN)/python tools/mutation_run.py $(MUTATION_MODULES) -- --max-children 1 $(shell $(BIN)/python tools/mutation_report.py --patterns $(MUTATION_MODULES))
	$(BIN)/python tools/mutation_report.py $(MUTATION_MODULES)

mutation-ci:
	nice -n 10 $(BIN)/python tools/mutation_run.py --ci -- --max-children 1 $(shell $(BIN)/python tools/mutation_report.py --ci --patterns)
	$(BIN)/python tools/mutation_report.py --ci
