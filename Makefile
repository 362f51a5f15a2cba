# The two set-up commands of the project: `make studio` (run it) and `make test` (test it).
PYTHON ?= python3
PIP = $(PYTHON) -m pip

.PHONY: studio test deps test-deps chromium

studio: deps
	$(PYTHON) app.py

test: test-deps
	$(PYTHON) -m pytest

deps:
	$(PIP) install -q -r requirements.txt

test-deps: deps chromium
	$(PIP) install -q -r requirements-dev.txt

# The real-browser test drives Debian's chromium (browser downloads by playwright are not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: the browser test will be skipped (apt-get install chromium)"; fi; }
