# Two commands for a fresh machine: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install check messages clean

run: $(STAMP)
	$(BIN)/liuhen setup
	$(BIN)/liuhen serve

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check engine api diagrams tests bench
	$(BIN)/mypy

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Refresh the Chinese catalogue after adding or changing user-facing texts, then translate every empty
# msgstr it lists. `.venv/bin/python -m engine.catalog --check` only reports, and exits 1 on a gap.
messages: $(STAMP)
	$(BIN)/python -m engine.catalog

clean:
	rm -rf $(VENV) var
