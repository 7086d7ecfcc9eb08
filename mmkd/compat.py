"""What mmkd must patch in third-party code, in one place.

Everything that MMEngine's and MMRazor's extension points allow lives
elsewhere and changes nothing for code that does not use it: strict teacher
loading (:mod:`mmkd.models.algorithms.strict_teacher`, registered
subclasses), distiller config errors (:mod:`mmkd.models.distillers`), atomic
checkpoint files (:mod:`mmkd.fileio`, a registered file backend that mmkd's
runtime config selects). What is left here cannot be reached another way.

``apply()`` runs once on ``import mmkd``. No patch looks at a version number:
each checks for the problem itself, and a protection that cannot be applied
(because the code it protects changed shape) raises a
:class:`ProtectionWarning` at import, never silently runs without it.
:data:`STATUS` records what each step did (``mmkd gpu-check`` and
``python -c "import mmkd.compat as c; print(c.STATUS)"`` show it).
``tests/test_compat.py`` fails when the patched upstream code changes.

1. ``quantization``: MMRazor 1.0.0's ``mmrazor.structures.quantization``
   dies at import on torch >= 2.1 (module-level use of torch.ao helpers that
   torch removed), and with it ``import mmrazor.models``. Where that import
   fails, the package is replaced by a stub whose every name raises
   :class:`QuantizationUnavailable` with the reason. Distillation never
   touches it.
2. ``joblib``: MMRazor imports ``joblib`` without declaring it; a missing one
   fails with the install command.
3. ``weights-only loading``: every checkpoint MMEngine loads (local files,
   ``http(s)://`` teacher checkpoints, ``torchvision://``...) is read with
   ``weights_only=True`` and mmkd's allow-list of MMEngine's bookkeeping
   (:func:`mmengine_safe_globals`), whatever ``weights_only`` MMEngine passes
   (0.10.7 passes none; its URL loader, torch's ``load_url``, defaults to
   ``weights_only=False``, which would unpickle anything a download holds).
   MMEngine's loaders reach torch through two module globals of
   ``mmengine.runner.checkpoint``, ``torch`` and ``load_url``; both are
   replaced there (and in ``mmengine.utils.dl_utils.hub``). A refusal names
   the file and the offending global
   (:class:`mmkd.checkpoint.UnsafeCheckpointError`: a ``CheckpointError``
   and an ``UnpicklingError`` as torch raises).
4. ``last_checkpoint pointer``: MMEngine's ``CheckpointHook`` writes the
   ``last_checkpoint`` pointer with the builtin ``open``; that one name in
   that module becomes an atomic writer (the checkpoint files themselves go
   through :mod:`mmkd.fileio`'s backend).
5. ``mmkd:: configs``: MMEngine resolves ``package::path`` only for the
   packages in ``MODULE2PACKAGE``, finds a package's ``.mim`` folder through
   ``pkg_resources`` (wrong for an editable install) and refuses
   ``package::path`` in ``Config.fromfile``. ``mmkd::vkd/x.py`` names a
   config in ``mmkd/.mim/configs``, in ``_base_`` and ``Config.fromfile``.
"""
import importlib
import importlib.util
import pickle
import re
import sys
import types
import warnings
from typing import Callable, Dict, List

import torch
from packaging.version import Version

# Re-exported: callers catch ``mmkd.compat.UnsafeCheckpointError`` too.
from .checkpoint import UnsafeCheckpointError
from .config_files import package_dir

TORCH = Version(torch.__version__.split('+')[0])
STATUS: Dict[str, str] = {}
_applied = False


class ProtectionWarning(UserWarning):
    """mmkd could not apply one of its protections: the third-party code it
    protects has changed. Read the message before training."""


class ProtectionUnavailable(Exception):
    """Raised by a patch step when the code it patches is not as expected."""


def _step(name: str, apply: Callable[[], str]) -> None:
    try:
        STATUS[name] = apply()
    except ProtectionUnavailable as exc:
        STATUS[name] = f'UNAVAILABLE: {exc}'
        warnings.warn(
            f'mmkd could not apply its protection "{name}": {exc}. mmkd runs '
            'WITHOUT it; pin the versions in requirements/runtime.txt or '
            'report this at the mmkd issue tracker.', ProtectionWarning,
            stacklevel=3)


def _require(module, *names: str) -> None:
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise ProtectionUnavailable(
            f'{module.__name__} has no {", ".join(missing)} any more')


# --- 1. MMRazor quantization on torch >= 2.1 --------------------------------
class QuantizationUnavailable(RuntimeError):
    """Raised by any use of MMRazor's quantization under mmkd's stub."""


