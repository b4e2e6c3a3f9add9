# Every target installs what it needs first: on a fresh clone `make demo` and `make test`
# are the whole set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test check lint types bench demo clean

# uv installs in a third of pip's time (8 s against 20 s here); where it cannot be had, pip does it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv || true
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]' \
		|| $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Four workers on two cores: the e2e tests (collected first) spend seconds waiting on real
# processes and the real clock, while the others keep both cores busy; two tests at a time
# (--maxschedchunk 2) so that the e2e ones spread over the workers; the browser tests, one
# group, on one worker, which launches Chromium once (--dist loadgroup). The package is compiled
# first and bytecode is written even where PYTHONDONTWRITEBYTECODE is set: the suite starts a
# few hundred processes of ours, each of which would otherwise compile it again.
test: install
	$(PY) -m compileall -q bulk_delete
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n 4 --dist loadgroup --maxschedchunk 2

lint: install
	$(VENV)/bin/ruff check bulk_delete tests bench
	$(VENV)/bin/ruff format --check bulk_delete tests bench

types: install
	$(VENV)/bin/mypy

check: lint types test

bench: install
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m bench

demo: install
	$(PY) -m bulk_delete.emulator.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info bench/results demo-output
