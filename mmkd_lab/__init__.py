"""mmkd's lab: the demo and the comparison on the built-in data
(:mod:`.demo`), the step-time benchmark (:mod:`.benchmark`), their figures
(:mod:`.figures`), the built-in synthetic COCO-format data and in-memory
batches (:mod:`.data`) and the benchmark's reduced-precision teacher
(:mod:`.reduced_precision`).

A separate package beside the library: it imports ``mmkd``, and nothing in
``mmkd`` imports it, so a training run (``import mmkd`` through a config's
``custom_imports``, ``tools/train.py``) never loads it
(``tests/lab/test_separation.py`` checks both). It ships in the same
distribution so that ``mmkd demo`` and ``mmkd benchmark`` run from a plain
``pip install`` outside the checkout: the configs and tools they run come
from ``mmkd/.mim``, their outputs go under the current directory. It reads
only mmkd's public API (``tests/lab/test_separation.py`` checks that too).
"""
