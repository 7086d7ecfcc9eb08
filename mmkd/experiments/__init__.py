"""Experiment drivers on top of the library: the demo and the comparison on
the built-in data (:mod:`.demo`), the step-time benchmark (:mod:`.benchmark`)
and their figures (:mod:`.figures`).

Nothing in the library imports this package (``import mmkd`` does not load
it). It ships with mmkd so that the demo and the benchmark run from a plain
``pip install`` outside the checkout (``mmkd demo``, ``mmkd benchmark``): the
configs and tools they run come from ``mmkd/.mim``, their outputs go under
the current directory.
"""
