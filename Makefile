# Every target installs what it needs first: on a fresh clone `make demo` and `make test`
# are the whole set-up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install extras compiled test check lint types bench demo clean

# uv installs in a third of pip's time (8 s against 20 s here). The venv is made without pip
# (ensurepip alone takes 3 s) and the system's pip puts uv in it; where uv cannot be had, the
# venv gets its pip and pip installs.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check uv || true
	$(MAKE) --no-print-directory extras EXTRAS=dev
	touch $(STAMP)

extras:
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[$(EXTRAS)]' \
		|| ($(PY) -m ensurepip --default-pip && $(PY) -m pip install --quiet --no-compile -e '.[$(EXTRAS)]')

# make install is the set-up the README names beside make demo: its venv compiled.
install: compiled

# The bytecode of site-packages, compiled on both cores, so that processes do not each compile
# pandas on their first import (where PYTHONDONTWRITEBYTECODE is set, on every import); not
# what no test or run imports (the type checker, the packages' own test suites, pygments'
# lexers: two thirds of the files). The pattern meets each file's whole path, so it starts at
# site-packages: a clone in a folder named tests/ is compiled all the same.
NOT_RUN := site-packages/(mypy|mypyc|pandas-stubs|(.*/)?(tests|lexers))/
COMPILE_SITE = $(PY) -m compileall -q -j 0 -x '$(NOT_RUN)' "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null
compiled: $(STAMP)
	$(COMPILE_SITE)

# Five workers on two cores: three run the e2e tests in lanes (groups, tests/conftest.py), which
# spend seconds waiting on real processes and the real clock, while the other two keep both
# cores busy at a lower priority. --dist loadgroup hands each worker a test or a group at a
# time. The package is compiled first and bytecode is written even where
# PYTHONDONTWRITEBYTECODE is set, so the processes do not compile it again
# (docs/design/tests.md). On a fresh clone, one collection first writes the test modules and
# pytest's plugins as its assertion rewriting leaves them (3 s), which each of the five workers
# would otherwise redo at once (15 s of CPU); site-packages is compiled beside it, on the core
# it leaves (6.6 s for both instead of 8.2 s one after the other). Its errors, if any, are the
# run's to report.
test: $(STAMP)
	$(PY) -m compileall -q bulk_delete
	$(COMPILE_SITE) & PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q --collect-only -p no:xdist -p no:cacheprovider >/dev/null; wait
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n 5 --dist loadgroup

lint: $(STAMP)
	$(VENV)/bin/ruff check bulk_delete tests bench
	$(VENV)/bin/ruff format --check bulk_delete tests bench

types: $(STAMP)
	$(VENV)/bin/mypy

check: lint types test

bench: compiled
	$(MAKE) --no-print-directory extras EXTRAS=dev,bench
	$(PY) -m bench

demo: compiled
	$(PY) -m bulk_delete.emulator.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info bench/results demo-output
