# The two commands README.md opens with: `make up` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test install bench schemas lock clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,embedded]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/binome up

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

schemas: $(STAMP)
	$(BIN)/binome schemas

# requirements.lock: what the container image installs (pyproject.toml's
# dependencies and the build backend, every package pinned with its hashes;
# not the embedded stack nor the test tools). Run after changing a pin;
# tests/unit/test_packaging.py checks that it matches pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,embedded,lock]'
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .binome
