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
            'docs/model_zoo.md lists them')
    raise FileNotFoundError(f'{key} {config!r} does not exist (looked at '
                            f'{osp.abspath(config)})')


def detector_config(cfg: dict, key: str = 'model.teacher') -> dict:
    """The model config of a detector given as a model config or named by
    its config, as MMRazor's configs name a teacher.

    ``cfg`` is a model config (returned as a copy), or a reference,
    ``dict(cfg_path='mmdet::retinanet/x.py', pretrained=False)`` (or the
    path of a config file of your own, which MMRazor's reference does not
    take: ``cfg_path='/work/my_teacher.py'``): then the
    ``model`` of that config (with its ``data_preprocessor`` and
    ``_scope_`` its package, as ``mmengine.hub.get_model`` builds it), with
    any other keys beside ``cfg_path`` **merged into it as a child config
    would** (``model.teacher.bbox_head.num_classes=3`` changes the head;
    ``_delete_=True`` in a sub-dict replaces it). That is mmkd's rule: with
    MMEngine's own builder such keys are only default arguments, ignored
    where the config sets them. mmkd's distillers build a referenced
    teacher through this; the export, the benchmark and tests read
    detectors through it.

    Raises:
        ValueError: ``pretrained=True`` (MMEngine would load the zoo
            checkpoint while building, without checking that it fits), or
            both ``cfg_path`` and ``type`` (a whole model config merged
            into a reference: it needs ``_delete_=True``), naming ``key``
            and the fix.
    """
    if 'cfg_path' not in cfg:
        return copy.deepcopy(cfg)
    options = {k: v for k, v in cfg.items() if k != '_scope_'}
    path = options.pop('cfg_path')
    if 'type' in options:
        raise ValueError(
            f'{key} has both cfg_path={path!r} (a detector named by its '
            f'config, e.g. by the pair base) and type={options["type"]!r} '
            '(a whole model config): MMEngine merged one into the other. To '
            f'replace the reference, write {key}=dict(_delete_=True, '
            'type=..., ...); to change some settings of the referenced '
            f'detector, give only those keys (e.g. {key}.bbox_head.'
            'num_classes=3), which mmkd merges into its config\'s model')
    if options.pop('pretrained', False):
        raise ValueError(
            f'{key}.pretrained=True: MMEngine would load the zoo checkpoint '
            f'of {path!r} while building the model, with strict=False. Set '
            f'{key}.pretrained=False and give the checkpoint as '
            'model.teacher_ckpt (loaded strictly, when first needed)')
    if '::' in path:
        from mmengine.hub import get_config
        base = get_config(path)
        scope = path.split('::', 1)[0]
    else:
        # A config file of your own (mmkd's extension of MMRazor's
        # reference, which takes package::path names only).
        from mmengine.config import Config
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{key}.cfg_path={path!r}: no such config file (looked at '
                f'{osp.abspath(path)})')
        base = Config.fromfile(path)
        scope = base.get('default_scope') or 'mmdet'
    model = copy.deepcopy(base.model)
    if 'data_preprocessor' in base:  # as get_model does
        model.data_preprocessor = copy.deepcopy(base.data_preprocessor)
    model.merge(options)  # as a child config merges (_delete_ included)
    model._scope_ = scope
    return model


__all__ = ['detector_config', 'package_dir', 'resolve_config']
