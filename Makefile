# The Subscription Sandbox: `make run` to use it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench install migrate seed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	SANDBOX_BASE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py seed_demo

run: seed
	SANDBOX_BASE_URL=http://$(HOST):$(PORT) $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/pages.py
	$(BIN)/python benchmarks/live.py
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/functions.py

clean:
	rm -rf $(VENV) var/test.sqlite3*
