"""Config names as users write them: a path, or ``package::path``; a
detector named by its config, as MMRazor's configs name a teacher."""
import copy
import os.path as osp


def package_dir() -> str:
    """The folder of the imported mmkd package (site-packages/mmkd for a
    wheel, the checkout's mmkd/ for an editable install): its ``.mim``
    holds the shipped configs and tools."""
    return osp.dirname(osp.abspath(__file__))


def resolve_config(config: str, key: str = 'CONFIG') -> str:
    """The file behind ``config``: a path as given, or ``mmkd::vkd/x.py`` /
    ``mmdet::retinanet/x.py`` (a config shipped in the package's ``.mim``
    folder). Raises ``FileNotFoundError`` naming where it looked."""
    if osp.isfile(config):
        return config
    if '::' in config:
        # What MMEngine does for pkg::dir/x.py (the package's .mim/configs),
        # and for pkg::x.py too, which MMEngine refuses (it wants a folder;
        # mmkd's first published name has none).
        from mmengine.config import config as config_module
        package, name = config.split('::', 1)
        if not config_module.is_installed(package):
            raise FileNotFoundError(
                f'{key} {config!r}: the package {package!r} is not '
                f'installed (pip install {package})')
        path = osp.join(config_module.get_installed_path(package), '.mim',
                        'configs', name)
        if osp.isfile(path):
            return path
        raise FileNotFoundError(
            f'{key} {config!r} does not exist (looked at {path}); '
            'the configs table in the README lists them')
    raise FileNotFoundError(f'{key} {config!r} does not exist (looked at '
                            f'{osp.abspath(config)})')


def detector_config(cfg: dict, key: str = 'model.teacher') -> dict:
    """The model config MMRazor's builder makes a detector of.

    ``cfg`` is a model config (returned as a copy), or a reference in
    MMRazor's form, ``dict(cfg_path='mmdet::retinanet/x.py',
    pretrained=False)``: then the ``model`` of that config with
    ``_scope_`` its package, as ``mmengine.hub.get_model`` (what MMRazor's
    ``build_razor_model_from_cfg`` calls) builds it. For code that reads or
    changes a detector's settings (the benchmark, the student export,
    tests); a distiller builds a reference itself.

    Raises:
        ValueError: ``pretrained=True`` (MMEngine would load the zoo
            checkpoint while building, without checking that it fits), or
            a key beside ``cfg_path`` that the config sets itself (MMEngine
            would ignore it), naming ``key`` and the fix.
    """
    if 'cfg_path' not in cfg or cfg.get('type'):
        return copy.deepcopy(cfg)
    options = dict(cfg)
    path = options.pop('cfg_path')
    if options.pop('pretrained', False):
        raise ValueError(
            f'{key}.pretrained=True: MMEngine would load the zoo checkpoint '
            f'of {path!r} while building the model, with strict=False. Set '
            f'{key}.pretrained=False and give the checkpoint as '
            'model.teacher_ckpt (loaded strictly, when first needed)')
    from mmengine.hub import get_config
    base = get_config(path)
    model = copy.deepcopy(base.model)
    if 'data_preprocessor' in base:  # as get_model does
        model.data_preprocessor = copy.deepcopy(base.data_preprocessor)
    options.pop('_scope_', None)
    ignored = sorted(name for name in options if name in model)
    if ignored:
        raise ValueError(
            f'{key}: {", ".join(f"{key}.{n}" for n in ignored)} would be '
            f'ignored: beside cfg_path MMEngine passes keys as default '
            f'arguments, and {path!r} sets them itself. Drop them, or write '
            f'{key} as a whole model config (dict(_scope_=\'mmdet\', '
            "type=..., ...)) or as the cfg_path of a config of your own")
    model.update(options)  # what get_model passes as default_args
    model._scope_ = path.split('::', 1)[0]
    return model


__all__ = ['detector_config', 'package_dir', 'resolve_config']
