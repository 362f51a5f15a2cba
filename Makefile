# The two set-up commands of the project: `make studio` (run it) and `make test` (test it).
#
# Both install into a virtual environment, .venv, created on first use (stock Debian/Ubuntu Python refuses
# system-wide pip installs: PEP 668). PYTHON=/path/to/python installs into and runs that interpreter instead.
# TORCH_INDEX picks the torch build (the README lists what each downloads):
#   empty (default)                          PyPI's torch; on Linux x86_64 the CUDA build with its nvidia-* wheels
#   https://download.pytorch.org/whl/cpu     the CPU-only build
#   https://download.pytorch.org/whl/cu128   a given CUDA build (cu126, cu128, ... as PyTorch publishes them)
# ARGS are passed on: `make studio ARGS="--port 7861 --workspace /tmp/ws"`, `make test ARGS="-k publish"`.
# A second run installs nothing: stamps remember what was installed, for which requirement files and TORCH_INDEX.

VENV ?= .venv
BOOTSTRAP ?= python3
PYTHON ?= $(VENV)/bin/python
TORCH_INDEX ?=
ARGS ?=
PIP = $(PYTHON) -m pip
TORCH_VERSION := $(shell sed -n 's/^torch==//p' requirements.txt)

ifeq ($(PYTHON),$(VENV)/bin/python)
ENV_READY := $(VENV)/pyvenv.cfg
STAMPS := $(VENV)/.stamps
else
ENV_READY :=
STAMPS := .make-stamps
endif
KEY := $(shell printf '%s|%s' '$(PYTHON)' '$(TORCH_INDEX)' | cksum | cut -d' ' -f1)
DEPS_STAMP := $(STAMPS)/deps-$(KEY)
DEV_STAMP := $(STAMPS)/dev-$(KEY)

.PHONY: studio test lint deps test-deps chromium

studio: deps
	$(PYTHON) app.py $(ARGS)

test: test-deps chromium
	$(PYTHON) -m pytest $(ARGS)

# The formatter owns the layout (pyproject.toml holds its one config).
lint: test-deps
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m ruff check .

deps: $(DEPS_STAMP)

test-deps: $(DEV_STAMP)

$(VENV)/pyvenv.cfg:
	@$(BOOTSTRAP) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "$(BOOTSTRAP) is older than Python 3.11; install 3.11 or newer and run: make BOOTSTRAP=python3.11" >&2; exit 1; }
	@$(BOOTSTRAP) -m venv $(VENV) >/dev/null 2>&1 || { rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(BOOTSTRAP) -m venv $(VENV); \
	  else echo "cannot create $(VENV): install Python's venv module (apt-get install python3-venv) and run make again" >&2; exit 1; fi; }
	@echo "created $(VENV) with $$($(VENV)/bin/python --version)"

# torch first, from TORCH_INDEX when given (--force-reinstall: switching TORCH_INDEX really switches the build);
# then everything else, which finds torch already satisfied.
$(DEPS_STAMP): requirements.txt $(ENV_READY)
	$(if $(TORCH_INDEX),$(PIP) install -q --force-reinstall --no-deps --index-url "$(TORCH_INDEX)" "torch==$(TORCH_VERSION)")
	$(PIP) install -q -r requirements.txt
	@mkdir -p $(STAMPS) && touch $@

$(DEV_STAMP): requirements-dev.txt $(DEPS_STAMP)
	$(PIP) install -q -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

# The real-browser test drives Debian's chromium (browser downloads by playwright are not used).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is not installed: the browser test will be skipped (apt-get install chromium)"; fi; }
