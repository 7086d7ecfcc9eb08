"""Everything mmkd patches in third-party code, in one place.

``apply()`` runs once on ``import mmkd``. Each patch is guarded by the
version that needs it and says why. Nothing here unpickles arbitrary objects.

1. MMRazor 1.0.0 on torch >= 2.1: ``import mmrazor.models`` dies in
   ``mmrazor.structures.quantization`` (module-level use of torch.ao helpers
   that torch removed: ``reverse2``, ``reverse_sequential_wrapper2``...).
   Distillation never touches it, so that package is replaced by a stub whose
   every name raises :class:`QuantizationUnavailable` with the reason.
2. MMRazor imports ``joblib`` (predictor handlers) without declaring it: a
   missing joblib fails with an install hint instead of deep in mmrazor.
3. MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
   defaults to ``weights_only=True`` and then refuses MMEngine's own
   checkpoint contents (``HistoryBuffer``, numpy arrays). We allow-list
   exactly those, keep ``weights_only=True`` on every load path (and pass it
   explicitly on torch < 2.6, where the default would unpickle anything), and
   turn torch's refusal into an error that names the file and the global.
4. MMRazor 1.0.0 loads ``teacher_ckpt`` with ``strict=False``: a checkpoint
   of another architecture leaves a random teacher. The teacher is loaded
   with :func:`mmkd.checkpoint.load_state_strict` instead.
5. MMRazor 1.0.0 checks distiller configs with bare ``assert``s: a recorder
   ``source`` that is not a module, or a loss argument the loss does not
   take, fail with a ``ValueError`` naming the key and the valid choices.
6. MMEngine 0.10.7 writes checkpoints (and ``last_checkpoint``) in place: a
   process killed mid-write leaves a truncated file. Local writes go to a
   temporary file in the same folder, then ``os.replace`` (atomic).
7. MMEngine 0.10.7 resolves ``package::path`` configs only for the
   OpenMMLab packages it lists, finds a package's ``.mim`` folder through
   ``pkg_resources`` (wrong for an editable install) and does not accept
   ``package::path`` in ``Config.fromfile``. ``mmkd::vkd/x.py`` names a config
   shipped in ``mmkd/.mim/configs``, in ``_base_`` and in
   ``Config.fromfile`` alike.
"""
import importlib
import importlib.util
import pickle
import re
import sys
import types
from typing import List

import torch
from packaging.version import Version

TORCH = Version(torch.__version__.split('+')[0])
_applied = False


def _installed_version(package: str) -> Version:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return Version(version(package))
    except PackageNotFoundError:
        return Version('0')


# --- 1. MMRazor quantization on torch >= 2.1 --------------------------------
class QuantizationUnavailable(RuntimeError):
    """Raised by any use of MMRazor's quantization under mmkd's stub."""


QUANT_REASON = (
    'MMRazor 1.0.0 quantization ({name}) is unavailable on torch {torch}: its '
    'mmrazor.structures.quantization package uses torch.ao helpers that '
    'torch removed, so mmkd replaces it with this stub (distillation does '
    'not need it). For quantization use a separate environment with '
    'torch==1.13 and mmrazor 1.0.0.')


class _Unavailable:
    """Stands for one quantization name; using it raises with the reason."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _raise(self, *args, **kwargs):
        raise QuantizationUnavailable(
            QUANT_REASON.format(name=self._name, torch=torch.__version__))

    __call__ = __getitem__ = _raise

    def __getattr__(self, attr):
        if attr.startswith('__'):
            raise AttributeError(attr)
        self._raise()

    def __repr__(self) -> str:
        return f'<unavailable mmrazor quantization: {self._name}>'


def _mmrazor_quantization_broken() -> bool:
    return (_installed_version('mmrazor') <= Version('1.0.0') and
            TORCH >= Version('2.1'))


def stub_mmrazor_quantization() -> bool:
    name = 'mmrazor.structures.quantization'
    if name in sys.modules or not _mmrazor_quantization_broken():
        return False
    stub = types.ModuleType(name, QUANT_REASON.split(':')[0] + ' (stub)')
    stub.__path__ = []  # a package: submodule imports fail cleanly
    stub.__all__ = []   # `from .quantization import *` adds nothing
    stub.__getattr__ = lambda attr: (_ for _ in ()).throw(
        AttributeError(attr)) if attr.startswith('__') else _Unavailable(attr)
    sys.modules[name] = stub
    return True


# --- 2. joblib ---------------------------------------------------------------
def check_joblib() -> None:
    if importlib.util.find_spec('joblib') is None:
        raise ImportError(
            'mmrazor needs joblib but does not declare it: '
            'pip install joblib==1.4.2 (tools/install.sh installs it)')


# --- 3. weights_only checkpoint loading -------------------------------------
def mmengine_safe_globals() -> List:
    """What MMEngine/MMDetection checkpoints hold besides tensors and builtin
    containers: the message hub's HistoryBuffer (numpy arrays inside) and
    numpy scalars in the meta. None of these runs code when unpickled."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        multiarray = importlib.import_module('numpy._core.multiarray')
    except ImportError:
        multiarray = importlib.import_module('numpy.core.multiarray')
    found = [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
             multiarray.scalar]
    found += [type(np.dtype(t)) for t in
              ('float64', 'float32', 'float16', 'int64', 'int32', 'int8',
               'uint8', 'bool')]
    # HistoryBuffer pickles its statistics as getattr(HistoryBuffer, 'min'):
    # allow exactly that, never a general getattr.
    found += [(history_buffer_statistic, 'builtins.getattr'),
              (history_buffer_statistic, '__builtin__.getattr')]
    return found


