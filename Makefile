# Two commands for a fresh machine: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages: graphviz draws flowcharts, fonts-noto-cjk gives them Chinese glyphs, and chromium runs
# the browser tests.
SYSTEM_PACKAGES := graphviz fonts-noto-cjk chromium

# The modeler page (/modeler) runs a JavaScript bundle that npm builds from modeler/ into api/static/modeler/.
# system-packages installs Debian's nodejs and npm when npm is missing; without npm everything else still
# installs, and the page says that the modeler is not built.
MODELER_BUNDLE := api/static/modeler/modeler.js
MODELER_SOURCES := modeler/package.json modeler/build.mjs $(wildcard modeler/src/*.* modeler/src/*/*.*)

.PHONY: run test install check messages clean system-packages modeler

run: system-packages $(STAMP) modeler
	$(BIN)/liuhen setup
	$(BIN)/liuhen serve

test: system-packages $(STAMP) modeler
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done; \
		command -v npm >/dev/null || echo nodejs npm); \
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

install: system-packages $(STAMP) modeler

$(STAMP): pyproject.toml modeler/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@$(MAKE) --no-print-directory modeler
	touch $(STAMP)

modeler:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(MODELER_BUNDLE); else \
		echo "npm was not found, so the modeler page (/modeler) is not built. Install Node.js 18 or newer and" \
			"npm (Debian: apt-get install nodejs npm), then run make again."; fi

modeler/node_modules/.package-lock.json: modeler/package-lock.json
	cd modeler && npm ci --no-audit --no-fund

$(MODELER_BUNDLE): modeler/node_modules/.package-lock.json $(MODELER_SOURCES)
	cd modeler && npm run build

# Refresh the Chinese catalogue after adding or changing user-facing texts, then translate every empty
# msgstr it lists. `.venv/bin/python -m engine.catalog --check` only reports, and exits 1 on a gap.
messages: $(STAMP)
	$(BIN)/python -m engine.catalog

clean:
	rm -rf $(VENV) var modeler/node_modules api/static/modeler
