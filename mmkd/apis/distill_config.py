"""``mmkd config`` (``tools/make_distill_config.py``): one distillation
config from a teacher config + checkpoint, a student config and a method.

Both detectors are built on the CPU (no weights initialised, nothing
downloaded) and their necks run on a dummy image, which gives each level's
channels and stride. Levels are paired by stride; the heads' class counts,
the dataset's ``metainfo.classes`` and, where the teacher's config names
them, the teacher's classes and their order must agree; a local teacher
checkpoint is loaded strictly (weights only) into the built teacher. What
cannot work is refused with a :class:`DistillConfigWriteError` naming the
input and the fix. The config written inherits the student's config (data,
schedule, runtime), mmkd's runtime and the method's recipe, and states the
teacher, its checkpoint and the paired levels; it is loaded and its
distiller built once before the function returns.

Paths in the written file: ``_base_`` entries relative to the file (as
MMEngine resolves them), the teacher's config and checkpoint through
MMEngine's ``{{ fileDirname }}`` (the file's folder) when they lie under
it, else absolute, so that the config loads from any working directory.
"""
import datetime
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from ..checkpoint import CheckpointError, is_remote, load_state_strict
from ..config_files import resolve_config
from ..fileio import atomic_write
from ..preflight import (
    PreflightError,
    _dataset_classes,
    _datasets,
    head_classes,
)

METHODS = ('vkd', 'srd', 'pkd', 'cwd', 'mgd')
# Losses that compare maps of equal channels: a student of other channels
# goes through MMRazor's 1x1 ConvModuleConnector (no norm, no activation),
# as configs/pkd/pkd_rtmdet_l_s_coco.py does.
EQUAL_CHANNEL_METHODS = ('pkd', 'cwd')
MMKD_HOOKS = ('AtomicCheckpointHook', 'FiniteLossHook',
              'DropFrozenTeacherHook', 'DistillLossRatioHook')
DINO_EXAMPLE = 'configs/vkd/vkd_dino_swin-l_r50_coco.py'


class DistillConfigWriteError(PreflightError):
    """The inputs cannot make a distillation config."""


class Level(NamedTuple):
    index: int
    channels: int
    stride: int


# --- pure helpers ------------------------------------------------------------
def pair_by_stride(student: Sequence[Level], teacher: Sequence[Level]
                   ) -> Tuple[List[Tuple[Level, Level]], List[Level],
                              List[Level]]:
    """(pairs, unpaired student levels, unpaired teacher levels): each
    student level with the teacher level of the same stride."""
    by_stride = {t.stride: t for t in teacher}
    pairs = [(s, by_stride[s.stride]) for s in student
             if s.stride in by_stride]
    paired_t = {t.index for _, t in pairs}
    return (pairs, [s for s in student if s.stride not in by_stride],
            [t for t in teacher if t.index not in paired_t])


def py_literal(value) -> str:
    """``value`` (dicts, lists, tuples, scalars) as config source, dicts
    written ``dict(key=value)`` as configs are."""
    if isinstance(value, dict):
        return 'dict(' + ', '.join(f'{k}={py_literal(v)}'
                                   for k, v in value.items()) + ')'
    if isinstance(value, list):
        return '[' + ', '.join(py_literal(v) for v in value) + ']'
    if isinstance(value, tuple):
        return '(' + ', '.join(py_literal(v) for v in value) + \
            (',)' if len(value) == 1 else ')')
    return repr(value)


def recipe_of(method: str) -> dict:
    """The method's connector and loss, as mmkd's recipe base states
    them (configs/_base_/recipes/<method>.py)."""
    path = resolve_config(f'mmkd::_base_/recipes/{method}.py', '--method')
    return Config.fromfile(path).recipe.to_dict()


def _one_or_all(values: Sequence[int]):
    return values[0] if len(set(values)) == 1 else tuple(values)


def _path_in_config(path: str, out_dir: str, base: bool) -> str:
    """How the written config names a local file: a ``_base_`` relative to
    the config's folder; another path through ``{{ fileDirname }}`` when it
    lies under that folder, else absolute."""
    path = osp.abspath(path)
    rel = osp.relpath(path, out_dir)
    if base:
        return rel if rel.startswith('..') else './' + rel
    if rel.startswith('..'):
        return path
    return '{{ fileDirname }}/' + rel


