# Two commands for a fresh machine: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages: graphviz draws flowcharts, fonts-noto-cjk gives them Chinese glyphs, and chromium runs
# the browser tests.
SYSTEM_PACKAGES := graphviz fonts-noto-cjk chromium

.PHONY: run test install check messages clean system-packages

run: system-packages $(STAMP)
	$(BIN)/liuhen setup
	$(BIN)/liuhen serve

test: system-packages $(STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing system packages: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "Missing system packages: $$missing. Install them with: sudo apt-get install $$missing"; exit 1; \
		fi; \
	fi

check: $(STAMP)
	$(BIN)/ruff check engine api diagrams tests bench
	$(BIN)/mypy

install: system-packages $(STAMP)

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
