"""Step time and memory of distillation methods against the floor.

The floor of a distillation step is the student's own training step plus the
teacher's backbone+neck forward (no grad) on the same preprocessed batch.
For a DETR setting (``dino_*``) the teacher's part of the floor is its
forward as far as the query pairing needs it: backbone, neck, encoder,
two-stage selection and decoder (``teacher_fwd``); ``teacher_fwd_tokens``
(to the encoder) is what tokens-only distillation needs, and the floor of
``vkd_tokens`` (``floor_tokens``: student step + that). The distillation
points (the teacher's queries in the student's decoder: a query group of
its own call, or a second call for ``vkd_second_pass`` / ``vkd_old``) are
part of the VkD step, not of the floor, nor of the connectors + losses
share; a DETR row's ``points_s`` is what the step costs beyond the floor
and the connectors + losses.
Every method is timed on that batch, in one process, interleaved (one step
of each method per round, the order rotated by one each round), after
warm-up; medians are reported.
"""
import copy
import os
import os.path as osp
import statistics
import time
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS, DefaultScope

from mmkd.config_files import detector_config, package_dir
from mmkd.distill import fpn_distiller_cfg
from mmkd.models import DinoTeacherDistill

from .data import make_det_batch
from .reduced_precision import ReducedPrecisionTeacherDistill

RECIPE_DIR = osp.join(package_dir(), '.mim', 'configs', '_base_', 'recipes')


def config_recipes() -> Tuple[str, ...]:
    """The recipes the configs use: one base per recipe in
    ``configs/_base_/recipes/`` (stated once there), in file-name order."""
    return tuple(sorted(name[:-3] for name in os.listdir(RECIPE_DIR)
                        if name.endswith('.py') and not name.startswith('_')))


# FBKD has no config in mmkd and is written here.
CONFIG_RECIPES = config_recipes()


def config_recipe(method: str) -> dict:
    """``recipe`` of ``configs/_base_/recipes/{method}.py``, as a dict."""
    return Config.fromfile(
        f'mmkd::_base_/recipes/{method}.py').recipe.to_dict()


RECIPES: Dict[str, dict] = {m: config_recipe(m) for m in CONFIG_RECIPES}
RECIPES['fbkd'] = dict(
    connector=dict(type='FBKDStudentConnector', mode='dot_product',
                   sub_sample=True, maxpool_stride=8),
    teacher_connector=dict(type='FBKDTeacherConnector', mode='dot_product',
                           sub_sample=True, maxpool_stride=8),
    loss=dict(type='FBKDLoss'), loss_args=('s_input', 't_input'))
METHODS = ('student', 'teacher_fwd') + tuple(RECIPES) + (
    'teacher_fwd_bf16', 'vkd_bf16', 'srd_bf16')


def is_fpn_method(method: str) -> bool:
    """Whether an FPN setting can time ``method``: looked up when called, so
    recipes added to ``RECIPES`` afterwards (tools/analysis) count."""
    base = method[:-len('_bf16')] if method.endswith('_bf16') else method
    return base in ('student', 'teacher_fwd') or base in RECIPES


# Every setting's pair (detectors, levels, channels) as an mmkd config states
# it once (configs/_base_/coco/, configs/demo/_base_/pair.py).
SETTINGS = {
    'demo': 'mmkd::demo/vkd_retinanet_shapes.py',
    'retinanet_r50_r18': 'mmkd::vkd/vkd_retinanet_r50_r18_coco.py',
    'faster-rcnn_r101_r50': 'mmkd::vkd/vkd_faster-rcnn_r101_r50_2x_coco.py',
    'rtmdet_l_s': 'mmkd::vkd/vkd_rtmdet_l_s_coco.py',
    'gfl_r101_r50': 'mmkd::vkd/vkd_gfl_r101_r50_coco.py',
    # DETR settings (DinoTeacherDistill): see run_benchmark.
    'dino_demo': 'mmkd::demo/dino/vkd_dino_shapes.py',
    'dino_swin-l_r50': 'mmkd::vkd/vkd_dino_swin-l_r50_coco.py',
}
# What a DETR setting times: the student's step, the teacher's no-grad pass
# as far as query pairing needs it (backbone, neck, encoder, two-stage
# selection, decoder: the floor) and only to its encoder (what tokens-only
# needs), VkD with tokens + queries (the config's distiller: the teacher's
# queries as a query group of the student's decoder call), VkD tokens only,
# and variants of the query terms (DETR_VARIANTS).
# DinoTeacherDistill arguments (and query-term options) of each variant:
# - vkd_second_pass: the same distillation points in a second call of the
#   student's decoder instead of a group of its own call;
# - vkd_old: mmkd's rule before issue 18 (the student's content queries at
#   the teacher's boxes, a second decoder pass, one term per decoder layer);
# - vkd_quarter_points: the teacher's best-ranked quarter of its queries as
#   the distillation points (fewer points);
# - vkd_quarter_general: that quarter plus an eighth as many random
#   (KD-DETR's "general") points;
# - vkd_score_weights: every point, each weighted by the teacher's top class
#   score (KD-DETR's weights).
DETR_VARIANTS = {
    'vkd_second_pass': dict(probe='second_pass'),
    'vkd_old': dict(probe='second_pass', query_input='student_content',
                    pool=False),
    'vkd_quarter_points': dict(num_points='quarter'),
    'vkd_quarter_general': dict(num_points='quarter', num_general='eighth'),
    'vkd_score_weights': dict(weights='teacher_score'),
}
DETR_METHODS = ('student', 'teacher_fwd', 'teacher_fwd_tokens', 'vkd',
                'vkd_tokens') + tuple(DETR_VARIANTS)


