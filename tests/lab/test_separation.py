"""The library and the lab stay apart: no module of mmkd imports
``mmkd_lab`` (the demo, the benchmark, the built-in data), ``tools`` or
``tests``, not even inside a function (read from the sources); ``import
mmkd``, a COCO config's model and the train tool load nothing of the lab
(in a process); and the lab and the tools read only mmkd's public API.
"""
import ast
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# What mmkd may not import: the lab, and the checkout's tools and tests.
OUTSIDE = ('mmkd_lab', 'tools', 'tests')


def outside_imports(source: str, package: str,
                    filename: str = '<source>') -> list:
    """Every import in ``source`` (a module of ``package``, e.g.
    'mmkd.apis'), at any depth, of a module of OUTSIDE or, relative, above
    the top package: each as ``file:line: text``. The string-literal forms
    ``importlib.import_module('x')`` and ``__import__('x')`` count too."""
    parts = package.split('.')
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):
            if node.level > len(parts):  # climbs out of the top package
                found.append(f'{filename}:{node.lineno}: '
                             f'{ast.unparse(node)}')
                continue
            base = parts[:len(parts) - node.level + 1]
            names = ['.'.join(base + ([node.module] if node.module else []))]
        elif isinstance(node, ast.Call) and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) \
                and ast.unparse(node.func) in (
                    '__import__', 'import_module', 'importlib.import_module'):
            names = [node.args[0].value]
        if any(name.split('.')[0] in OUTSIDE for name in names):
            found.append(f'{filename}:{node.lineno}: {ast.unparse(node)}')
    return found


def library_sources() -> list:
    """(path, package) of every .py file of mmkd/ (not through the .mim
    symlinks: configs and tools are not the library's modules)."""
    found = []
    top = osp.join(ROOT, 'mmkd')
    for folder, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(('.', '__pycache__')))
        package = osp.relpath(folder, ROOT).replace(os.sep, '.')
        found += [(osp.join(folder, name), package)
                  for name in sorted(files) if name.endswith('.py')]
    return found


def test_mmkd_imports_nothing_of_the_lab_tools_or_tests():
    sources = library_sources()
    assert any(p.endswith(osp.join('mmkd', 'apis', 'train.py'))
               for p, _ in sources)
    found = []
    for path, package in sources:
        with open(path) as f:
            found += outside_imports(f.read(), package,
                                     osp.relpath(path, ROOT))
    assert not found, 'mmkd imports outside the library:\n' + '\n'.join(
        found)


@pytest.mark.parametrize('line', [
    'import mmkd_lab',
    'def prepare():\n    from mmkd_lab.data import ensure_dataset',
    'import mmkd_lab.demo as demo',
    'from tools.train import main',
    'import tests.conftest',
    'from ... import mmkd_lab',  # from mmkd/apis/: above mmkd
    'from ...tools import gpu_check',
    "importlib.import_module('mmkd_lab.benchmark')",
    "__import__('tests')",
])
def test_outside_imports_finds_an_import_of_the_lab(line):
    assert outside_imports(line, 'mmkd.apis')


def test_outside_imports_lets_the_library_import_itself():
    source = ('from .. import compat\nfrom ..models import losses\n'
              'from . import cli\nimport mmkd.models\nimport toolz\n'
              'from mmdet.models import tests_utils\n'
              'importlib.import_module(name)\n')
    assert outside_imports(source, 'mmkd.apis') == []
    assert outside_imports('from .. import x', 'mmkd') != []


# One fresh process (this one has loaded the lab through other tests):
# import mmkd, load the train tool's imports, build a COCO config's
# distiller (no downloads: building initialises no weights, and the teacher
# checkpoint is loaded on first use); after each step, the lab modules that
# are loaded.
SEPARATION = r'''
import runpy, sys
def lab():
    return sorted(m for m in sys.modules
                  if m.split('.')[0] in ('mmkd_lab',) or
                  m.startswith(('mmkd.data', 'mmkd.experiments')))
import mmkd
print('import mmkd', lab())
runpy.run_path('tools/train.py', run_name='imported')
print('tools/train.py', lab())
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
cfg = Config.fromfile('mmkd::vkd/vkd_retinanet_r50_r18_coco.py')
cfg.model.teacher_ckpt = None  # building reads no weights (no init_weights)
with DefaultScope.overwrite_default_scope('mmdet'):
    model = MODELS.build(cfg.model)
print('COCO model', type(model).__name__, lab())
import mmkd_lab.demo
print('the demo', lab())
'''


def test_training_imports_nothing_of_the_lab():
    out = subprocess.run([sys.executable, '-c', SEPARATION], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()[-4:]
    assert lines[:3] == ['import mmkd []', 'tools/train.py []',
                         'COCO model StrictFpnTeacherDistill []'], out.stdout
    # The check sees the lab once it is imported: the empty lists mean it.
    assert lines[3].startswith("the demo ['mmkd_lab', 'mmkd_lab.data"), \
        lines[3]


def private_uses(source: str, filename: str = '<source>') -> list:
    """``name._attr`` (other than ``self._x`` / ``cls._x``: a class's own),
    ``getattr(obj, '_attr')`` (and ``setattr``, ``hasattr``) and
    ``from x import _name`` in ``source``: each as ``file:line: text``."""
    tree = ast.parse(source, filename)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith('_') \
                and not node.attr.startswith('__'):
            if isinstance(node.value, ast.Name) and node.value.id in (
                    'self', 'cls'):
                continue
            found.append(f'{filename}:{node.lineno}: {ast.unparse(node)}')
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ('getattr', 'setattr', 'hasattr') \
                and len(node.args) > 1 \
                and isinstance(node.args[1], ast.Constant) \
                and str(node.args[1].value).startswith('_') \
                and not str(node.args[1].value).startswith('__'):
            found.append(f'{filename}:{node.lineno}: {ast.unparse(node)}')
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith('_') and \
                        not alias.name.startswith('__'):
                    found.append(f'{filename}:{node.lineno}: from '
                                 f'{node.module} import {alias.name}')
    return found


LAB_SOURCES = sorted(
    glob.glob(osp.join(ROOT, 'mmkd_lab', '**', '*.py'), recursive=True) +
    glob.glob(osp.join(ROOT, 'tools', '*.py')) +
    glob.glob(osp.join(ROOT, 'tools', 'analysis', '*.py')))


def test_lab_and_tools_read_no_private_attribute():
    assert any(p.endswith('benchmark.py') for p in LAB_SOURCES)
    found = []
    for path in LAB_SOURCES:
        with open(path) as f:
            found += private_uses(f.read(), osp.relpath(path, ROOT))
    assert not found, '\n'.join(found)


@pytest.mark.parametrize('line', [
    "model._run_teacher(data['inputs'], data['data_samples'])",
    'rec._data_buffer = []',
    "clip = getattr(model, '_mmkd_clip_grad', None)",
    "built._mmkd_clip_grad = 0.1",
    "hasattr(model, '_run_teacher')",
    'from mmkd.models.algorithms.dino_teacher_distill import _depth',
])
def test_private_uses_finds_what_the_benchmark_once_read(line):
    assert private_uses(line)
    assert not private_uses('self._buffer = []\nmodel.teacher_forward(x)')
