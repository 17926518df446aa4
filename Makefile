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

# Refresh the Chinese catalogue after adding or changing user-facing texts.
messages: $(STAMP)
	$(BIN)/pybabel extract --no-location --omit-header -k msg -k translate:2 -k t -k out -k out.error:1 \
		-k out.text -o /tmp/liuhen.pot engine api diagrams
	$(BIN)/pybabel update --no-fuzzy-matching --omit-header -i /tmp/liuhen.pot -D liuhen -d engine/locale -l zh_CN

clean:
	rm -rf $(VENV) var