QUANT_NAME = 'mmrazor.structures.quantization'
QUANT_REASON = (
    'MMRazor quantization ({name}) is unavailable on torch {torch}: '
    'mmrazor.structures.quantization failed to import ({error}; it uses '
    'torch.ao helpers that torch removed), so mmkd replaced it with this '
    'stub (distillation does not need it). For quantization use a separate '
    'environment with torch==1.13 and mmrazor 1.0.0.')
_quant_error = ''


class _Unavailable:
    """Stands for one quantization name; using it raises with the reason."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _raise(self, *args, **kwargs):
        raise QuantizationUnavailable(QUANT_REASON.format(
            name=self._name, torch=torch.__version__, error=_quant_error))

    __call__ = __getitem__ = _raise

    def __getattr__(self, attr):
        if attr.startswith('__'):
            raise AttributeError(attr)
        self._raise()

    def __repr__(self) -> str:
        return f'<unavailable mmrazor quantization: {self._name}>'


def _forget(prefix: str) -> None:
    for name in [m for m in sys.modules
                 if m == prefix or m.startswith(prefix + '.')]:
        del sys.modules[name]


def stub_mmrazor_quantization() -> str:
    """Try the real import; where it fails, install the stub."""
    global _quant_error
    if QUANT_NAME in sys.modules:
        return 'imported before mmkd: left as it is'
    try:
        importlib.import_module(QUANT_NAME)
        return 'not needed: it imports'
    except Exception as exc:  # noqa: BLE001 - any import failure is the case
        _quant_error = f'{type(exc).__name__}: {exc}'
    # The failed import left neither package in sys.modules; partly run
    # submodules of the quantization package go too.
    _forget(QUANT_NAME)
    stub = types.ModuleType(QUANT_NAME, 'mmkd stub: ' + _quant_error)
    stub.__path__ = []  # a package: submodule imports fail cleanly
    stub.__all__ = []   # `from .quantization import *` adds nothing
    stub.__getattr__ = lambda attr: (_ for _ in ()).throw(
        AttributeError(attr)) if attr.startswith('__') else _Unavailable(attr)
    sys.modules[QUANT_NAME] = stub
    return f'stubbed ({_quant_error})'


# --- 2. joblib ---------------------------------------------------------------
def check_joblib() -> str:
    if importlib.util.find_spec('joblib') is None:
        raise ImportError(
            'mmrazor needs joblib but does not declare it: '
            'pip install joblib==1.4.2 (tools/install.sh installs it)')
    return 'present'


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


# What torch's weights-only unpickler says when a pickle names a global that
# is not allow-listed, and what mmkd's own allow-list says.
_UNSAFE_REFERENCE = re.compile(r'GLOBAL ([\w.]+)|checkpoint asks for ([^;]+)')
_REASON = re.compile(r'WeightsUnpickler error:\s*(\S[^\n]*)')


def _explain_refusal(filename, exc: Exception) -> UnsafeCheckpointError:
    """mmkd's message for a weights-only refusal, without torch's advice to
    load with ``weights_only=False`` (which runs whatever the file holds)."""
    text = str(exc)
    found = _UNSAFE_REFERENCE.search(text)
    if found:
        what = found.group(1) or found.group(2)
        return UnsafeCheckpointError(
            f'refused to load checkpoint {filename!r}: it references {what}, '
            'which is not a tensor or MMEngine bookkeeping, and unpickling '
            'it could run code. mmkd loads every checkpoint with '
            'weights_only=True. If you wrote this file yourself and trust '
            'it, re-save only its state_dict (torch.save({"state_dict": '
            'ckpt["state_dict"]}, path)).')
    reason = _REASON.search(text)
    return UnsafeCheckpointError(
        f'checkpoint {filename!r} could not be read by the weights-only '
        f'loader ({reason.group(1) if reason else type(exc).__name__}): it '
        'is not a PyTorch checkpoint (a corrupt, truncated or other file), '
        'or a plain pickle of more than tensors, which could run code when '
        'unpickled. Check the path and the file; do not load it with '
        'weights_only=False unless you wrote it yourself.')


class WeightsOnlyTorch(types.ModuleType):
    """``torch`` as MMEngine's checkpoint loaders see it: ``load`` always
    uses ``weights_only=True``, even when the caller passes False;
    everything else is torch's."""

    def __init__(self) -> None:
        super().__init__('torch')

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(*args, **kwargs):
        kwargs['weights_only'] = True
        return torch.load(*args, **kwargs)


def load_url_weights_only(url, *args, **kwargs):
    """torch's ``load_url`` (download to the hub cache, then load) with
    ``weights_only=True`` whatever the caller passes."""
    from torch.hub import load_state_dict_from_url
    kwargs['weights_only'] = True
    return load_state_dict_from_url(url, *args, **kwargs)