def history_buffer_statistic(owner, name: str):
    """``getattr`` as a checkpoint may use it: HistoryBuffer's statistics."""
    from mmengine.logging import HistoryBuffer
    # The registry is filled by the first HistoryBuffer(); a fresh process
    # that resumes has none yet, so the built-in four are named here.
    allowed = {'min', 'max', 'mean', 'current'} | set(
        HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); only '
        "MMEngine HistoryBuffer statistics are allowed")


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects that weights-only loading refuses."""


def _explain_refusal(filename, exc: Exception) -> UnsafeCheckpointError:
    # torch's own message advises weights_only=False; name the global instead.
    text = str(exc)
    found = re.search(r'GLOBAL ([\w.]+)', text) or re.search(
        r'WeightsUnpickler error:\s*(\S[^\n]*)', text)
    what = found.group(1) if found else 'an object torch refuses'
    return UnsafeCheckpointError(
        f'refused to load checkpoint {filename!r}: it references {what}, '
        'which is not a tensor or MMEngine bookkeeping, and unpickling it '
        'could run code. mmkd loads every checkpoint with weights_only=True. '
        'If you wrote this file yourself and trust it, re-save only its '
        'state_dict (torch.save({"state_dict": ckpt["state_dict"]}, path)).')


def patch_checkpoint_loading() -> None:
    from mmengine.runner import checkpoint as ckpt_mod
    if hasattr(torch.serialization, 'add_safe_globals'):  # torch >= 2.4
        torch.serialization.add_safe_globals(mmengine_safe_globals())
    loader = ckpt_mod.CheckpointLoader
    if getattr(loader.load_checkpoint, '_mmkd_safe', False):
        return
    original = loader.load_checkpoint.__func__

    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        try:
            return original(cls, filename, map_location, logger)
        except pickle.UnpicklingError as exc:
            if isinstance(exc, UnsafeCheckpointError):
                raise
            raise _explain_refusal(filename, exc) from exc

    load_checkpoint._mmkd_safe = True
    loader.load_checkpoint = classmethod(load_checkpoint)

    if TORCH < Version('2.6'):
        # There the default is weights_only=False: give MMEngine's loaders a
        # torch whose `load` defaults to True (they call `torch.load`
        # through their module global).
        from mmengine.utils.dl_utils import hub
        for module in (ckpt_mod, hub):
            module.torch = WeightsOnlyTorch()


class WeightsOnlyTorch(types.ModuleType):
    """``torch`` as seen by a patched module: ``load`` defaults to
    ``weights_only=True``; everything else is torch's."""

    def __init__(self) -> None:
        super().__init__('torch')

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(*args, **kwargs):
        kwargs.setdefault('weights_only', True)
        return torch.load(*args, **kwargs)


# --- 4. strict teacher loading ----------------------------------------------
def patch_teacher_loading() -> None:
    if _installed_version('mmrazor') > Version('1.0.0'):
        return
    from mmrazor.models.algorithms.distill.configurable import (
        single_teacher_distill as std,
    )

    from .checkpoint import load_state_strict

    def load_teacher(model, filename, map_location='cpu', strict=False,
                     logger=None, revise_keys=None):
        return load_state_strict(model, filename, 'model.teacher_ckpt',
                                 map_location or 'cpu')

    std.load_checkpoint = load_teacher


# --- 5. distiller config errors ---------------------------------------------
def _nearest(name: str, choices, n: int = 3) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.4)
    return f'; did you mean {", ".join(repr(c) for c in close)}?' if close \
        else ''


def check_recorder_sources(recorders, model, which: str) -> None:
    """Every ModuleOutputs/ModuleInputs recorder source must be a module."""
    names = dict(model.named_modules())
    for rec_name, recorder in recorders.recorders.items():
        kind = type(recorder).__name__
        if kind not in ('ModuleOutputsRecorder', 'ModuleInputsRecorder'):
            continue
        if recorder.source not in names:
            raise ValueError(
                f'distiller.{which}_recorders.{rec_name}.source='
                f'{recorder.source!r} is not a module of the {which} '
                f'({type(model).__name__}){_nearest(recorder.source, names)}')


