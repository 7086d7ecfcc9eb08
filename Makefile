# The README's two commands: `make demo` and `make test`. Both install first.
PY := .venv/bin/python
export PYTHONHASHSEED := 0

.PHONY: install demo test

install:
	bash tools/install.sh

demo: install
	$(PY) tools/demo.py

test: install
	$(PY) -m pytest -q tests