# --- reading the inputs ------------------------------------------------------
def _load(config: str, what: str) -> Config:
    try:
        return Config.fromfile(resolve_config(config, what))
    except FileNotFoundError as exc:
        raise DistillConfigWriteError(str(exc)) from None


def _build(model_cfg) -> torch.nn.Module:
    import mmdet.models  # noqa: F401  (registers mmdet's modules)
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(model_cfg)


@torch.no_grad()
def probe_neck(model: torch.nn.Module, size: int) -> List[Level]:
    """Channels and stride of each neck output of ``model`` on a
    ``1x3xSIZExSIZE`` zero image."""
    model.eval()
    feats = model.extract_feat(torch.zeros(1, 3, size, size))
    levels = []
    for i, f in enumerate(feats):
        if f.dim() != 4:
            raise DistillConfigWriteError(
                f'neck output {i} has shape {tuple(f.shape)}, not (B, C, H, '
                'W): mmkd config pairs the maps of FPN-style necks')
        levels.append(Level(i, int(f.shape[1]), round(size / f.shape[-1])))
    return levels


def _refuse_detr(model: torch.nn.Module, which: str, path: str) -> None:
    from mmdet.models.detectors import DetectionTransformer
    if isinstance(model, DetectionTransformer):
        raise DistillConfigWriteError(
            f'{which} {path} is a DETR-family detector '
            f'({type(model).__name__}): its queries need mmkd\'s '
            'DinoTeacherDistill, which mmkd config does not write; start '
            f'from {DINO_EXAMPLE} (docs/detr.md)')


def _classes_of(cfg: Config) -> Optional[tuple]:
    leaves = _datasets((cfg.get('train_dataloader') or {}).get('dataset'))
    return _dataset_classes(leaves[0]) if leaves else None


def _stated_classes(cfg: Config) -> Optional[tuple]:
    """The classes a config names in its dataset's metainfo (not a dataset
    class's default)."""
    leaves = _datasets((cfg.get('train_dataloader') or {}).get('dataset'))
    classes = leaves and (leaves[0].get('metainfo') or {}).get('classes')
    return tuple(classes) if classes else None


def check_classes(student: Config, teacher: Config, student_path: str,
                  teacher_path: str) -> tuple:
    """The dataset's classes, when both heads and the teacher's stated
    classes agree with them; else :class:`DistillConfigWriteError`."""
    classes = _classes_of(student)
    if not classes:
        raise DistillConfigWriteError(
            f'{student_path}: train_dataloader.dataset gives no classes '
            '(metainfo.classes): set metainfo=dict(classes=(...)) to your '
            'dataset\'s category names')
    for path, cfg in ((student_path, student), (teacher_path, teacher)):
        count = head_classes(cfg.model)
        if count is not None and count != len(classes):
            head = 'roi_head.bbox_head' if 'roi_head' in cfg.model else \
                'bbox_head'
            raise DistillConfigWriteError(
                f'{path}: model.{head}.num_classes={count}, but the dataset '
                f'of {student_path} has {len(classes)} classes {classes}: set '
                f'model.{head}.num_classes={len(classes)} in {path} (a '
                'teacher must have been trained with these classes)')
    stated = _stated_classes(teacher)
    if stated and stated != classes:
        raise DistillConfigWriteError(
            f'{teacher_path} trains on classes {stated}, {student_path} on '
            f'{classes}: the teacher must have been trained with the '
            'student\'s classes in the same order (its class i is the '
            "student's class i); fix metainfo.classes of one of them")
    return classes


def check_teacher_ckpt(teacher: torch.nn.Module, ckpt: str) -> str:
    """A local checkpoint loads strictly into ``teacher``; a URL is left
    for training to check. Returns what was done, for the file's header."""
    if is_remote(ckpt):
        return 'a URL: not downloaded here, loaded strictly when training ' \
            'starts'
    if not osp.isfile(ckpt):
        raise DistillConfigWriteError(
            f'--teacher-ckpt {ckpt}: no such file (looked at '
            f'{osp.abspath(ckpt)}); train the teacher first (mmkd train '
            'TEACHER_CONFIG) and give its checkpoint')
    try:
        load_state_strict(teacher, ckpt, '--teacher-ckpt')
    except CheckpointError as exc:
        raise DistillConfigWriteError(str(exc)) from None
    return 'loaded strictly into the teacher when this file was written'


