"""``mmkd config`` (``tools/make_distill_config.py``): one distillation
config from a teacher config + its checkpoint, a student config and a
method (vkd, srd, pkd, cwd, mgd)::

    mmkd config --teacher my_teacher.py --teacher-ckpt TEACHER.pth \\
        --student my_student.py --method vkd --out configs_mine/vkd.py

:func:`write_distill_config`, in order, each step refusing what cannot work
with a :class:`DistillConfigError` that names the input, the values and the
fix (or mmkd's ``CheckpointError`` / ``FileNotFoundError``, which name the
file):

1. loads both configs (paths, or ``mmdet::`` / ``mmkd::`` names);
2. refuses DETR-family detectors (they need ``DinoTeacherDistill``);
3. checks the classes: both heads' ``num_classes``, the number of classes of
   the student's training dataset (``metainfo.classes``, through dataset
   wrappers; a dataset class's ``METAINFO`` where none is set) and, where
   the teacher's config or checkpoint names its classes, the same classes in
   the same order;
4. builds both detectors on the CPU (``init_weights`` is not run: nothing is
   downloaded) and runs each neck once, in eval mode without gradients, on a
   zero image (1x3x320x320 by default): each level's channels and stride;
5. pairs the levels by stride (:func:`pair_levels`);
6. loads a local teacher checkpoint strictly (every key and shape, weights
   only) into the built teacher; an http(s) URL is written as given (it is
   loaded, strictly, when training first needs the teacher);
7. writes the config, readable and commented, and proves it before it is
   put in place: the text is loaded with ``Config.fromfile`` from a
   temporary file beside ``out``, its distiller built and run once on the
   probe image (:func:`mmkd.engine.check_distiller_shapes`: every connector
   and loss against the recorded maps). For large detectors that is a few
   more seconds on a CPU, worth a config that is known to build.

Paths in the written file, so that it loads from any working directory:
the student's config, a ``_base_``, relative to the written file (MMEngine
resolves ``_base_`` from the file's folder, as every OpenMMLab config names
its bases); the teacher's config relative to it too, through MMEngine's
``{{ fileDirname }}`` (``cfg_path`` is otherwise read from the working
directory); the checkpoint by its absolute path (work dirs do not move with
configs). ``mmdet::`` / ``mmkd::`` names and URLs are written as given.
"""
import copy
import keyword
import os
import os.path as osp
import tempfile
import textwrap
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config

from ..checkpoint import is_remote, load_state_strict
from ..config_files import detector_config, resolve_config
from ..fileio import atomic_write
from ..preflight import (
    PreflightError,
    dataset_classes,
    head_class_counts,
)

METHODS = ('vkd', 'srd', 'pkd', 'cwd', 'mgd')
RUNTIME = 'mmkd::_base_/mmkd_runtime.py'
DETR_EXAMPLE = 'configs/vkd/vkd_dino_swin-l_r50_coco.py'
# PKD and CWD compare maps of equal channels (CWD's softmax runs over each
# channel's H*W, so the channel counts must match): a student of other
# channels goes through MMRazor's 1x1 ConvModuleConnector, no norm and no
# activation, as configs/pkd/pkd_rtmdet_l_s_coco.py does. VkD, SRD (mmkd's
# ProjectorConnector) and MGD (MGDConnector's align conv) map the channels
# themselves; FpnDistiller fills in their channel arguments.
EQUAL_CHANNELS = ('pkd', 'cwd')
CHANNEL_CONNECTOR = dict(type='ConvModuleConnector', kernel_size=1,
                         norm_cfg=None, act_cfg=None)

Stride = Union[int, float, Tuple[Union[int, float], Union[int, float]]]


class DistillConfigError(PreflightError):
    """The teacher, student or options given to ``mmkd config`` cannot make
    a working distillation config (a ``PreflightError``: the tools print it
    as one line, ``mmkd error: ...``, and exit 2)."""