def is_detr(setting: str) -> bool:
    return _setting_model(setting).distiller.type == 'DetrDistiller'


@lru_cache(maxsize=None)
def _setting_config(setting: str) -> Config:
    """A setting's config, parsed once, without downloads (no ImageNet
    init). Callers get copies."""
    if setting not in SETTINGS:
        raise ValueError(f'benchmark setting {setting!r}: choose one of '
                         f'{sorted(SETTINGS)}')
    cfg = Config.fromfile(SETTINGS[setting])
    # A teacher named by its mmdet config (cfg_path), written out.
    cfg.model.teacher = detector_config(cfg.model.teacher)
    for detector in (cfg.model.architecture, cfg.model.teacher):
        if 'backbone' in detector:
            detector.backbone.init_cfg = None
    return cfg


def _setting_model(setting: str) -> ConfigDict:
    """The distiller config of a setting (not to be changed: copy it)."""
    return _setting_config(setting).model


def setting_clip_grad(setting: str) -> Optional[float]:
    """``max_norm`` of the setting config's gradient clipping, or None."""
    clip = _setting_config(setting).optim_wrapper.get('clip_grad')
    return clip['max_norm'] if clip else None


def setting_levels(setting: str) -> Tuple[int, ...]:
    """The neck levels a setting distils (every level of its neck)."""
    distiller = _setting_model(setting).distiller
    if distiller.type == 'DetrDistiller':
        return tuple(distiller.neck.levels)
    return tuple(distiller.levels)