def _hooks_lines(student: Config, student_base: str) -> Tuple[List[str],
                                                              List[str]]:
    """(extra bases, extra lines): mmkd's runtime as a base, or, where the
    student's config already sets custom_imports/custom_hooks (MMEngine
    refuses a key in two bases), stated after it."""
    hooks = [h.get('type') for h in student.get('custom_hooks') or []]
    imports = (student.get('custom_imports') or {}).get('imports') or []
    if 'mmkd' in imports and all(h in hooks for h in MMKD_HOOKS):
        return [], []  # the student's config has mmkd's runtime already
    if not hooks and not student.get('custom_imports'):
        return ['mmkd::_base_/mmkd_runtime.py'], []
    others = [i for i in ([imports] if isinstance(imports, str) else imports)
              if i != 'mmkd']
    lines = [
        f'# {student_base} sets custom_imports/custom_hooks: mmkd\'s runtime '
        '(mmkd::_base_/mmkd_runtime.py) is stated here.',
        f'custom_imports = dict(imports={["mmkd"] + others!r}, '
        'allow_failed_imports=False)',
        'custom_hooks = _base_.custom_hooks + [',
    ] + [f"    dict(type='{h}')," for h in MMKD_HOOKS if h not in hooks] + [
        ']']
    return [], lines


