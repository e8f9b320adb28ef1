# Djinn: `make run` starts the platform, `make test` runs every test.
# Both create .venv and install what they need; nothing else must be installed by hand.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# llama.cpp compiles from source: a portable build runs on any x86-64 CPU.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

RUNTIME_STAMP := $(VENV)/.runtime-$(shell cat requirements.txt requirements-nodeps.txt constraints.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-nodeps.txt requirements-dev.txt constraints.txt | sha1sum | cut -c1-12)

.PHONY: run test lint format bench services browser install install-dev check-deploy clean help

help:
	@echo "make run     start Djinn on http://127.0.0.1:8000 (SQLite and a private Redis by default)"
	@echo "make test    lint and run every test against real PostgreSQL, Redis and workers"
	@echo "make lint    ruff check and format check"
	@echo "make bench   run the benchmarks and print their figures (BENCH_ARGS=--quick for a smoke run)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt -c constraints.txt
	rm -f $(VENV)/.runtime-* && touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	rm -f $(VENV)/.dev-* && touch $@

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

run: install
	$(PY) scripts/run.py

services:
	@bash scripts/ensure-services.sh

browser:
	@bash scripts/ensure-browser.sh

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: install-dev services browser lint
	DATABASE_URL=sqlite://:memory: $(PY) manage.py makemigrations --check --dry-run  # models vs migrations: no database needed
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-dev services
	$(PY) bench/run.py $(BENCH_ARGS)

check-deploy: install
	DJANGO_DEBUG=false DJANGO_SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	DJANGO_ALLOWED_HOSTS=djinn.example.com $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf .run tests/artifacts bench/results