def build_detr_method(method: str, setting: str):
    """A DETR setting's model for ``method`` (``DETR_METHODS``): the
    student, or the config's ``DinoTeacherDistill`` (without query terms
    for ``*_tokens``; the ``teacher_fwd*`` steps run its teacher only)."""
    model = copy.deepcopy(_setting_model(setting))
    with DefaultScope.overwrite_default_scope('mmdet'):
        if method == 'student':
            built = MODELS.build(model.architecture)
        else:
            model.teacher_ckpt = None  # timing only: a random teacher
            if method.endswith('_tokens'):
                model.distiller.queries = None
            variant = dict(DETR_VARIANTS.get(method, {}))
            for key in ('pool', 'weights'):
                if key in variant:
                    model.distiller.queries[key] = variant.pop(key)
            for key, share in (('num_points', 4), ('num_general', 8)):
                if key in variant:  # 'quarter' / 'eighth' of the queries
                    variant[key] = max(
                        1, model.architecture.num_queries // share)
            model.update(variant)
            built = MODELS.build(model)
    # DINO's own initialisation (without it a random DINO can give NaN
    # matching costs); its gradient clipping is the step's (make_step).
    built.init_weights()
    return built


def setting_models(setting: str) -> Tuple[dict, dict, int, int]:
    """(student cfg, teacher cfg, student channels, teacher channels)."""
    model = copy.deepcopy(_setting_model(setting))
    d = model.distiller
    return (model.architecture, model.teacher, d.student_channels,
            d.teacher_channels)


def build_method(method: str, student: dict, teacher: dict, c_s: int,
                 c_t: int, teacher_dtype: str = 'float32',
                 fbkd_levels: Optional[Sequence[int]] = None,
                 levels: Sequence[int] = (0, 1, 2, 3, 4)):
    """The model a method times. A distillation method is a
    ``ReducedPrecisionTeacherDistill`` (an ``FpnTeacherDistill``; float32
    unless ``teacher_dtype`` says otherwise). A ``_bf16`` suffix runs the
    teacher in bfloat16, e.g. ``teacher_fwd_bf16``."""
    if method.endswith('_bf16'):
        method, teacher_dtype = method[:-len('_bf16')], 'bfloat16'
    from mmengine.model import revert_sync_batchnorm
    with DefaultScope.overwrite_default_scope('mmdet'):
        if method in ('student', 'teacher_fwd'):
            # One process: SyncBN (RTMDet) as BN, as MMEngine's runner does.
            model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(
                student if method == 'student' else teacher)))
            if method == 'teacher_fwd':
                model.requires_grad_(False)
                model.eval()
            return model
        recipe = copy.deepcopy(RECIPES[method])
        if c_s != c_t and 'connector' not in recipe:
            # PKD and CWD compare equal channels: MMRazor's 1x1 ConvModule.
            recipe['connector'] = dict(
                type='ConvModuleConnector', kernel_size=1, norm_cfg=None,
                act_cfg=None)
        if c_s != c_t and method == 'fbkd':
            raise ValueError('FBKD needs equal student and teacher channels')
        # FBKD's non-local blocks max-pool by 8: at most the three finest
        # levels (MMRazor's FBKD configs do not use the coarse ones either),
        # and only those at least 16x16 (``fbkd_levels``).
        if method == 'fbkd':
            levels = fbkd_levels or (0, 1, 2)
    # Not registered (no config uses it): built by its class, in MMRazor's
    # scope as a config's distiller is.
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return revert_sync_batchnorm(ReducedPrecisionTeacherDistill(
            teacher_dtype=teacher_dtype,
            architecture=copy.deepcopy(student),
            teacher=copy.deepcopy(teacher),
            distiller=fpn_distiller_cfg(levels=levels, student_channels=c_s,
                                        teacher_channels=c_t, **recipe)))


def _fbkd_levels(student, inputs: torch.Tensor) -> List[int]:
    """Of the three finest FPN levels, those FBKD can take: its connectors
    max-pool by 8 and their non-local blocks sub-sample by 2 more."""
    with torch.no_grad():
        feats = student.extract_feat(inputs)
    return [i for i, f in enumerate(feats[:3]) if min(f.shape[-2:]) >= 16]


def make_step(method: str, model, data: dict,
              clip_grad: Optional[float] = None) -> Callable[[], None]:
    """One training step (forward, backward, gradient clipping to
    ``clip_grad`` if given, SGD step) or, for the teacher, one no-grad
    backbone+neck forward, on an already preprocessed batch (a DINO
    distiller's teacher: ``teacher_forward``, as far as its terms need)."""
    if method.startswith('teacher_fwd') and isinstance(model,
                                                       DinoTeacherDistill):
        model.train()  # its teacher stays in eval mode

        def detr_forward():
            model.teacher_forward(data['inputs'], data['data_samples'])
        return detr_forward
    if method.startswith('teacher_fwd'):
        dtype = torch.bfloat16 if method.endswith('_bf16') else None
        device = data['inputs'].device.type

        def forward():
            with torch.no_grad(), torch.autocast(device, dtype=dtype,
                                                 enabled=dtype is not None):
                model.extract_feat(data['inputs'])
        return forward
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step():
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        loss, _ = model.parse_losses(losses)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad:
            torch.nn.utils.clip_grad_norm_(params, clip_grad)
        opt.step()
    return step


def distill_share(model) -> float:
    """Seconds for connectors + losses, forward and backward, on the features
    recorded by the last step (the student's made leaves with grad).

    MMRazor's recorders have no setter: the records are swapped in place in
    the list that their public ``data_buffer`` returns, and put back."""
    distiller = model.distiller
    saved = {}
    for name, rec in distiller.student_recorders.recorders.items():
        saved[name] = list(rec.data_buffer)
        rec.data_buffer[:] = [_leaf(r) for r in saved[name]]
    try:
        start = time.perf_counter()
        losses = distiller.compute_distill_losses()
        sum(losses.values()).backward()
        return time.perf_counter() - start
    finally:
        for name, rec in distiller.student_recorders.recorders.items():
            rec.data_buffer[:] = saved[name]