# --- pure helpers: strides, pairing, channels --------------------------------
def axis_stride(input_size: int, map_size: int) -> Union[int, float]:
    """The stride of a map of ``map_size`` rows taken from ``input_size``
    rows: the smallest power of two ``s`` with ``ceil(input_size / s) ==
    map_size`` (MMDetection's necks and backbones halve a map with padded
    stride-2 convolutions, which round up: a 320 input gives P7 3 rows at
    stride 128), else ``input_size / map_size`` (an int where it is one)."""
    s = 1
    while s < 2 * input_size:
        if -(-input_size // s) == map_size:
            return s
        s *= 2
    ratio = input_size / map_size
    return int(ratio) if ratio.is_integer() else round(ratio, 2)


def map_stride(input_hw: Sequence[int], map_hw: Sequence[int]) -> Stride:
    """:func:`axis_stride` of both axes: one number where they agree."""
    sh = axis_stride(input_hw[0], map_hw[0])
    sw = axis_stride(input_hw[1], map_hw[1])
    return sh if sh == sw else (sh, sw)


@dataclass(frozen=True)
class Pairing:
    """Student level ``s`` distilled from teacher level ``t`` for each
    ``(s, t)`` in ``pairs``; the levels of either neck left out."""
    pairs: Tuple[Tuple[int, int], ...]
    student_left: Tuple[int, ...]
    teacher_left: Tuple[int, ...]


def pair_levels(student_strides: Sequence[Stride],
                teacher_strides: Sequence[Stride]) -> Pairing:
    """Pair each student level with the teacher level of the same stride
    (the first one, should a neck repeat a stride); the levels of either
    neck without a partner are left out."""
    first = {}
    for t, stride in enumerate(teacher_strides):
        first.setdefault(stride, t)
    pairs, used = [], set()
    for s, stride in enumerate(student_strides):
        t = first.get(stride)
        if t is not None and t not in used:
            pairs.append((s, t))
            used.add(t)
    paired = {s for s, _ in pairs}
    return Pairing(
        tuple(pairs),
        tuple(s for s in range(len(student_strides)) if s not in paired),
        tuple(t for t in range(len(teacher_strides)) if t not in used))


def channels_arg(channels: Sequence[int]) -> Union[int, List[int]]:
    """``FpnDistiller``'s ``*_channels``: one int where every level has the
    same count, else the per-level list."""
    channels = [int(c) for c in channels]
    return channels[0] if len(set(channels)) == 1 else channels


# --- pure helpers: classes ---------------------------------------------------
def _first_difference(a: Sequence, b: Sequence) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f'class {i} is {x!r} in one, {y!r} in the other'
    return f'{len(a)} classes against {len(b)}'


def check_classes(student: str, teacher: str,
                  student_heads: Sequence[Tuple[str, int]],
                  teacher_heads: Sequence[Tuple[str, int]],
                  classes: Optional[Tuple[str, tuple]],
                  teacher_classes: Optional[Tuple[str, tuple]] = None
                  ) -> None:
    """Refuse a student head that does not count the student's dataset
    classes, a teacher head that does not count the student's, and teacher
    classes (named by its config or checkpoint) that are not the student's
    in the same order. ``*_heads`` are :func:`head_class_counts`,
    ``classes`` and ``teacher_classes`` :func:`dataset_classes` (None where
    unknown); ``student`` and ``teacher`` name the configs."""
    if classes is not None:
        where, names = classes
        for key, count in student_heads:
            if count != len(names):
                raise DistillConfigError(
                    f'{key}={count} in {student}, but its training data has '
                    f'{len(names)} classes ({where}: {names}): set '
                    f'{key}={len(names)} in {student}, or give the dataset '
                    'the classes the head is for (metainfo=dict(classes=...'
                    '))')
    for (s_key, s_count) in student_heads[:1]:
        for t_key, t_count in teacher_heads:
            if t_count != s_count:
                raise DistillConfigError(
                    f'the heads count different classes: {t_key}={t_count} '
                    f'in {teacher} (the teacher), {s_key}={s_count} in '
                    f'{student} (the student). A teacher trained for other '
                    'classes gives no useful signal: use a teacher trained '
                    f'on the student\'s {s_count} classes (set {t_key}='
                    f'{s_count} in {teacher} if it was trained so and the '
                    'config is what is wrong)')
    if classes is None or teacher_classes is None:
        return
    (t_where, t_names), (s_where, s_names) = teacher_classes, classes
    if tuple(t_names) != tuple(s_names):
        raise DistillConfigError(
            f"the teacher's classes are not the student's in the same "
            f'order: {t_where} of {teacher} is {tuple(t_names)}, {s_where} '
            f'of {student} is {tuple(s_names)} '
            f'({_first_difference(t_names, s_names)}). '
            "The teacher's class i must be the student's class i: give the "
            "student's dataset the teacher's metainfo.classes (names and "
            'order), or use a teacher trained with the student\'s')


# --- pure helpers: writing ---------------------------------------------------
def _is_name(key) -> bool:
    return isinstance(key, str) and key.isidentifier() and \
        not keyword.iskeyword(key)


def _items(value) -> List[Tuple[str, object]]:
    if isinstance(value, dict):
        named = all(_is_name(k) for k in value)
        return [(f'{k}=' if named else f'{k!r}: ', v)
                for k, v in value.items()]
    return [('', v) for v in value]


def _brackets(value) -> Tuple[str, str]:
    if isinstance(value, dict):
        named = all(_is_name(k) for k in value)
        return ('dict(', ')') if named else ('{', '}')
    if isinstance(value, tuple):
        return '(', (', )' if len(value) == 1 else ')')
    return '[', ']'


def format_value(value, indent: int = 0, used: int = 0,
                 width: int = 79) -> str:
    """``value`` (dicts, lists, tuples, scalars) as config source, dicts as
    ``dict(key=value)``: on one line where it fits in ``width`` columns
    after the ``used`` ones of its first line, else one item per line at
    ``indent + 4`` (``indent``: the indentation of its first line)."""
    if isinstance(value, (dict, list, tuple)):
        opening, closing = _brackets(value)
        flat = opening + ', '.join(
            prefix + format_value(item, width=10 ** 9)
            for prefix, item in _items(value)) + closing
        if not value or used + len(flat) + 2 <= width:
            return flat
        pad = ' ' * (indent + 4)
        lines = [pad + prefix + format_value(item, indent + 4,
                                             indent + 4 + len(prefix), width)
                 for prefix, item in _items(value)]
        return opening + '\n' + ',\n'.join(lines) + closing
    return repr(value)


def comment(text: str, width: int = 79, hang: int = 2) -> List[str]:
    """``text`` as ``#`` lines of at most ``width`` columns (words never
    split: long paths stay whole), later lines indented by ``hang``."""
    return textwrap.wrap(text, width, initial_indent='# ',
                         subsequent_indent='# ' + ' ' * hang,
                         break_long_words=False, break_on_hyphens=False)


def base_path(config: str, out_dir: str) -> str:
    """How the written config names a ``_base_``: a ``package::`` name as
    given, a file relative to ``out_dir`` (the written file's folder, from
    which MMEngine resolves ``_base_``), absolute where no relative path
    exists (another drive)."""
    if '::' in config:
        return config
    try:
        return osp.relpath(osp.abspath(config), out_dir)
    except ValueError:
        return osp.abspath(config)


def teacher_path(config: str, out_dir: str) -> str:
    """How the written config names the teacher's config (``cfg_path``,
    read from the working directory): a ``package::`` name as given, a file
    relative to the written file through MMEngine's ``{{ fileDirname }}``,
    absolute where no relative path exists."""
    if '::' in config:
        return config
    try:
        rel = osp.relpath(osp.abspath(config), out_dir)
    except ValueError:
        return osp.abspath(config)
    return '{{ fileDirname }}/' + rel.replace(os.sep, '/')


def _hook_type(hook) -> str:
    return str((hook or {}).get('type', '')).rsplit('.', 1)[-1]


def runtime_lines(student_cfg: Config, runtime: Config, student: str
                  ) -> Tuple[bool, List[str]]:
    """(whether mmkd's runtime is a ``_base_``, the lines that state it
    instead). MMEngine refuses a key set by two bases: a student config
    that sets ``custom_imports`` or ``custom_hooks`` gets mmkd's import and
    hooks added to its own, as configs/_base_/coco/rtmdet_l_s.py does."""
    has_imports = 'custom_imports' in student_cfg
    has_hooks = 'custom_hooks' in student_cfg
    if not has_imports and not has_hooks:
        return True, []
    lines = []
    mmkd_imports = list(runtime.custom_imports.imports)
    imports = (student_cfg.get('custom_imports') or {}).get('imports') or []
    imports = [imports] if isinstance(imports, str) else list(imports)
    missing_imports = [i for i in mmkd_imports if i not in imports]
    hooks = student_cfg.get('custom_hooks') or []
    types = {_hook_type(h) for h in hooks}
    missing_hooks = [h.to_dict() for h in runtime.custom_hooks
                     if _hook_type(h) not in types]
    if not missing_imports and not missing_hooks:
        lines += comment(f"mmkd's runtime ({RUNTIME}): {student} has it "
                         'already (custom_imports of mmkd, its hooks).')
        return False, lines
    lines += comment(
        f'mmkd\'s runtime ({RUNTIME}) cannot be a second base: {student} '
        'sets ' + ' and '.join(
            k for k, v in (('custom_imports', has_imports),
                           ('custom_hooks', has_hooks)) if v) +
        ' (MMEngine refuses a key in two bases), so mmkd\'s import and '
        'hooks are added to its own here.')
    if missing_imports:
        if has_imports:
            value = format_value(imports + missing_imports, 0,
                                 len('custom_imports = dict(imports='))
            lines.append(f'custom_imports = dict(imports={value})')
        else:
            lines.append('custom_imports = ' + format_value(
                runtime.custom_imports.to_dict(), 0,
                len('custom_imports = ')))
    if missing_hooks:
        hooks_src = format_value(missing_hooks, 0, len('custom_hooks = '))
        if has_hooks and hooks:
            lines.append('custom_hooks = _base_.custom_hooks + ' + hooks_src)
        else:
            lines.append('custom_hooks = ' + hooks_src)
    return False, lines


# --- reading the inputs ------------------------------------------------------
def _load(config: str, option: str) -> Tuple[str, Config]:
    path = resolve_config(config, option)  # FileNotFoundError: where
    return path, Config.fromfile(path)


def _detector_class(model_cfg: dict):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        try:
            return MODELS.get(model_cfg.get('type'))
        except Exception:  # noqa: BLE001 - build() names what is wrong
            return None


def _refuse_unusable(model_cfg: dict, option: str, config: str) -> None:
    kind = str(model_cfg.get('type', ''))
    if 'Distill' in kind or 'architecture' in model_cfg:
        raise DistillConfigError(
            f'{option} {config} is a distillation config (model.type='
            f'{kind!r}): give the config of the detector alone (for mmkd\'s '
            'own, configs/student/ and configs/demo/retinanet_*_shapes.py)')
    from mmdet.models.detectors.base_detr import DetectionTransformer
    cls = _detector_class(model_cfg)
    if isinstance(cls, type) and issubclass(cls, DetectionTransformer):
        raise DistillConfigError(
            f'{option} {config} is a DETR-family detector ({kind}): its '
            "encoder tokens and decoder queries need mmkd's "
            'DinoTeacherDistill and DetrDistiller, which mmkd config does '
            f'not write. Start from {DETR_EXAMPLE} (mmkd::vkd/'
            'vkd_dino_swin-l_r50_coco.py; docs/detr.md) and set its '
            'teacher, teacher_ckpt and student there')


def build_detector(model_cfg: dict) -> torch.nn.Module:
    """The detector of a model config, on the CPU, in the ``mmdet`` scope
    (or the config's ``_scope_``). ``init_weights`` is not run, so nothing
    (ImageNet backbones) is downloaded."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(copy.deepcopy(model_cfg))


@dataclass(frozen=True)
class Level:
    """One neck output on the probe image."""
    index: int
    channels: int
    size: Tuple[int, int]
    stride: Stride


def probe_neck(model: torch.nn.Module, size: Tuple[int, int],
               option: str = 'detector') -> List[Level]:
    """Channels, map size and stride of each neck output of ``model`` on a
    1x3xHxW zero image (eval mode, no gradients; the mode is restored)."""
    if not getattr(model, 'with_neck', False):
        raise DistillConfigError(
            f'{option}: {type(model).__name__} has no neck; mmkd config '
            "pairs neck levels (FpnTeacherDistill records the necks' outputs)")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            feats = model.extract_feat(torch.zeros(1, 3, *size))
    except Exception as exc:  # noqa: BLE001 - re-raised naming the input
        raise DistillConfigError(
            f'{option}: its backbone and neck fail on a 1x3x{size[0]}x'
            f'{size[1]} image ({type(exc).__name__}: {exc}); pass another '
            '--probe-size') from exc
    finally:
        model.train(was_training)
    if isinstance(feats, torch.Tensor):
        feats = (feats, )
    if not all(isinstance(f, torch.Tensor) and f.dim() == 4 for f in feats):
        raise DistillConfigError(
            f'{option}: its neck does not return (B, C, H, W) maps (got '
            f'{[tuple(getattr(f, "shape", ())) for f in feats]}); mmkd '
            'config pairs the levels of FPN-style necks')
    return [Level(i, int(f.shape[1]), tuple(int(n) for n in f.shape[-2:]),
                  map_stride(size, f.shape[-2:]))
            for i, f in enumerate(feats)]


def _strides(levels: Sequence[Level]) -> list:
    return [lv.stride for lv in levels]


# --- the plan and its text ---------------------------------------------------
@dataclass
class DistillPlan:
    """What :func:`write_distill_config` found and wrote."""
    path: str
    method: str
    student: List[Level]
    teacher: List[Level]
    pairing: Pairing
    classes: Optional[Tuple[str, tuple]]
    ckpt_checked: bool
    text: str = ''

    @property
    def levels(self) -> Tuple[int, ...]:
        return tuple(s for s, _ in self.pairing.pairs)

    @property
    def teacher_levels(self) -> Tuple[int, ...]:
        return tuple(t for _, t in self.pairing.pairs)

    @property
    def student_channels(self):
        return channels_arg([self.student[s].channels for s in self.levels])

    @property
    def teacher_channels(self):
        return channels_arg(
            [self.teacher[t].channels for t in self.teacher_levels])

    def summary(self) -> str:
        pairs = ', '.join(f'{s} <- {t} (stride {self.student[s].stride})'
                          for s, t in self.pairing.pairs)
        left = self.left_out()
        return (f'wrote {self.path} ({self.method}): student <- teacher '
                f'levels {pairs}; channels {self.student_channels} -> '
                f'{self.teacher_channels}' +
                (f'; left out: {left}' if left else '') +
                f'. Train it: mmkd train {self.path}')

    def left_out(self) -> str:
        parts = []
        for who, levels, idx in (('student', self.student,
                                  self.pairing.student_left),
                                 ('teacher', self.teacher,
                                  self.pairing.teacher_left)):
            if idx:
                parts.append(f'{who} level' + ('s' if len(idx) > 1 else '') +
                             ' ' + ', '.join(f'{i} (stride '
                                             f'{levels[i].stride})'
                                             for i in idx))
        return '; '.join(parts)


def _some(names: Sequence, shown: int = 10) -> str:
    names = [str(n) for n in names]
    more = f' ... ({len(names)} in all)' if len(names) > shown else ''
    return ', '.join(names[:shown]) + more


def _neck_line(who: str, model_cfg: dict, levels: Sequence[Level]) -> str:
    neck = (model_cfg.get('neck') or {}).get('type', '?')
    return (f'{who} neck ({neck}): strides '
            f'{", ".join(str(lv.stride) for lv in levels)}; channels '
            f'{", ".join(str(lv.channels) for lv in levels)}')


def render(plan: DistillPlan, *, inputs: dict, bases: Sequence[str],
           runtime: Sequence[str], teacher_ref: str, ckpt_ref: str,
           student_arch: str, recipe: dict, connector: Optional[dict],
           probe_size: Tuple[int, int]) -> str:
    """The text of the written config."""
    pairing = plan.pairing
    s_levels = plan.student
    lines = comment('Distillation config written by `mmkd config` '
                    '(mmkd/apis/distill_config.py):', hang=4)
    lines.append('#     ' + inputs['command'])
    lines += comment('An ordinary mmkd config: change the loss weight '
                     '(model.distiller.loss) or the levels here.')
    lines.append('#')
    lines += comment(f"teacher: {inputs['teacher']}", hang=9)
    if plan.ckpt_checked:
        lines += comment(f"teacher checkpoint: {inputs['ckpt']}, loaded "
                         'strictly into the teacher when this file was '
                         'written (every key and shape fits; weights only).',
                         hang=4)
    else:
        lines += comment(f"teacher checkpoint: {inputs['ckpt']}, a URL: "
                         'not downloaded by mmkd config; loaded and checked '
                         'strictly (every key and shape) when training '
                         'first needs the teacher.', hang=4)
    lines += comment(f"student: {inputs['student']}", hang=9)
    lines += comment(f'method: {plan.method}, mmkd::_base_/recipes/'
                     f'{plan.method}.py', hang=8)
    if plan.classes is not None:
        where, names = plan.classes
        lines += comment(f'classes: {len(names)} ({where} of the student), '
                         'counted by both heads' +
                         (", and the teacher's in the same order"
                          if inputs.get('teacher_classes') else '') +
                         f': {_some(names)}', hang=9)
    lines += comment(
        'Paths: the student (_base_) and the teacher\'s config are named '
        'relative to this file\'s folder ({{ fileDirname }}: MMEngine fills '
        'it in when it loads this file), the checkpoint by its absolute '
        'path, mmdet::/mmkd:: names and URLs as given: this config loads '
        'from any working directory. Move it together with the two '
        'configs, or change the paths.')
    lines.append('#')
    lines += comment(f'Necks probed on a 1x3x{probe_size[0]}x{probe_size[1]}'
                     ' zero image (eval mode; stride = image size / map '
                     'size):')
    for neck in ('teacher_neck', 'student_neck'):
        lines += ['#   ' + line[2:] for line in comment(inputs[neck], 77)]
    lines += comment('Paired by stride (student level <- teacher level): ' +
                     ', '.join(f'{s} <- {t} (stride {s_levels[s].stride})'
                               for s, t in pairing.pairs) + '.')
    left = plan.left_out()
    lines += comment('Left out, no level of that stride in the other neck: '
                     + (left if left else 'none') + '.')
    lines.append('_base_ = [')
    base_notes = dict(inputs['base_notes'])
    for base in bases:
        entry = f'    {base!r},  # {base_notes[base]}'
        if len(entry) > 79:  # the note above a long path
            entry = f'    # {base_notes[base]}\n    {base!r},'
        lines.append(entry)
    lines += [']', '']
    if runtime:
        lines += list(runtime) + ['']
    s_strides = ', '.join(str(s_levels[s].stride) for s in plan.levels)
    distiller = [
        "        type='FpnDistiller',",
        f'        levels={plan.levels!r},  # student: strides {s_strides}',
        f'        teacher_levels={plan.teacher_levels!r},  # teacher: the '
        'same strides',
        '        student_channels=' + format_value(
            plan.student_channels, 8, 25) + ',',
        '        teacher_channels=' + format_value(
            plan.teacher_channels, 8, 25) + ',',
    ]
    # (comment lines, item) in order; items joined by commas.
    entries = [(comment(
        f'The recipe of mmkd::_base_/recipes/{plan.method}.py (its comments '
        'say where the values come from), written out: change the loss '
        'weight here.', width=71), None)]
    entries += [([], (key, value)) for key, value in recipe.items()]
    if connector is not None:
        entries.append((comment(
            f"{plan.method} compares maps of equal channels: the student's "
            "go through MMRazor's 1x1 ConvModuleConnector (no norm, no "
            "activation) to the teacher's, as "
            'configs/pkd/pkd_rtmdet_l_s_coco.py does.', width=71),
            ('connector', connector)))
    last = max(i for i, (_, item) in enumerate(entries) if item)
    for i, (notes, item) in enumerate(entries):
        distiller += ['        ' + line for line in notes]
        if item:
            key, value = item
            distiller.append(f'        {key}=' + format_value(
                value, 8, 9 + len(key)) + ('))' if i == last else ','))
    teacher_src = format_value(dict(cfg_path=teacher_ref, pretrained=False),
                               4, len('    teacher=') + 1)
    lines += [
        'model = dict(',
        '    _delete_=True,',
        "    _scope_='mmrazor',",
        "    type='StrictFpnTeacherDistill',  # teacher: backbone + neck, "
        'strict ckpt',
        f'    architecture={student_arch},  # the student',
        f'    teacher={teacher_src},',
        f'    teacher_ckpt={ckpt_ref!r},',
        '    distiller=dict(',
        *distiller,
        "# As in MMRazor's distillation configs: DDP must accept parameters "
        'that get',
        '# no gradient in a step (the connectors, once distillation is '
        'stopped).',
        'find_unused_parameters = True',
    ]
    return '\n'.join(lines) + '\n'


def verify_config(path: str, probe_size: Tuple[int, int]) -> None:
    """Load a written config with MMEngine, build its distiller (the teacher
    checkpoint is read only when training starts) and run the pairing check
    once on the probe image."""
    from mmengine.registry import DefaultScope
    from mmrazor.registry import MODELS

    from ..engine import check_distiller_shapes
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(cfg.model)
    check_distiller_shapes(model, probe_size)


def _probe_size(probe_size) -> Tuple[int, int]:
    size = [probe_size] if isinstance(probe_size, int) else list(probe_size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or not all(isinstance(n, int) and n >= 32
                                 for n in size):
        raise DistillConfigError(
            f'--probe-size {probe_size}: give H [W], each an int >= 32 '
            '(default 320 320)')
    return size[0], size[1]


def _check_out(out: str, force: bool, inputs: Sequence[str]) -> None:
    if not out.endswith('.py'):
        raise DistillConfigError(
            f'--out {out}: a config file name ends with .py')
    for path in inputs:
        if osp.isfile(path) and osp.exists(out) and osp.samefile(path, out):
            raise DistillConfigError(
                f'--out {out} is one of the input configs; the written '
                'config inherits them: choose another --out')
    if osp.exists(out) and not force:
        raise DistillConfigError(
            f'--out {out} exists (looked at {osp.abspath(out)}): choose '
            'another --out, or pass --force to replace it')


# --- the one function --------------------------------------------------------
def write_distill_config(teacher: str, teacher_ckpt: str, student: str,
                         method: str, out: str, force: bool = False,
                         probe_size: Union[int, Sequence[int]] = (320, 320)
                         ) -> DistillPlan:
    """Write ``out``, a distillation config of ``student`` (a config path
    or ``mmdet::``/``mmkd::`` name) learning from ``teacher`` (likewise)
    with weights ``teacher_ckpt`` (a local file, loaded strictly now, or an
    http(s) URL), by ``method`` (:data:`METHODS`); see the module docstring.
    ``out`` is not replaced unless ``force``. Returns the
    :class:`DistillPlan` (pairs, channels, classes, the text written).

    Raises:
        DistillConfigError: what cannot make a working config (classes,
            strides, DETR detectors, an existing ``out``...), naming the
            config key, both values and the fix.
        mmkd.checkpoint.CheckpointError: a missing or unsafe checkpoint, or
            one of another model (its mismatched keys named).
        FileNotFoundError: a config that does not exist (where it looked).
    """
    if method not in METHODS:
        raise DistillConfigError(
            f'--method {method!r}: choose one of {", ".join(METHODS)}')
    size = _probe_size(probe_size)
    s_path, s_cfg = _load(student, '--student')
    t_path, t_cfg = _load(teacher, '--teacher')
    _check_out(out, force, [s_path, t_path])
    _refuse_unusable(s_cfg.model, '--student', student)
    _refuse_unusable(t_cfg.model, '--teacher', teacher)
    s_model_cfg = copy.deepcopy(s_cfg.model)
    if not s_model_cfg.get('_scope_'):  # a config without mmdet:: bases
        s_model_cfg._scope_ = s_cfg.get('default_scope') or 'mmdet'
    # The teacher as the written config's distiller will build it.
    t_model_cfg = detector_config(
        dict(cfg_path=teacher if '::' in teacher else osp.abspath(t_path),
             pretrained=False), '--teacher')
    out_dir = osp.dirname(osp.abspath(out))
    teacher_ref = teacher_path(teacher if '::' in teacher else t_path,
                               out_dir)

    classes = dataset_classes(s_cfg)
    t_classes = dataset_classes(t_cfg, stated_only=True)
    check_classes(student, teacher, head_class_counts(s_model_cfg),
                  head_class_counts(t_model_cfg), classes, t_classes)
    runtime = Config.fromfile(resolve_config(RUNTIME, 'runtime'))
    runtime_base, runtime_src = runtime_lines(s_cfg, runtime, student)

    s_model = build_detector(s_model_cfg)
    t_model = build_detector(t_model_cfg)
    s_levels = probe_neck(s_model, size, f'--student {student}')
    t_levels = probe_neck(t_model, size, f'--teacher {teacher}')
    pairing = pair_levels(_strides(s_levels), _strides(t_levels))
    if not pairing.pairs:
        raise DistillConfigError(
            f'the necks have no stride in common: student {student} '
            f'strides {_strides(s_levels)}, teacher {teacher} strides '
            f'{_strides(t_levels)} (on a {size[0]}x{size[1]} probe). '
            'Distillation pairs maps of the same stride: give one neck '
            "levels of the other's strides (e.g. FPN start_level / "
            'num_outs)')
    ckpt_checked = not is_remote(teacher_ckpt)
    if ckpt_checked:
        checkpoint = load_state_strict(t_model, teacher_ckpt,
                                       '--teacher-ckpt')
        meta = (checkpoint.get('meta') or {}).get('dataset_meta') or {}
        if meta.get('classes'):
            check_classes(student, teacher, [], [], classes, (
                f"--teacher-ckpt {teacher_ckpt} meta.dataset_meta.classes "
                '(what the teacher was trained with)', meta['classes']))
    del s_model, t_model

    plan = DistillPlan(out, method, s_levels, t_levels, pairing, classes,
                       ckpt_checked)
    s_base = base_path(student, out_dir)
    bases = [s_base] + ([RUNTIME] if runtime_base else [])
    base_notes = [
        (s_base, 'the student: its model, data, schedule, runtime'),
        (RUNTIME, "mmkd's custom_imports and hooks")]
    # Written out rather than inherited: the file shows the loss it trains
    # with, where its weight is changed.
    recipe = Config.fromfile(resolve_config(
        f'mmkd::_base_/recipes/{method}.py', '--method')).recipe.to_dict()
    channels_differ = any(plan.student[s].channels != plan.teacher[t].channels
                          for s, t in pairing.pairs)
    connector = CHANNEL_CONNECTOR if (method in EQUAL_CHANNELS and
                                      channels_differ) else None
    # Built from the mmrazor scope, the student needs its own scope (a
    # package:: base gives it one).
    student_arch = '_base_.model' if '::' in student or \
        s_cfg.model.get('_scope_') else \
        f'dict(_base_.model, _scope_={s_model_cfg._scope_!r})'
    command = (f'mmkd config --teacher {teacher} --teacher-ckpt '
               f'{teacher_ckpt} --student {student} --method {method} '
               f'--out {out}')
    if size != (320, 320):
        command += f' --probe-size {size[0]} {size[1]}'
    inputs = dict(
        command=command,
        teacher=_named(teacher, t_path),
        ckpt=teacher_ckpt if not ckpt_checked else osp.abspath(teacher_ckpt),
        student=_named(student, s_path),
        teacher_classes=t_classes is not None,
        teacher_neck=_neck_line('teacher', t_model_cfg, t_levels),
        student_neck=_neck_line('student', s_model_cfg, s_levels),
        base_notes=base_notes)
    ckpt_ref = osp.abspath(teacher_ckpt) if ckpt_checked else teacher_ckpt
    plan.text = render(plan, inputs=inputs, bases=bases, runtime=runtime_src,
                       teacher_ref=teacher_ref, ckpt_ref=ckpt_ref,
                       student_arch=student_arch, recipe=recipe,
                       connector=connector,
                       probe_size=size)
    _write_proven(plan.text, out, force, size)
    return plan


def _named(config: str, path: str) -> str:
    """A config as given, with its absolute path where that differs."""
    if '::' in config or config == osp.abspath(path):
        return config
    return f'{config} ({osp.abspath(path)})'


def _write_proven(text: str, out: str, force: bool,
                  size: Tuple[int, int]) -> None:
    """Write ``text`` to a temporary config beside ``out`` (``_base_`` and
    ``{{ fileDirname }}`` resolve as they will for ``out``), prove it
    (:func:`verify_config`), then put it in place atomically."""
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fd, trial = tempfile.mkstemp(dir=out_dir, prefix='.mmkd-config-',
                                 suffix='.py')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        try:
            verify_config(trial, size)
        except Exception as exc:  # noqa: BLE001 - re-raised as a refusal
            raise DistillConfigError(
                f'the config written for {out} does not build '
                f'({type(exc).__name__}: {exc}); nothing was written. This '
                'is a bug of mmkd config: please report it with your two '
                'configs (MMKD_TRACEBACK=1 shows where)') from exc
    finally:
        os.remove(trial)
    if osp.exists(out) and not force:  # written meanwhile by another
        raise DistillConfigError(
            f'--out {out} exists (looked at {osp.abspath(out)}): choose '
            'another --out, or pass --force to replace it')
    atomic_write(text, out, 'w')


__all__ = ['DistillConfigError', 'DistillPlan', 'Level', 'METHODS',
           'Pairing', 'axis_stride', 'channels_arg', 'check_classes',
           'dataset_classes', 'format_value', 'head_class_counts',
           'pair_levels', 'probe_neck', 'verify_config',
           'write_distill_config']
