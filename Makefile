# One-command set-up: `make demo` and `make test` create .venv and install everything first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow check install browser clean

# torch is installed first and pinned: `pip install torch==2.13.0` takes the CPU build;
# an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The main job: label the seed document with the shipped model and print the table.
demo: $(STAMP)
	$(BIN)/framing label seeds/documents/001_eedc8a1d2973616a.txt

check: $(STAMP)
	$(BIN)/framing data check

# The `framing annotate` test drives a real headless Chromium: Debian's chromium + chromium-driver,
# installed here when missing and apt-get can (root); otherwise that one test skips, saying why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium + chromium-driver (Debian) for the browser test"; \
	  apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	  (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1) || \
	  echo "note: could not install chromium; the browser test will skip"; \
	else echo "note: no chromium/chromedriver; the browser test will skip (apt-get install chromium chromium-driver)"; fi

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build *.egg-info