def _leaf(record):
    if isinstance(record, torch.Tensor):
        return record.detach().requires_grad_(True)
    return type(record)(_leaf(r) for r in record)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def run_benchmark(setting: str = 'demo', size: Tuple[int, int] = (128, 128),
                  batch_size: int = 2, methods=None, warmup: int = 2,
                  repeats: int = 5, device: Optional[str] = None,
                  teacher_dtype: str = 'float32') -> Dict[str, dict]:
    """Median step seconds per method, the floor and the ratios.
    ``methods``: default every method the setting has (``METHODS``, or
    ``DETR_METHODS`` for a DETR setting); others are left out."""
    device = torch.device(device or ('cuda' if torch.cuda.is_available()
                                     else 'cpu'))
    torch.manual_seed(0)
    student, teacher, c_s, c_t = setting_models(setting)
    levels = setting_levels(setting)
    raw = make_det_batch(batch_size, size, seed=0)
    steps, models = {}, {}
    if is_detr(setting):
        methods = [m for m in methods or DETR_METHODS if m in DETR_METHODS]
        # DINO's gradient clipping (its config's) in every DETR step.
        clip_grad = setting_clip_grad(setting)
        for method in ('student', 'teacher_fwd') + tuple(
                m for m in methods if m not in ('student', 'teacher_fwd')):
            model = build_detr_method(method, setting).to(device)
            data = model.data_preprocessor(copy.deepcopy(raw), True)
            models[method] = model
            steps[method] = make_step(method, model, data, clip_grad)
        return _time_steps(steps, models, warmup, repeats, device, detr=True)
    methods = list(methods or METHODS)
    unknown = [m for m in methods if not is_fpn_method(m)]
    if unknown:
        raise ValueError(
            f'benchmark methods {unknown} are unknown: a method is student, '
            f'teacher_fwd or a recipe ({", ".join(RECIPES)}), optionally '
            'with _bf16 (the teacher in bfloat16)')
    if c_s != c_t:
        methods = [m for m in methods if not m.startswith('fbkd')]
    fbkd_levels, data = None, None
    for method in ('student', 'teacher_fwd') + tuple(
            m for m in methods if m not in ('student', 'teacher_fwd')):
        if method == 'fbkd':  # the student is built first: data is its batch
            fbkd_levels = _fbkd_levels(models['student'], data['inputs'])
            if not fbkd_levels:
                continue
        model = build_method(method, student, teacher, c_s, c_t,
                             teacher_dtype, fbkd_levels,
                             levels=levels).to(device)
        data = model.data_preprocessor(copy.deepcopy(raw), True)
        models[method] = model
        steps[method] = make_step(method, model, data)
    return _time_steps(steps, models, warmup, repeats, device)


def _time_steps(steps: Dict[str, Callable], models: Dict, warmup: int,
                repeats: int, device: torch.device,
                detr: bool = False) -> Dict[str, dict]:
    times: Dict[str, List[float]] = {m: [] for m in steps}
    shares: Dict[str, List[float]] = {m: [] for m in steps}
    peak: Dict[str, Optional[float]] = {m: None for m in steps}
    names = list(steps)
    for round_ in range(warmup + repeats):
        # The order rotates each round, so no method is always the one that
        # runs right after a given other (allocator and cache state).
        shift = round_ % len(names)
        for method in names[shift:] + names[:shift]:
            step = steps[method]
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            elapsed = time.perf_counter() - start
            if round_ < warmup:
                continue
            times[method].append(elapsed)
            if device.type == 'cuda':
                peak[method] = max(peak[method] or 0,
                                   torch.cuda.max_memory_allocated(device))
            if hasattr(models[method], 'distiller') and \
                    not method.startswith('teacher_fwd'):  # a distiller
                shares[method].append(distill_share(models[method]))
    return summarise(times, shares, peak, detr)


