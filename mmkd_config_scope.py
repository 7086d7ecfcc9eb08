"""Make ``mmkd::`` config names resolve in any tool, before mmkd is imported.

MMEngine resolves ``_base_ = 'pkg::path.py'`` only for the packages listed in
``mmengine.config.utils.MODULE2PACKAGE``, and it parses ``_base_`` before it
imports a config's ``custom_imports``. So a user's config that inherits
``mmkd::vkd/vkd_retinanet_r50_r18_coco.py`` would fail under MMDetection's
``tools/train.py`` unless the name is known before any config is read.

A wheel of mmkd installs ``mmkd_config_scope.pth`` next to it, which imports
this module at interpreter start. It costs one entry on ``sys.meta_path``:
nothing is imported until MMEngine's config utilities are, and then the one
name is added. (``mmkd.compat`` adds it too, and covers editable installs.)
"""
import importlib.abc
import importlib.machinery
import sys

TARGET = 'mmengine.config.utils'


def register(module) -> None:
    module.MODULE2PACKAGE.setdefault('mmkd', 'mmkd')


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
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    if TARGET in sys.modules:
        register(sys.modules[TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
