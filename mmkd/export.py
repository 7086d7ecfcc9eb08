"""Export the student of a distillation run for plain MMDetection.

A distiller's checkpoint holds ``architecture.*`` (the student), the
``distiller.*`` connectors (projectors exist for training only) and, unless
:class:`mmkd.engine.DropFrozenTeacherHook` left it out, ``teacher.*``.
:func:`export_student` writes

- ``OUT``: the student's weights with the ``architecture.`` prefix removed,
  and ``meta.dataset_meta`` (class names) so ``init_detector`` names classes;
- ``OUT``'s sibling ``.py``: the distill config with ``model`` replaced by
  ``model.architecture`` (data, pipelines, evaluators and schedule kept), so

      model = mmdet.apis.init_detector('student.py', 'student.pth')

works, as does MMDetection's ``tools/test.py student.py student.pth``.
"""
import copy
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Tuple, Union

from mmengine.config import Config, ConfigDict

from .checkpoint import (
    mismatch_report,
    read_checkpoint,
    state_dict_of,
)
from .config_files import detector_config, resolve_config

STUDENT_PREFIX = 'architecture.'
# Top-level variables of mmkd's distill configs that only build the model.
# Distillation-only top-level keys; `find_unused_parameters` is there for the
# distiller's DDP and only slows a student fine-tuned alone.
DISTILL_ONLY_KEYS = ('teacher', 'student', 'teacher_ckpt',
                     'find_unused_parameters', '_num_classes')


class ExportError(ValueError):
    """The config or checkpoint cannot give a student export."""


def student_model_cfg(cfg: Config, config_name: str) -> ConfigDict:
    """``model.architecture`` of a distill config, as an mmdet model config."""
    model = cfg.get('model') or {}
    if 'architecture' not in model or 'Distill' not in str(model.get('type')):
        raise ExportError(
            f'CONFIG {config_name!r}: model.type={model.get("type")!r} is not '
            'a distiller (expected a model with architecture= and teacher=, '
            'e.g. FpnTeacherDistill). A detector trained with a plain '
            'MMDetection config is already a student: use its config and '
            'checkpoint as they are.')
    # A model config, or MMRazor's dict(cfg_path='mmdet::...') reference.
    return ConfigDict(detector_config(model['architecture'],
                                      'model.architecture'))


def build_student(model_cfg: dict):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(model_cfg.get('_scope_',
                                                            'mmdet')):
        return MODELS.build(copy.deepcopy(model_cfg))


def split_state(state: Dict) -> Tuple[OrderedDict, Dict[str, int]]:
    """The student's tensors (prefix removed) and a count of what was
    left out, by first key component (``teacher``, ``distiller``...)."""
    student, dropped = OrderedDict(), {}
    for key, value in state.items():
        if key.startswith(STUDENT_PREFIX):
            student[key[len(STUDENT_PREFIX):]] = value
        else:
            part = key.split('.', 1)[0]
            dropped[part] = dropped.get(part, 0) + 1
    return student, dropped


def mmdet_hooks_only(hooks: List[dict]) -> Tuple[List[dict], List[str]]:
    """Custom hooks that plain MMDetection/MMEngine can build, and the types
    of the others (mmkd's and MMRazor's, meaningless for the student)."""
    from mmdet.registry import HOOKS
    from mmengine.registry import DefaultScope
    kept, dropped = [], []
    with DefaultScope.overwrite_default_scope('mmdet'):
        for hook in hooks:
            cls = HOOKS.get(hook.get('type'))
            if cls is not None and cls.__module__.split('.')[0] in (
                    'mmdet', 'mmengine'):
                kept.append(hook)
            else:
                dropped.append(str(hook.get('type')))
    return kept, dropped


def student_config(cfg: Config, model_cfg: dict) -> Config:
    """The distill config with ``model = model.architecture``."""
    out = copy.deepcopy(cfg._cfg_dict.to_dict())
    for key in DISTILL_ONLY_KEYS:
        out.pop(key, None)
    out['model'] = model_cfg.to_dict() if isinstance(
        model_cfg, ConfigDict) else dict(model_cfg)
    out['default_scope'] = out['model'].get('_scope_', 'mmdet')
    if out.get('custom_hooks'):
        out['custom_hooks'], _ = mmdet_hooks_only(out['custom_hooks'])
    return Config(out)


def config_path_for(out: str) -> str:
    return osp.splitext(out)[0] + '.py'


def export_student(config: Union[str, Config], checkpoint: str,
                   out: str) -> Tuple[str, str]:
    """Write the student-only checkpoint ``out`` and its config (``out``
    with a ``.py`` suffix); return both paths."""
    if out.endswith('.py'):
        raise ExportError(f'OUT {out!r}: give the checkpoint path (e.g. '
                          'student.pth); its config goes next to it as .py')
    if osp.abspath(out) == osp.abspath(checkpoint):
        raise ExportError(f'OUT {out!r} is the CHECKPOINT itself; write the '
                          'export to another file')
    if isinstance(config, Config):
        cfg, config_name = config, config.filename or '<config>'
    else:
        try:
            path = resolve_config(config)
        except FileNotFoundError as exc:
            raise ExportError(str(exc)) from None
        cfg, config_name = Config.fromfile(path), config
    model_cfg = student_model_cfg(cfg, config_name)

    source = read_checkpoint(checkpoint, 'CHECKPOINT')
    student_state, dropped = split_state(state_dict_of(source))
    if not student_state:
        keys = list(state_dict_of(source))[:5]
        raise ExportError(
            f'CHECKPOINT {checkpoint!r} has no {STUDENT_PREFIX!r} keys (it '
            f'starts with {keys}): it is not a distiller checkpoint. A '
            'detector trained alone is already a student checkpoint; to '
            'export a distilled student pass the distiller run\'s checkpoint '
            '(work_dirs/<distill config>/iter_N.pth or epoch_N.pth).')
    report = mismatch_report(build_student(model_cfg), student_state)
    if report is not None:
        raise ExportError(
            f'CHECKPOINT {checkpoint!r}: its student does not fit '
            f'model.architecture of CONFIG {config_name!r}: {report}. Pass '
            'the config the checkpoint was trained with.')

    meta = dict(source.get('meta') or {})
    # Where the student came from; plain values only (weights-only loadable).
    exported = dict(config=str(config_name),
                    checkpoint=osp.abspath(checkpoint), dropped_keys=dropped)
    exported.update({k: meta[k] for k in ('epoch', 'iter') if k in meta})
    new_meta = dict(mmkd_export=exported)
    dataset_meta = meta.get('dataset_meta') or _config_metainfo(cfg)
    if dataset_meta:
        new_meta['dataset_meta'] = dataset_meta

    from mmengine.runner.checkpoint import save_checkpoint
    save_checkpoint(dict(meta=new_meta, state_dict=student_state), out)
    out_cfg = config_path_for(out)
    student_config(cfg, model_cfg).dump(out_cfg)
    return out, out_cfg


def _config_metainfo(cfg: Config) -> dict:
    """Class names from the config's datasets, for checkpoints without
    ``meta.dataset_meta``."""
    for loader in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        metainfo = dataset.get('metainfo') or {}
        if metainfo.get('classes'):
            return metainfo.to_dict() if isinstance(
                metainfo, ConfigDict) else dict(metainfo)
    return {}


__all__ = ['ExportError', 'export_student', 'split_state', 'student_config',
           'student_model_cfg', 'config_path_for']
