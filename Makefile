# Two commands do all the set-up on a fresh machine:
#   make run    installs what is needed (in .venv) and starts the dashboard
#   make test   installs what is needed (in .venv, plus the system chromium
#               for the browser tests) and runs the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= localhost
PORT   ?= 8501
# Debian packages the browser tests (tests/browser) need: Playwright drives this
# chromium (/usr/bin/chromium); the fonts keep screenshots readable.
BROWSER_PKGS ?= chromium fonts-dejavu-core

.PHONY: run test clean chromium

$(STAMP): requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-test.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run Home.py --server.address $(HOST) --server.port $(PORT)

# One pytest run for everything, browser tests included; its failure fails make
# (and so .ci/run).
test: $(STAMP) chromium
	$(BIN)/python -m pytest

# Installs chromium with apt-get when it is missing (as root, or through sudo).
# Never fails by itself: when it cannot install, it says so, and the browser
# tests then skip (outside CI) or fail (when CI is set).
chromium:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then \
		echo "chromium: $$(command -v chromium || echo /usr/bin/chromium)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "chromium: NOT FOUND and no apt-get on this machine; install chromium to run the browser tests (skipped outside CI, failed in CI)."; \
	else \
		if [ "$$(id -u)" = 0 ]; then sudo=""; \
		elif ! command -v sudo >/dev/null 2>&1; then sudo=none; \
		elif [ -t 0 ]; then sudo="sudo"; \
		else sudo="sudo -n"; fi; \
		if [ "$$sudo" = none ]; then \
			echo "chromium: NOT FOUND; not root and no sudo, so run as root: apt-get install --no-install-recommends $(BROWSER_PKGS)"; \
		else \
			echo "chromium: not found, installing $(BROWSER_PKGS) with apt-get ..."; \
			{ $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BROWSER_PKGS) >/dev/null; } \
			&& echo "chromium: installed $$(command -v chromium || echo /usr/bin/chromium)" \
			|| echo "chromium: INSTALL FAILED (apt-get install $(BROWSER_PKGS)); the browser tests will be skipped outside CI and fail in CI."; \
		fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache
