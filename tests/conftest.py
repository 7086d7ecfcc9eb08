"""What the tests share, once: the repository's paths, the demo distiller,
a random-weight demo teacher checkpoint, ``tools/train.py`` in a
subprocess, an unpickling payload, and mmdet models from mmdet's own configs
(offline). Tests take these as fixtures; no test module imports another."""
import copy
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

import mmkd  # noqa: F401  (applies the compatibility layer, registers modules)

# Under pytest-xdist (`make test` runs the suite on every core) the workers
# share the cores: each worker's torch, and the tools it starts in
# subprocesses, get their share.
_WORKERS = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
_THREADS = max(1, min(2, (os.cpu_count() or 1) // _WORKERS))
if _WORKERS > 1:
    os.environ.setdefault('OMP_NUM_THREADS', str(_THREADS))
torch.set_num_threads(_THREADS)

TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
_DEMO = osp.join(ROOT, 'configs', 'demo')
REPO = SimpleNamespace(
    root=ROOT,
    tests=TESTS,  # toymodel.py and killhook.py: PYTHONPATH for configs
    configs=osp.join(ROOT, 'configs'),
    tools=osp.join(ROOT, 'tools'),
    demo=_DEMO,
    vkd_demo=osp.join(_DEMO, 'vkd_retinanet_shapes.py'),
    student_demo=osp.join(_DEMO, 'retinanet_student_shapes.py'),
    teacher_demo=osp.join(_DEMO, 'retinanet_teacher_shapes.py'),
)
NUM_CLASSES = 5


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped, saying why, where torch sees no
    GPU (tools/gpu_check.py runs them on a GPU machine)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if item.get_closest_marker('cuda'):
            item.add_marker(skip)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


# --- paths -------------------------------------------------------------------
@pytest.fixture(scope='session')
def repo():
    """The repository's paths: root, tests, configs, tools, demo (the demo
    configs' folder), vkd_demo, student_demo, teacher_demo."""
    return REPO


@pytest.fixture(scope='session')
def load_tool():
    """``load_tool('export_student')``: a script of tools/ as a module."""

    def load(name):
        spec = importlib.util.spec_from_file_location(
            f'tool_{name}', osp.join(REPO.tools, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


# --- the demo distiller ------------------------------------------------------
def _build(model_cfg, scope='mmdet'):
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(copy.deepcopy(model_cfg))


@pytest.fixture(scope='session')
def build_model():
    """``build_model(model_cfg, scope='mmdet')``: the model of a config dict,
    built under ``scope`` (the config dict is not changed)."""
    return _build


def _demo_distill_cfg(student_outs=5, teacher_ckpt=None, **distiller):
    from mmengine.config import Config
    model = copy.deepcopy(Config.fromfile(REPO.vkd_demo).model)
    model.teacher_ckpt = teacher_ckpt
    if student_outs != 5:
        model.architecture.neck.num_outs = student_outs
        model.architecture.bbox_head.anchor_generator.strides = [
            8, 16, 32, 64, 128][:student_outs]
    for key, value in distiller.items():  # replaced, not merged
        model.distiller[key] = value
    return model


@pytest.fixture(scope='session')
def demo_distill_cfg():
    """``demo_distill_cfg(student_outs=5, teacher_ckpt=None, **distiller)``:
    the ``model`` of configs/demo/vkd_retinanet_shapes.py (64-channel FPNs,
    strides 8-128 on a 128x128 input), ``student_outs`` FPN levels for the
    student, each ``distiller`` key replaced (not merged)."""
    return _demo_distill_cfg


@pytest.fixture(scope='session')
def demo_distiller():
    """``demo_distiller(student_outs=5, **distiller)``: the demo
    FpnTeacherDistill built with ``teacher_ckpt=None`` (random teacher), see
    ``demo_distill_cfg``."""

    def build(student_outs=5, **distiller):
        return _build(_demo_distill_cfg(student_outs, None, **distiller))

    return build


@pytest.fixture(scope='session')
def random_teacher_ckpt(tmp_path_factory):
    """Path of a checkpoint of the demo teacher architecture with random
    weights (``torch.manual_seed(0)``), as a trained teacher would be
    given: ``{'state_dict': ...}``. The global RNG is left as it was."""
    from mmengine.config import Config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        teacher = _build(Config.fromfile(REPO.teacher_demo).model)
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)
    return path


# --- tools/train.py ----------------------------------------------------------
@pytest.fixture(scope='session')
def train_tool():
    """``train_tool(config, work_dir, cfg_options=(), args=(), env=None,
    cwd=repo.root, timeout=600)``: ``python tools/train.py CONFIG --work-dir
    WORK_DIR [ARGS] [--cfg-options ...]`` in a subprocess, output captured;
    the CompletedProcess (not checked)."""

    def train(config, work_dir, cfg_options=(), args=(), env=None, cwd=None,
              timeout=600):
        cmd = [sys.executable, osp.join(REPO.tools, 'train.py'), str(config),
               '--work-dir', str(work_dir), *args]
        if cfg_options:
            cmd += ['--cfg-options', *cfg_options]
        return subprocess.run(cmd, cwd=cwd or REPO.root, env=env,
                              capture_output=True, text=True, check=False,
                              timeout=timeout)

    return train


# --- bilinear resizing, written out ------------------------------------------
def _bilinear_matrix(out_size: int, in_size: int) -> torch.Tensor:
    """(out, in) weights of 1-D linear interpolation with half-pixel
    centres (align_corners=False): output i samples the input at
    (i + 0.5) * in / out - 0.5, clamped at 0 and at the last pixel."""
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        src = max((i + 0.5) * in_size / out_size - 0.5, 0.0)
        lo = min(int(src), in_size - 1)
        hi = min(lo + 1, in_size - 1)
        frac = src - lo
        m[i, lo] += 1 - frac
        m[i, hi] += frac
    return m


@pytest.fixture(scope='session')
def bilinear_resize():
    """``bilinear_resize(x, (h, w))``: (B, C, H, W) -> (B, C, h, w) by the
    formula of bilinear interpolation (rows, then columns), independent of
    ``F.interpolate``."""

    def resize(x, size):
        rows = _bilinear_matrix(size[0], x.shape[-2])
        cols = _bilinear_matrix(size[1], x.shape[-1])
        out = torch.einsum('ih,bchw,jw->bcij', rows, x.double(), cols)
        return out.to(x.dtype)

    return resize


# --- an unpickling payload ---------------------------------------------------
class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture(scope='session')
def payload():
    """``payload(marker_path)``: an object whose unpickling creates the file
    ``marker_path``."""
    return Payload


@pytest.fixture
def payload_ckpt(tmp_path):
    """``(path, marker)``: a small checkpoint whose loading (unpickling)
    creates the file ``marker``."""
    marker = tmp_path / 'PWNED'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'lin.weight': torch.zeros(1, 2),
                               'lin.bias': torch.zeros(1)},
                'meta': Payload(str(marker))}, path)
    return path, marker


# --- model configs without downloads -----------------------------------------
def _disable_pretrained(cfg) -> None:
    """Set every ``init_cfg`` that loads weights (type 'Pretrained') to None,
    in place, at any depth of a model config."""
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        inits = init if isinstance(init, (list, tuple)) else [init]
        if any(isinstance(i, dict) and i.get('type') == 'Pretrained'
               for i in inits):
            cfg['init_cfg'] = None
        for value in cfg.values():
            _disable_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _disable_pretrained(value)


def _offline_model_cfg(model_cfg):
    """A copy of a model config that builds without reading or downloading
    weights: no 'Pretrained' init at any depth, no ``teacher_ckpt``; a
    detector named by its config (``cfg_path``) written out, so that a test
    can change its settings."""
    from mmkd.config_files import detector_config
    model = copy.deepcopy(model_cfg)  # the caller's config stays untouched
    for key in ('architecture', 'teacher'):
        if isinstance(model.get(key), dict):
            model[key] = detector_config(model[key], f'model.{key}')
    _disable_pretrained(model)
    if 'teacher_ckpt' in model:
        model.teacher_ckpt = None
    assert '://' not in str(model), f'a URL is left in {model}'
    return model


@pytest.fixture(scope='session')
def offline_model_cfg():
    """``offline_model_cfg(cfg.model)``: a copy that builds offline."""
    return _offline_model_cfg


# --- mmdet models from mmdet's own configs, offline --------------------------
def _mmdet_model_cfg(cfg_path: str, num_classes: int = NUM_CLASSES):
    """``model`` of an mmdet config ('mmdet::...'), offline-buildable from
    the mmrazor scope (``_scope_='mmdet'``, backbone init disabled)."""
    from mmengine.config import ConfigDict
    from mmengine.hub import get_config
    model = copy.deepcopy(get_config(cfg_path).model)
    model.backbone.init_cfg = None
    model._scope_ = 'mmdet'
    for key in ('bbox_head', ):
        if key in model:
            model[key].num_classes = num_classes
    if 'roi_head' in model:
        model.roi_head.bbox_head.num_classes = num_classes
    return ConfigDict(model)


@pytest.fixture(scope='session')
def mmdet_model_cfg():
    """``mmdet_model_cfg(cfg_path, num_classes=5)``: the ``model`` of an
    mmdet config ('mmdet::...'), buildable offline from any scope."""
    return _mmdet_model_cfg


@pytest.fixture(scope='session')
def build_mmdet():
    """``build_mmdet(cfg_path)``: the mmdet detector of an mmdet config,
    offline, its weights initialised (the heads' prior-probability bias)."""

    def build(cfg_path: str):
        model = _build(_mmdet_model_cfg(cfg_path), 'mmdet')
        # The heads' prior-probability bias: without it RetinaNet's first
        # classification loss is ~1000 and SGD diverges within steps.
        model.init_weights()
        return model

    return build


@pytest.fixture(scope='session')
def batch():
    """``batch(model, num_images=2, size=(128, 128), seed=0,
    training=True)``: a synthetic detection batch through the model's data
    preprocessor."""
    from mmkd_lab.data import make_det_batch

    def make(model, num_images=2, size=(128, 128), seed=0, training=True):
        data = make_det_batch(num_images, size, seed)
        return model.data_preprocessor(data, training)

    return make


@pytest.fixture(scope='session')
def total_loss():
    """``total_loss(losses)``: the sum of the ``loss`` terms of a losses
    dict (lists summed)."""

    def total(losses: dict) -> torch.Tensor:
        result = 0
        for name, value in losses.items():
            if 'loss' not in name:
                continue
            if isinstance(value, (list, tuple)):
                value = sum(value)
            result = result + value
        return result

    return total


@pytest.fixture(scope='session')
def mmdet_zoo():
    """mmdet config path ('retinanet/x.py') -> (weights URL, box AP), from
    the installed mmdet's metafiles."""
    import glob

    import mmdet
    import yaml
    zoo = {}
    pattern = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', '*',
                       'metafile.yml')
    for path in glob.glob(pattern):
        with open(path) as f:
            meta = yaml.safe_load(f)
        if not isinstance(meta, dict):
            continue
        for model in meta.get('Models') or []:
            results = model.get('Results') or []
            aps = [r.get('Metrics', {}).get('box AP') for r in results
                   if isinstance(r, dict)]
            zoo[model['Config'].replace('configs/', '', 1)] = (
                model.get('Weights'), aps[0] if aps else None)
    return zoo
