"""pytest plugin for tools/analysis/upstream_tests.py: what is imported
before MMEngine's or MMRazor's own tests are collected.

``MMKD_UPSTREAM_IMPORT`` chooses (``-p upstream_tests_plugin``):

- ``mmkd`` (the default): ``import mmkd``, as a user's process has it.
- ``quantization-stub``: only mmkd's stub for MMRazor's quantization
  package (:func:`mmkd.compat.stub_mmrazor_quantization`), without which
  ``import mmrazor.models`` fails on torch >= 2.1 and MMRazor's tests
  collect nothing. ``mmkd/__init__`` (and with it every other patch) is
  not run.
- ``none``: nothing.

Whatever the mode, the terminal summary says whether mmkd was imported at
the end of the run, so that a baseline that imported it is seen.
"""
import importlib
import importlib.util
import os
import sys
import types

MODE = os.environ.get('MMKD_UPSTREAM_IMPORT', 'mmkd')
_done = ''


def _quantization_stub_alone() -> str:
    """mmkd.compat's quantization step without ``mmkd/__init__`` (which
    applies every patch): mmkd.compat is imported under an empty ``mmkd``
    package, the stub installed, and every ``mmkd`` module dropped from
    sys.modules again (compat's own imports patch nothing)."""
    spec = importlib.util.find_spec('mmkd')  # does not import it
    shell = types.ModuleType('mmkd')
    shell.__path__ = list(spec.submodule_search_locations)
    sys.modules['mmkd'] = shell
    try:
        compat = importlib.import_module('mmkd.compat')
        return compat.stub_mmrazor_quantization()
    finally:
        for name in [m for m in sys.modules
                     if m == 'mmkd' or m.startswith('mmkd.')]:
            del sys.modules[name]


if MODE == 'mmkd':
    import mmkd.compat
    _done = f'import mmkd: {mmkd.compat.STATUS}'
elif MODE == 'quantization-stub':
    _done = ('mmrazor quantization: ' +
             _quantization_stub_alone())
elif MODE != 'none':
    raise ValueError(f'MMKD_UPSTREAM_IMPORT={MODE!r}: use mmkd, '
                     'quantization-stub or none')


def pytest_report_header(config):
    return f'upstream_tests_plugin: {MODE} ({_done or "nothing imported"})'


def pytest_terminal_summary(terminalreporter):
    imported = 'yes' if 'mmkd' in sys.modules else 'no'
    terminalreporter.write_line(f'mmkd imported at the end: {imported}')
