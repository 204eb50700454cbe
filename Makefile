# The two commands of the README: `make demo` and `make test`.
# Both install what they need: .venv with the project, and Debian's prometheus,
# prometheus-alertmanager (and espeak-ng, sox, mtail for tests and benchmarks).

PY := $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEB_PACKAGES := prometheus prometheus-alertmanager espeak-ng sox mtail
DEB_BINARIES := prometheus prometheus-alertmanager promtool amtool espeak-ng sox mtail

.PHONY: demo test lint venv system-deps bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PY)" || { echo "Python 3.11 is needed: install python3.11 (or python3 >= 3.11) and retry."; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

# Installs the Debian packages when a binary is missing and we are root; otherwise one clear line.
system-deps:
	@missing=""; for b in $(DEB_BINARIES); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null \
	      || { echo "apt-get could not install $(DEB_PACKAGES); install them and retry."; exit 1; }; \
	  else \
	    echo "missing:$$missing -- run: sudo apt-get install $(DEB_PACKAGES)"; exit 1; \
	  fi; \
	fi

lint: venv
	$(BIN)/ruff check .

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: venv system-deps
	$(BIN)/tts-sentinel demo

bench: venv system-deps
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache
