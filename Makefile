# Fresh machine: `make demo` or `make test` create .venv, install everything, and run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
ARCH   := $(shell uname -m)

# torch + torchvision releases that import together (timm needs a torchvision built for its torch)
ifeq ($(ARCH),aarch64)
TORCH := torch==2.9.1 torchvision==0.24.1
else
TORCH := torch==2.14.1 torchvision==0.29.1
endif

STAMP := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: setup test test-fast demo bench zoo lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -e '.[data,dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

test: setup
	$(VENV)/bin/pytest -q

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check mmzoo plugins tests bench

# The documentation site, into site/ (strict: a broken link or reference fails; the suite builds it too).
docs: setup
	$(VENV)/bin/mkdocs build --strict

demo: setup
	$(VENV)/bin/mmzoo list
	$(PY) -m mmzoo.train.demo

bench: setup
	$(PY) bench/run.py

# The zoo's results table (zoo/results.md, .csv, .png): every recipe in zoo/recipes, 3 seeds, 2 runs at a time.
zoo: setup
	$(VENV)/bin/mmzoo sweep zoo/sweep.yaml --parallel 2

clean:
	rm -rf $(VENV) .pytest_cache site