# --- the one function --------------------------------------------------------
def write_distill_config(teacher: str, teacher_ckpt: str, student: str,
                         method: str, out: str, probe_size: int = 256,
                         force: bool = False) -> Dict:
    """Write the distillation config ``out``; returns what was found
    (``levels``, ``teacher_levels``, channels, ``classes``, ``path``)."""
    if method not in METHODS:
        raise DistillConfigWriteError(
            f'--method {method!r}: choose one of {", ".join(METHODS)}')
    if osp.exists(out) and not force:
        raise DistillConfigWriteError(
            f'--out {out} exists (looked at {osp.abspath(out)}): choose '
            'another name, or --force to replace it')
    if probe_size % 128:
        raise DistillConfigWriteError(
            f'--probe-size {probe_size}: give a multiple of 128, so that '
            'every level up to stride 128 has a whole size')
    s_cfg, t_cfg = _load(student, '--student'), _load(teacher, '--teacher')
    classes = check_classes(s_cfg, t_cfg, student, teacher)
    s_model, t_model = _build(s_cfg.model), _build(t_cfg.model)
    _refuse_detr(s_model, '--student', student)
    _refuse_detr(t_model, '--teacher', teacher)
    s_levels = probe_neck(s_model, probe_size)
    t_levels = probe_neck(t_model, probe_size)
    pairs, lone_s, lone_t = pair_by_stride(s_levels, t_levels)
    if not pairs:
        raise DistillConfigWriteError(
            f'the necks have no stride in common: student {student} '
            f'strides {[lv.stride for lv in s_levels]}, teacher {teacher} '
            f'strides {[lv.stride for lv in t_levels]} (probed on a '
            f'{probe_size}x{probe_size} image). Distillation pairs maps of '
            'the same stride: give one of the necks levels the other has')
    ckpt_note = check_teacher_ckpt(t_model, teacher_ckpt)
    del s_model, t_model

    out_dir = osp.dirname(osp.abspath(out))
    local = '::' not in student
    student_base = _path_in_config(student, out_dir, True) if local \
        else student
    teacher_ref = teacher if '::' in teacher else _path_in_config(
        teacher, out_dir, False)
    ckpt_ref = teacher_ckpt if is_remote(teacher_ckpt) else \
        _path_in_config(teacher_ckpt, out_dir, False)
    runtime_bases, runtime_lines = _hooks_lines(s_cfg, student_base)
    bases = [student_base] + runtime_bases
    s_ch = [s.channels for s, _ in pairs]
    t_ch = [t.channels for _, t in pairs]
    levels = tuple(s.index for s, _ in pairs)
    t_indices = tuple(t.index for _, t in pairs)
    recipe = recipe_of(method)
    distiller = ["type='FpnDistiller'", f'levels={levels!r}']
    if t_indices != levels:
        distiller.append(f'teacher_levels={t_indices!r}')
    distiller += [f'student_channels={_one_or_all(s_ch)!r}',
                  f'teacher_channels={_one_or_all(t_ch)!r}']
    notes = [f'# The distiller: the levels paired above and the {method} '
             'recipe', f'# (mmkd::_base_/recipes/{method}.py, written out).']
    if method in EQUAL_CHANNEL_METHODS and s_ch != t_ch:
        recipe['connector'] = dict(type='ConvModuleConnector', kernel_size=1,
                                   norm_cfg=None, act_cfg=None)
        notes += [f'# {method} compares maps of equal channels: the '
                  "student's go through",
                  "# MMRazor's 1x1 ConvModuleConnector to the teacher's."]
    distiller += [f'{k}={py_literal(v)}' for k, v in recipe.items()]
    left = []
    if lone_s:
        left.append('student ' + ', '.join(
            f'{lv.index} (stride {lv.stride})' for lv in lone_s))
    if lone_t:
        left.append('teacher ' + ', '.join(
            f'{lv.index} (stride {lv.stride})' for lv in lone_t))
    date = datetime.date.today().isoformat()
    header = [
        f'# Distillation config written by `mmkd config` on {date}.',
        f'#   teacher:    {teacher}',
        f'#   checkpoint: {teacher_ckpt} ({ckpt_note})',
        f'#   student:    {student}',
        f'#   method:     {method}',
        f'# Necks probed on a 1x3x{probe_size}x{probe_size} image:',
        *[f'#   student level {lv.index}: stride {lv.stride}, '
          f'{lv.channels} channels' for lv in s_levels],
        *[f'#   teacher level {lv.index}: stride {lv.stride}, '
          f'{lv.channels} channels' for lv in t_levels],
        '# Paired by stride (student <- teacher):',
        *[f'#   {s.index} <- {t.index} (stride {s.stride})'
          for s, t in pairs],
        '# Left out (no level of the same stride in the other neck): ' +
        ('; '.join(left) if left else 'none'),
        f'# Classes ({len(classes)}, both heads and the dataset agree): '
        f'{", ".join(classes)}',
        '# Paths: _base_ relative to this file; {{ fileDirname }} is this',
        "# file's folder (MMEngine fills it in): it loads from anywhere.",
    ]
    body = [
        '_base_ = [',
        *[f'    {b!r},' for b in bases],
        ']',
        '',
        *notes,
        'model = dict(',
        '    _delete_=True,',
        "    _scope_='mmrazor',",
        "    type='StrictFpnTeacherDistill',  # teacher: backbone + neck, "
        'strict ckpt',
        '    architecture=_base_.model,  # the student',
        f'    teacher=dict(cfg_path={teacher_ref!r}, pretrained=False),',
        f'    teacher_ckpt={ckpt_ref!r},',
        '    distiller=dict(',
        *[f'        {d},' for d in distiller],
        '    ))',
        '# DDP must accept parameters without a gradient in a step (the',
        '# connectors, once distillation is stopped), as MMRazor\'s configs.',
        'find_unused_parameters = True',
    ]
    if runtime_lines:
        body += [''] + runtime_lines
    text = '\n'.join(header + body) + '\n'
    # The file must load and build before it is handed over: written to a
    # temporary name beside it first.
    trial = osp.join(out_dir, f'.{osp.basename(out)}.trial.py')
    atomic_write(text, trial, mode='w')
    try:
        _prove(trial)
    finally:
        import os
        os.remove(trial)
    atomic_write(text, out, mode='w')
    return dict(path=out, levels=levels, teacher_levels=t_indices,
                student_channels=s_ch, teacher_channels=t_ch,
                classes=classes, unpaired_student=[lv.index for lv in lone_s],
                unpaired_teacher=[lv.index for lv in lone_t])


def _prove(path: str) -> None:
    """Load the written config and build its distiller (the teacher
    checkpoint is read only when training starts)."""
    cfg = Config.fromfile(path)
    _build(cfg.model)  # its _scope_ (mmrazor) picks MMRazor's registry


__all__ = ['DistillConfigWriteError', 'Level', 'METHODS', 'check_classes',
           'check_teacher_ckpt', 'pair_by_stride', 'probe_neck',
           'write_distill_config']
