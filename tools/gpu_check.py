"""GPU self-check: environment, GPU tests, AMP training and benchmarks on
CUDA, each step with its own time budget (under 10 minutes in all); one
markdown report (docs/gpu.md).

    python tools/gpu_check.py            # work_dirs/gpu_check/report.md
    python tools/gpu_check.py --dry-run  # the steps, budgets, commands
    python tools/gpu_check.py --steps environment gpu-tests
"""
import importlib.util
import os.path as osp
import sys


def load_check():
    """mmkd/apis/gpu_check.py by its path, without importing the mmkd
    package: the check has to run, and report, where mmkd's stack does not
    import."""
    here = osp.dirname(osp.abspath(__file__))
    for path in (osp.join(here, '..', 'mmkd', 'apis', 'gpu_check.py'),
                 osp.join(here, '..', '..', 'apis', 'gpu_check.py')):
        if osp.isfile(path):
            spec = importlib.util.spec_from_file_location(
                'mmkd_gpu_check', osp.abspath(path))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    from mmkd.apis import gpu_check
    return gpu_check


if __name__ == '__main__':
    sys.exit(load_check().main())