def check_loss_arguments(losses, loss_forward_mappings) -> None:
    """Mapping keys must be arguments of the loss's forward."""
    from inspect import signature
    for loss_name, mapping in (loss_forward_mappings or {}).items():
        if loss_name not in losses:
            raise ValueError(
                f'distiller.loss_forward_mappings.{loss_name}: no distill '
                f'loss of that name; losses are {sorted(losses)}')
        params = signature(losses[loss_name].forward).parameters
        for arg in mapping:
            if arg not in params:
                raise ValueError(
                    f'distiller.loss_forward_mappings.{loss_name}.{arg}: '
                    f'{type(losses[loss_name]).__name__}.forward takes no '
                    f'argument {arg!r}; it takes {list(params)}')


def patch_distiller_checks() -> None:
    if _installed_version('mmrazor') > Version('1.0.0'):
        return
    from mmrazor.models.distillers import ConfigurableDistiller as CD
    if getattr(CD.prepare_from_student, '_mmkd', False):
        return
    check_mappings = CD._check_loss_forward_mappings

    def _check_loss_forward_mappings(self, losses, mappings, *args):
        check_loss_arguments(losses, mappings)
        return check_mappings(self, losses, mappings, *args)

    def prepare(which):
        original = getattr(CD, f'prepare_from_{which}')

        def prepare_from(self, model):
            check_recorder_sources(getattr(self, f'{which}_recorders'), model,
                                   which)
            return original(self, model)

        prepare_from._mmkd = True
        return prepare_from

    CD._check_loss_forward_mappings = _check_loss_forward_mappings
    CD.prepare_from_student = prepare('student')
    CD.prepare_from_teacher = prepare('teacher')


# --- 6. atomic local writes --------------------------------------------------
def atomic_write(data, filepath, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``filepath`` so that readers see the old file or the
    whole new one, never a part."""
    import os
    import tempfile
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-',
                               suffix=os.path.basename(str(filepath)))
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def patch_atomic_local_writes() -> None:
    if _installed_version('mmengine') > Version('0.10.7'):
        return
    from mmengine.fileio.backends import LocalBackend
    if getattr(LocalBackend.put, '_mmkd', False):
        return

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, filepath, 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj, filepath, 'w', encoding)

    put._mmkd = True
    LocalBackend.put = put
    LocalBackend.put_text = put_text
    # CheckpointHook writes the `last_checkpoint` pointer with the builtin
    # open(): that one name, in that module only, becomes an atomic writer.
    from mmengine.hooks import checkpoint_hook
    checkpoint_hook.open = open_pointer_atomically


class _AtomicText:
    """A text file opened for writing whose content replaces ``path`` in
    one step when it is closed (see :func:`atomic_write`)."""

    def __init__(self, path: str, encoding=None) -> None:
        self.path, self.encoding, self.parts = path, encoding, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            atomic_write(''.join(self.parts), self.path, 'w', self.encoding)


def open_pointer_atomically(file, mode: str = 'r', *args, **kwargs):
    """``open`` for mmengine's checkpoint hook: a text write of
    ``last_checkpoint`` is atomic; anything else is the builtin open."""
    import builtins
    import os
    if mode == 'w' and isinstance(file, (str, os.PathLike)) and \
            os.path.basename(file) == 'last_checkpoint':
        return _AtomicText(os.fspath(file), kwargs.get('encoding'))
    return builtins.open(file, mode, *args, **kwargs)


# --- 7. mmkd:: configs ------------------------------------------------------
def package_dir() -> str:
    """The folder of the imported mmkd package (site-packages/mmkd for a
    wheel, the checkout's mmkd/ for an editable install)."""
    import os.path as osp
    return osp.dirname(osp.abspath(__file__))


def patch_config_scope() -> None:
    if _installed_version('mmengine') > Version('0.10.7'):
        return
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    from mmengine.config import Config
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault('mmkd', 'mmkd')
    if getattr(Config.fromfile, '_mmkd', False):
        return
    found = config_module.get_installed_path

    def get_installed_path(package: str) -> str:
        return package_dir() if package == 'mmkd' else found(package)

    config_module.get_installed_path = get_installed_path
    hub_module.get_installed_path = get_installed_path
    fromfile = Config.fromfile

    def fromfile_with_scope(filename, *args, **kwargs):
        import os.path as osp
        if isinstance(filename, str) and '::' in filename and \
                not osp.isfile(filename):
            filename, _ = Config._get_cfg_path(filename, '')
        return fromfile(filename, *args, **kwargs)

    fromfile_with_scope._mmkd = True
    Config.fromfile = staticmethod(fromfile_with_scope)


def apply() -> None:
    """Apply every patch once (idempotent)."""
    global _applied
    if _applied:
        return
    # mmengine imports pkg_resources to find mmdet's configs; setuptools
    # warns about it on every tool start. The warning is not actionable for
    # users (setuptools is pinned below 81 where it still exists).
    import warnings
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated',
                            category=UserWarning)
    check_joblib()
    stub_mmrazor_quantization()
    patch_checkpoint_loading()
    import mmrazor.models  # noqa: F401  (must import after the stub)
    patch_teacher_loading()
    patch_distiller_checks()
    patch_atomic_local_writes()
    patch_config_scope()
    _applied = True
