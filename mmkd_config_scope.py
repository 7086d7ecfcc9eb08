"""Make ``mmkd::`` config names resolve in any tool, before mmkd is imported.

MMEngine resolves ``_base_ = 'pkg::path.py'`` only for the packages listed in
``mmengine.config.utils.MODULE2PACKAGE``, and it parses ``_base_`` before it
imports a config's ``custom_imports``. So a user's config that inherits
``mmkd::vkd/vkd_retinanet_r50_r18_coco.py`` would fail under MMDetection's
``tools/train.py`` unless the name is known before any config is read.
Nothing but a start-up hook can do that.

mmkd's install (wheel or editable) puts ``mmkd_config_scope.pth`` in
site-packages, which imports this module at interpreter start. What it costs:
one finder on ``sys.meta_path`` that only looks at the name of each import,
until MMEngine's config utilities are imported; then it gives their package
table one lazy entry and takes itself off ``sys.meta_path``. The entry does
nothing until a config names ``mmkd::``: then it imports mmkd (whose
compatibility layer finds mmkd's configs, wheel and editable installs alike)
and answers ``'mmkd'``. A process that never reads such a config never
imports mmkd.

To turn it off: set ``MMKD_CONFIG_SCOPE=0``, or delete
``mmkd_config_scope.pth`` from site-packages (``python -c "import
mmkd_config_scope as m; print(m.pth_file())"`` prints where it is); then
``mmkd::`` names work only after ``import mmkd``.
"""
import importlib.abc
import importlib.machinery
import os
import sys

TARGET = 'mmengine.config.utils'


class _WithMmkd(dict):
    """MMEngine's package table with ``'mmkd'`` answered on first use."""

    def _mmkd(self) -> bool:
        import mmkd  # noqa: F401  (applies mmkd.compat: mmkd's .mim path)
        self.setdefault('mmkd', 'mmkd')
        return True

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or (key == 'mmkd' and
                                                self._mmkd())

    def __missing__(self, key):
        if key == 'mmkd' and self._mmkd():
            return 'mmkd'
        raise KeyError(key)


def register(module) -> None:
    if isinstance(module.MODULE2PACKAGE, _WithMmkd):
        return
    table = _WithMmkd(module.MODULE2PACKAGE)
    # PKG2PROJECT is MMEngine's other name for the same table.
    if getattr(module, 'PKG2PROJECT', None) is module.MODULE2PACKAGE:
        module.PKG2PROJECT = table
    module.MODULE2PACKAGE = table


class _Loader(importlib.abc.Loader):

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        register(module)


class _Finder(importlib.abc.MetaPathFinder):

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path[:] = [f for f in sys.meta_path
                            if not isinstance(f, _Finder)]
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def pth_file() -> str:
    """Where the start-up hook of this environment is."""
    import sysconfig
    return os.path.join(sysconfig.get_paths()['purelib'],
                        'mmkd_config_scope.pth')


def install() -> None:
    if os.environ.get('MMKD_CONFIG_SCOPE', '1') == '0':
        return
    if TARGET in sys.modules:
        register(sys.modules[TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