def patch_checkpoint_loading() -> str:
    from mmengine.runner import checkpoint as ckpt_mod
    from mmengine.utils.dl_utils import hub
    if not hasattr(torch.serialization, 'add_safe_globals'):
        raise ProtectionUnavailable(
            f'torch {torch.__version__} has no '
            'torch.serialization.add_safe_globals (torch >= 2.4 does): '
            "MMEngine's own checkpoints cannot be allow-listed")
    torch.serialization.add_safe_globals(mmengine_safe_globals())
    _require(ckpt_mod, 'torch', 'load_url', 'CheckpointLoader')
    _require(ckpt_mod.CheckpointLoader, 'load_checkpoint')
    ckpt_mod.torch = WeightsOnlyTorch()
    ckpt_mod.load_url = load_url_weights_only
    if hasattr(hub, 'torch'):  # hub's own loader, torch < 1.7 only
        hub.torch = ckpt_mod.torch
    if hasattr(hub, 'load_url'):
        hub.load_url = load_url_weights_only

    loader = ckpt_mod.CheckpointLoader
    if not getattr(loader.load_checkpoint, '_mmkd_safe', False):
        original = loader.load_checkpoint.__func__

        def load_checkpoint(cls, filename, map_location=None,
                            logger='current'):
            try:
                return original(cls, filename, map_location, logger)
            except pickle.UnpicklingError as exc:
                if isinstance(exc, UnsafeCheckpointError):
                    raise
                raise _explain_refusal(filename, exc) from exc

        load_checkpoint._mmkd_safe = True
        loader.load_checkpoint = classmethod(load_checkpoint)
    return 'applied'


# --- 4. atomic last_checkpoint pointer ---------------------------------------
class _AtomicText:
    """A text file opened for writing whose content replaces ``path`` in
    one step when it is closed (see :func:`mmkd.fileio.atomic_write`)."""

    def __init__(self, path: str, encoding=None) -> None:
        self.path, self.encoding, self.parts = path, encoding, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            from .fileio import atomic_write
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


def patch_pointer_write() -> str:
    import inspect

    from mmengine.hooks import checkpoint_hook
    source = inspect.getsource(checkpoint_hook.CheckpointHook)
    if "'last_checkpoint'" not in source or 'with open(' not in source:
        raise ProtectionUnavailable(
            "mmengine's CheckpointHook no longer writes 'last_checkpoint' "
            'with open(): the atomic pointer write does not reach it')
    checkpoint_hook.open = open_pointer_atomically
    return 'applied'


# --- 5. mmkd:: configs ------------------------------------------------------
def _quiet_pkg_resources(function):
    """``function`` (MMEngine's package lookups, which import and reload
    pkg_resources) without setuptools' deprecation warning, which users
    cannot act on (setuptools is pinned below 81, where it still exists).
    Silenced around these calls only, not for the process."""
    import functools

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings(
                'ignore', message='pkg_resources is deprecated',
                category=UserWarning)
            return function(*args, **kwargs)

    return quiet


def patch_config_scope() -> str:
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    from mmengine.config import Config
    from mmengine.config import utils as config_utils
    _require(config_utils, 'MODULE2PACKAGE')
    _require(config_module, 'get_installed_path', 'is_installed')
    _require(hub_module, 'get_installed_path', 'install_package')
    _require(Config, '_get_cfg_path')
    config_utils.MODULE2PACKAGE.setdefault('mmkd', 'mmkd')
    if getattr(Config.fromfile, '_mmkd', False):
        return 'applied'
    found = _quiet_pkg_resources(config_module.get_installed_path)

    def get_installed_path(package: str) -> str:
        return package_dir() if package == 'mmkd' else found(package)

    config_module.get_installed_path = get_installed_path
    hub_module.get_installed_path = get_installed_path
    config_module.is_installed = _quiet_pkg_resources(
        config_module.is_installed)
    # A teacher named by cfg_path: MMEngine's hub checks the package first.
    if not hasattr(hub_module.install_package, '__wrapped__'):
        hub_module.install_package = _quiet_pkg_resources(
            hub_module.install_package)
    fromfile = Config.fromfile

    def fromfile_with_scope(filename, *args, **kwargs):
        if isinstance(filename, str) and '::' in filename:
            from .config_files import resolve_config
            filename = resolve_config(filename, 'Config.fromfile')
        return fromfile(filename, *args, **kwargs)

    fromfile_with_scope._mmkd = True
    Config.fromfile = staticmethod(fromfile_with_scope)
    return 'applied'


def apply() -> None:
    """Apply every step once (idempotent)."""
    global _applied
    if _applied:
        return
    STATUS['joblib'] = check_joblib()
    STATUS['quantization'] = stub_mmrazor_quantization()
    _step('weights-only loading', patch_checkpoint_loading)
    import mmrazor.models  # noqa: F401  (must import after the stub)
    _step('last_checkpoint pointer', patch_pointer_write)
    _step('mmkd:: configs', patch_config_scope)
    _applied = True
