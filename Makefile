# The README's two commands: `make demo` and `make test`. Both install first.
PY := .venv/bin/python
export PYTHONHASHSEED := 0

.PHONY: install demo test lint quick-test lock

install:
	bash tools/install.sh

demo: install
	$(PY) tools/demo.py

# The whole suite (CI runs this through .ci/run), lint first, on every
# core (pytest-xdist; at most 4 workers: each holds detectors in memory).
XDIST := -n auto --maxprocesses=4 --dist loadgroup
test: install lint
	$(PY) -m pytest -q $(XDIST) tests

lint: install
	.venv/bin/ruff check .

# For contributors: everything but the tests marked slow (subprocess training
# runs, multi-process launches, the wheel install).
quick-test: install
	$(PY) -m pytest -q $(XDIST) -m "not slow" tests

# requirements/lock.txt and tools/offline/*.txt, written anew from .venv.
# To move a pin: edit requirements/*.txt, then in a fresh .venv
# `MMKD_UNLOCKED=1 bash tools/install.sh` (pip resolves afresh), then this.
lock:
	$(PY) tools/lock.py