def summarise(times: Dict[str, List[float]], shares: Dict[str, List[float]],
              peak: Dict[str, Optional[float]],
              detr: bool = False) -> Dict[str, dict]:
    """Ratios computed from the measured medians only; ``detr``: a DETR
    setting, whose distillers also get ``points_s``."""
    med = {m: statistics.median(t) for m, t in times.items()}
    floor = med['student'] + med['teacher_fwd']
    # DETR tokens-only: its teacher stops after the encoder, so its floor
    # does too.
    floor_tokens = (med['student'] + med['teacher_fwd_tokens']
                    if 'teacher_fwd_tokens' in med else None)
    out = {}
    for method, t in med.items():
        row = dict(step_s=t, repeats=len(times[method]),
                   peak_mb=None if peak[method] is None else
                   peak[method] / 2**20)
        if not method.startswith(('student', 'teacher_fwd')):
            own = floor_tokens if (method.endswith('_tokens')
                                   and floor_tokens) else floor
            row['over_floor'] = t / own
            row['distill_share'] = statistics.median(shares[method]) / t
            if detr:
                # DETR: what is left of the step once the floor (student
                # step + teacher) and the connectors + losses are taken
                # out: the distillation points in the student's decoder
                # (and recording), forward and backward.
                row['points_s'] = t - own - row['distill_share'] * t
        out[method] = row
    out['floor'] = dict(step_s=floor, repeats=0, peak_mb=None)
    if floor_tokens is not None:
        out['floor_tokens'] = dict(step_s=floor_tokens, repeats=0,
                                   peak_mb=None)
    return out


def time_orthogonal_maps(c_s: int, c_t: int, warmup: int = 3,
                         repeats: int = 30,
                         device: Optional[str] = None) -> Dict[str, float]:
    """Median seconds to evaluate one orthogonal ``W`` (``c_t x c_s``) and
    back-propagate through it, per map, interleaved: the part of a VkD
    projector that a plain linear projector does not pay."""
    from mmkd.models import ProjectorConnector
    from mmkd.models.connectors.projector_connector import ORTHOGONAL_MAPS
    device = torch.device(device or ('cuda' if torch.cuda.is_available()
                                     else 'cpu'))
    torch.manual_seed(0)
    grad = torch.randn(c_t, c_s, device=device)
    steps = {}
    for name in ORTHOGONAL_MAPS:
        proj = ProjectorConnector(c_s, c_t, orthogonal_map=name).to(device)

        def step(proj=proj):
            (proj.proj.weight * grad).sum().backward()
        steps[name] = step
    times: Dict[str, List[float]] = {m: [] for m in steps}
    for round_ in range(warmup + repeats):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {m: statistics.median(t) for m, t in times.items()}


def format_maps(times: Dict[str, float], c_s: int, c_t: int) -> str:
    fastest = min(times.values())
    lines = [f'**orthogonal W ({c_t}x{c_s}): evaluation + backward, median**',
             '', '| map | ms | / fastest |', '|---|---|---|']
    for name, t in sorted(times.items(), key=lambda kv: kv[1]):
        lines.append(f'| {name} | {1000 * t:.3f} | {t / fastest:.2f} |')
    return '\n'.join(lines)


def format_table(results: Dict[str, dict], title: str) -> str:
    lines = [f'**{title}**', '',
             '| method | step (ms) | step / floor | connectors+losses share |'
             ' peak mem (MB) |', '|---|---|---|---|---|']
    for method, r in results.items():
        ratio = f"{r['over_floor']:.3f}" if 'over_floor' in r else '-'
        share = (f"{100 * r['distill_share']:.1f} %"
                 if 'distill_share' in r else '-')
        mem = f"{r['peak_mb']:.0f}" if r['peak_mb'] is not None else 'n/a'
        lines.append(f"| {method} | {1000 * r['step_s']:.1f} | {ratio} | "
                     f'{share} | {mem} |')
    if any('points_s' in r for r in results.values()):
        lines += ['', '**decomposition (ms): teacher + student (the floor) '
                  '+ distillation points + connectors and losses**', '',
                  '| method | teacher | student | distillation points | '
                  'connectors + losses | step |', '|---|---|---|---|---|---|']
        student = results['student']['step_s']
        for method, r in results.items():
            if 'points_s' not in r:
                continue
            tokens = method.endswith('_tokens') and \
                'teacher_fwd_tokens' in results
            teacher = results['teacher_fwd_tokens' if tokens else
                              'teacher_fwd']['step_s']
            lines.append(
                f'| {method} | {1000 * teacher:.1f} | {1000 * student:.1f} '
                f"| {1000 * r['points_s']:.1f} | "
                f"{1000 * r['distill_share'] * r['step_s']:.1f} | "
                f"{1000 * r['step_s']:.1f} |")
    if 'teacher_fwd_bf16' in results:
        bf16 = results['teacher_fwd_bf16']['step_s']
        lines.append('')
        lines.append('teacher backbone+neck forward, bf16 vs fp32: '
                     f"{results['teacher_fwd']['step_s'] / bf16:.2f}x faster")
    return '\n'.join(lines)
