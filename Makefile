# The two commands of the README: `make demo` and `make test`.
# Both install what they need: .venv with the project, and Debian's prometheus,
# prometheus-alertmanager (and espeak-ng, sox, mtail, logrotate, chromium for tests and benchmarks).

PY := $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DEB_PACKAGES := prometheus prometheus-alertmanager
DEMO_DEB_BINARIES := prometheus prometheus-alertmanager promtool amtool
# tests and benchmarks also use real speech (espeak-ng, sox), the peer we compare with (mtail),
# the real logrotate the tailer is tested against, and headless Chromium for the incident page
# (with a CJK font, so the probe texts in its screenshot are legible)
DEB_PACKAGES := $(DEMO_DEB_PACKAGES) espeak-ng sox mtail logrotate chromium fonts-wqy-microhei
DEB_BINARIES := $(DEMO_DEB_BINARIES) espeak-ng sox mtail logrotate chromium

.PHONY: demo test lint venv system-deps test-deps bench clean lock

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PY)" || { echo "Python 3.11 is needed: install python3.11 (or python3 >= 3.11) and retry."; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

# $(call debs,PACKAGES,BINARIES): apt-get install PACKAGES when a BINARY is missing and we are root;
# otherwise stop with one line saying what to install.
define debs
	@missing=""; for b in $(2); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $(1) >/dev/null \
	      || { echo "apt-get could not install $(1); install them and retry."; exit 1; }; \
	  else \
	    echo "missing:$$missing -- run: sudo apt-get install $(1)"; exit 1; \
	  fi; \
	fi
endef

system-deps:
	$(call debs,$(DEMO_DEB_PACKAGES),$(DEMO_DEB_BINARIES))

test-deps: system-deps
	$(call debs,$(DEB_PACKAGES),$(DEB_BINARIES))

lint: venv
	$(BIN)/ruff check .

# Test files run on TEST_WORKERS processes (a file stays on one worker: its module-scoped stack is
# shared by its tests); TEST_WORKERS=0 runs them in this process, one after the other.
TEST_WORKERS ?= 3

test: venv test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20

demo: venv system-deps
	$(BIN)/tts-sentinel demo

bench: venv test-deps
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache

# requirements-lock.txt: runtime dependencies and the build backend, pinned with hashes (the Dockerfile
# installs with --require-hashes). Keep its header: pip-compile runs with --no-header.
lock: venv
	$(BIN)/pip install -q pip-tools
	head -n 6 requirements-lock.txt > .lock-header
	$(BIN)/pip-compile --generate-hashes --strip-extras --allow-unsafe --build-deps-for=wheel \
	  --no-emit-find-links --no-emit-index-url --no-header --output-file requirements-lock.txt pyproject.toml
	cat .lock-header requirements-lock.txt > .lock-new && mv .lock-new requirements-lock.txt && rm .lock-header
