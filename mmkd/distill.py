"""Turn "these FPN levels, these channels" into a ``ConfigurableDistiller``.

A config states the recipe once::

    distiller=dict(
        type='FpnDistiller',
        levels=(0, 1, 2, 3, 4), student_channels=256, teacher_channels=256,
        connector=dict(type='ProjectorConnector', orthogonal=True),
        loss=dict(type='OrthoDistillLoss', norm='batch', loss_weight=1.0))

Any neck that returns a tuple of maps works (FPN, CSPNeXtPAFPN,
ChannelMapper...). When the two necks differ in level count or strides,
``teacher_levels`` pairs them: student level ``levels[i]`` is distilled from
teacher level ``teacher_levels[i]`` (default: the same indices), e.g. a
4-level student under a 5-level teacher with one more fine level:
``levels=(0, 1, 2, 3), teacher_levels=(1, 2, 3, 4)``. The pairing is checked
before the first training step (:func:`mmkd.engine.check_distiller_shapes`):
an index past the neck's outputs, paired maps of different sizes for a loss
that cannot resize, or paired maps of different strides (unless the
distiller sets ``resize_across_strides=True``) stop with the key to fix.

and :func:`fpn_distiller_cfg` expands it into MMRazor's recorders (one
``ModuleOutputs`` recorder on each model's neck), one connector and one loss
per level, and the ``loss_forward_mappings`` that join them. The object built
is mmkd's ``CheckedDistiller``: MMRazor's ``ConfigurableDistiller`` with
config errors that name the key.
"""
import copy
from typing import Dict, Optional, Sequence, Tuple, Union

from mmrazor.registry import MODELS

Channels = Union[int, Sequence[int]]

# Connector types whose channel arguments are filled in per level:
# (key for the student channels, key for the teacher channels or None).
CHANNEL_KEYS: Dict[str, Tuple[str, Optional[str]]] = {
    'ProjectorConnector': ('in_channels', 'out_channels'),
    'MGDConnector': ('student_channels', 'teacher_channels'),
    'ConvModuleConnector': ('in_channel', 'out_channel'),
    'FBKDStudentConnector': ('in_channels', None),
}
# Teacher-side connectors (FBKD) take the teacher channels.
TEACHER_CHANNEL_KEYS: Dict[str, str] = {'FBKDTeacherConnector': 'in_channels'}


def _fill(conn: dict, keys: Dict, values) -> dict:
    conn = copy.deepcopy(conn)
    found = keys.get(conn.get('type'))
    if isinstance(found, str):
        found = (found, )
    for key, value in zip(found or (), values):
        if key is not None:
            conn.setdefault(key, value)
    return conn


def _per_level(key: str, channels: Channels, levels: Sequence[int]):
    if isinstance(channels, int):
        return [channels] * len(levels)
    channels = list(channels)
    if len(channels) != len(levels):
        raise ValueError(
            f'FpnDistiller {key}={channels} gives {len(channels)} channel '
            f'counts for {len(levels)} levels {list(levels)}; give one int '
            'or one count per level')
    return channels


def _indices(key: str, levels: Sequence[int]) -> list:
    levels = list(levels)
    if not levels or len(set(levels)) != len(levels) or not all(
            isinstance(i, int) and i >= 0 for i in levels):
        raise ValueError(f'FpnDistiller {key}={levels}: expected distinct '
                         'neck output indices >= 0, e.g. (0, 1, 2, 3, 4)')
    return levels


def fpn_distiller_cfg(levels: Sequence[int],
                      student_channels: Channels,
                      teacher_channels: Channels,
                      loss: dict,
                      connector: Optional[dict] = None,
                      teacher_connector: Optional[dict] = None,
                      student_source: str = 'neck',
                      teacher_source: str = 'neck',
                      loss_args: Tuple[str, str] = ('preds_S', 'preds_T'),
                      name: str = 'fpn',
                      teacher_levels: Optional[Sequence[int]] = None,
                      recorder: str = 'ModuleOutputs',
                      student_record_idx: int = 0) -> dict:
    """Return the ``ConfigurableDistiller`` config for per-level distillation.

    Level ``i`` gets connector ``{name}{i}_student`` (if ``connector``; and
    ``{name}{i}_teacher`` if ``teacher_connector``, as FBKD needs), loss
    ``loss_{name}{i}`` (the name must contain "loss" for MMEngine to add it
    to the total) and a mapping ``loss_args[0]`` <- student level ``i``
    through the connector, ``loss_args[1]`` <- teacher level
    ``teacher_levels[k]`` where ``levels[k] == i`` (the same ``i`` when
    ``teacher_levels`` is None). ``recorder`` is the recorder type on both
    sources (``DetrEncoderLevels``/``DetrDecoderQueries`` for DETR tokens)
    and ``student_record_idx`` the student call the losses read (1: DINO's
    query probe, :class:`mmkd.models.DinoTeacherDistill`).
    """
    levels = _indices('levels', levels)
    teacher_levels = levels if teacher_levels is None else _indices(
        'teacher_levels', teacher_levels)
    if len(teacher_levels) != len(levels):
        raise ValueError(
            f'FpnDistiller levels={levels} and teacher_levels='
            f'{teacher_levels} pair {len(levels)} student levels with '
            f'{len(teacher_levels)} teacher levels; give one teacher level '
            'per student level')
    s_channels = _per_level('student_channels', student_channels, levels)
    t_channels = _per_level('teacher_channels', teacher_channels, levels)
    arg_S, arg_T = loss_args
    connectors, losses, mappings = {}, {}, {}
    for level, t_level, c_s, c_t in zip(levels, teacher_levels, s_channels,
                                        t_channels):
        loss_name = f'loss_{name}{level}'
        losses[loss_name] = copy.deepcopy(loss)
        student_record = dict(
            recorder=f'{name}_s', from_student=True, data_idx=level)
        if student_record_idx:
            student_record['record_idx'] = student_record_idx
        teacher_record = dict(
            recorder=f'{name}_t', from_student=False, data_idx=t_level)
        if connector is not None:
            connectors[f'{name}{level}_student'] = _fill(
                connector, CHANNEL_KEYS, (c_s, c_t))
            student_record['connector'] = f'{name}{level}_student'
        if teacher_connector is not None:
            connectors[f'{name}{level}_teacher'] = _fill(
                teacher_connector, TEACHER_CHANNEL_KEYS, (c_t, ))
            teacher_record['connector'] = f'{name}{level}_teacher'
        mappings[loss_name] = {arg_S: student_record, arg_T: teacher_record}
    return dict(
        type='CheckedDistiller',
        student_recorders={
            f'{name}_s': dict(type=recorder, source=student_source)
        },
        teacher_recorders={
            f'{name}_t': dict(type=recorder, source=teacher_source)
        },
        connectors=connectors,
        distill_losses=losses,
        loss_forward_mappings=mappings)


def _build_with_opt_in(cfg: dict, resize_across_strides: bool):
    distiller = MODELS.build(cfg)
    # Read by mmkd.engine.check_distiller_shapes: maps of different strides
    # may be paired (and interpolated by the loss) only when asked for.
    distiller.resize_across_strides = bool(resize_across_strides)
    return distiller


@MODELS.register_module(name='FpnDistiller')
def build_fpn_distiller(resize_across_strides: bool = False, **kwargs):
    """Registry entry: ``dict(type='FpnDistiller', ...)`` builds MMRazor's
    ``ConfigurableDistiller`` from :func:`fpn_distiller_cfg` arguments.

    ``resize_across_strides=True`` is the explicit request to pair maps of
    different strides (a loss or connector then interpolates one side);
    without it :func:`mmkd.engine.check_distiller_shapes` refuses such a
    pairing before the first step, since it is nearly always a wrong
    ``teacher_levels``."""
    return _build_with_opt_in(fpn_distiller_cfg(**kwargs),
                              resize_across_strides)


# DETR terms: group -> (loss/connector name, recorder type, source module,
# student record read).
DETR_TERMS = {
    'neck': ('neck', 'ModuleOutputs', 'neck', 0),
    'encoder': ('enc', 'DetrEncoderLevels', 'encoder', 0),
    # Record 1 of the student's decoder is its outputs on DinoTeacherDistill's
    # distillation points (the teacher's queries, docs/detr.md).
    'queries': ('query', 'DetrDecoderQueries', 'decoder', 1),
}


def _pooled_queries_cfg(spec: dict, student_channels: Channels,
                        teacher_channels: Channels, loss: dict,
                        connector: Optional[dict]) -> dict:
    """One term for all the decoder layers ``spec['levels']`` (VkD): the
    recorders pool the layers into one map each (``DetrDecoderQueries
    layers=...``), so one connector and one loss, with batch statistics over
    layers x queries, cover them."""
    levels = _indices('queries levels', spec['levels'])
    teacher_levels = levels if spec.get('teacher_levels') is None else \
        _indices('queries teacher_levels', spec['teacher_levels'])
    if len(teacher_levels) != len(levels):
        raise ValueError(
            f'DetrDistiller queries levels={levels} and teacher_levels='
            f'{teacher_levels} pool {len(levels)} student layers with '
            f'{len(teacher_levels)} teacher layers; give one teacher layer '
            'per student layer')
    for key, value in (('student_channels', student_channels),
                       ('teacher_channels', teacher_channels)):
        if not isinstance(value, int):
            raise ValueError(
                f'DetrDistiller {key}={value}: pooled queries (queries='
                'dict(pool=True)) need one int, the decoders\' embed_dims')
    name, recorder, source, record_idx = DETR_TERMS['queries']
    student = dict(recorder=f'{name}_s', from_student=True, data_idx=0,
                   record_idx=record_idx)
    teacher = dict(recorder=f'{name}_t', from_student=False, data_idx=0)
    connectors = {}
    if connector is not None:
        connectors[f'{name}_student'] = _fill(
            connector, CHANNEL_KEYS, (student_channels, teacher_channels))
        student['connector'] = f'{name}_student'
    teacher_recorders = {f'{name}_t': dict(
        type=recorder, source=source, layers=teacher_levels)}
    mapping = dict(preds_S=student, preds_T=teacher)
    weights = spec.get('weights')
    if weights == 'teacher_score':
        teacher_recorders[f'{name}_w'] = dict(
            type='DetrQueryScores', source=source, layers=teacher_levels)
        mapping['weight'] = dict(recorder=f'{name}_w', from_student=False,
                                 data_idx=0)
    elif weights is not None:
        raise ValueError(
            f'DetrDistiller queries weights={weights!r}: choose None (every '
            "distillation point alike) or 'teacher_score' (each point "
            "weighted by the teacher's top class score, KD-DETR)")
    return dict(
        type='CheckedDistiller',
        student_recorders={f'{name}_s': dict(
            type=recorder, source=source, layers=levels)},
        teacher_recorders=teacher_recorders,
        connectors=connectors,
        distill_losses={f'loss_{name}': copy.deepcopy(loss)},
        loss_forward_mappings={f'loss_{name}': mapping})


def detr_distiller_cfg(student_channels: Channels,
                       teacher_channels: Channels,
                       loss: dict,
                       connector: Optional[dict] = None,
                       neck: Optional[dict] = None,
                       encoder: Optional[dict] = None,
                       queries: Optional[dict] = None) -> dict:
    """``ConfigurableDistiller`` for a DETR-family pair (DINO): one recipe
    (``connector`` + ``loss``) on up to three groups of terms, each a dict
    ``levels=...`` (+ ``teacher_levels=...``) or None to leave it out:

    - ``neck``: the neck's maps, one term per level (``loss_neck{i}``);
    - ``encoder``: the encoder's output tokens of each scale, on the
      scale's grid (``loss_enc{i}``);
    - ``queries``: decoder layer outputs on the distillation points
      (``levels`` are decoder layer indices). ``pool=True`` (default, VkD's
      weighting): the layers pooled into ONE term ``loss_query`` with one
      connector and batch statistics over layers x queries;
      ``pool=False``: one term per layer (``loss_query{i}``).
      ``weights='teacher_score'`` (pooled only) weights each distillation
      point by the teacher's top class score (KD-DETR's weights).

    Every term gets its own connector. The algorithm must be
    :class:`mmkd.models.DinoTeacherDistill` (it runs the teacher as far as
    the terms need and the distillation points that pair the queries).
    """
    groups = dict(neck=neck, encoder=encoder, queries=queries)
    unknown = [k for k, v in groups.items()
               if v is not None and not isinstance(v, dict)]
    if unknown or not any(groups.values()):
        raise ValueError(
            'DetrDistiller: give at least one of neck=, encoder=, queries= '
            "as dict(levels=(...), teacher_levels=(...)), e.g. neck=dict("
            'levels=(0, 1, 2, 3), teacher_levels=(1, 2, 3, 4)); got ' +
            ', '.join(f'{k}={v!r}' for k, v in groups.items()))
    merged = None
    for group, spec in groups.items():
        if not spec:
            continue
        allowed = {'levels', 'teacher_levels'} | (
            {'pool', 'weights'} if group == 'queries' else set())
        extra = set(spec) - allowed
        if extra or 'levels' not in spec:
            raise ValueError(
                f'DetrDistiller {group}={spec}: expected dict(levels=..., '
                'teacher_levels=...) (teacher_levels optional' +
                ('; pool=True/False, weights=None/\'teacher_score\''
                 if group == 'queries' else '') + ')')
        if group == 'queries' and not spec.get('pool', True) and \
                spec.get('weights') is not None:
            raise ValueError(
                f'DetrDistiller queries={spec}: per-query weights need the '
                'pooled query term; set queries pool=True or weights=None')
        if group == 'queries' and spec.get('pool', True):
            part = _pooled_queries_cfg(spec, student_channels,
                                       teacher_channels, loss, connector)
        else:
            name, recorder, source, record_idx = DETR_TERMS[group]
            part = fpn_distiller_cfg(
                levels=spec['levels'],
                teacher_levels=spec.get('teacher_levels'),
                student_channels=student_channels,
                teacher_channels=teacher_channels, loss=loss,
                connector=connector, student_source=source,
                teacher_source=source, name=name, recorder=recorder,
                student_record_idx=record_idx)
        if merged is None:
            merged = part
            continue
        for key in ('student_recorders', 'teacher_recorders', 'connectors',
                    'distill_losses', 'loss_forward_mappings'):
            merged[key].update(part[key])
    return merged


@MODELS.register_module(name='DetrDistiller')
def build_detr_distiller(resize_across_strides: bool = False, **kwargs):
    """Registry entry: ``dict(type='DetrDistiller', ...)`` builds MMRazor's
    ``ConfigurableDistiller`` from :func:`detr_distiller_cfg` arguments;
    ``resize_across_strides=True`` lets the shape check pass maps paired
    across strides (see ``FpnDistiller``)."""
    return _build_with_opt_in(detr_distiller_cfg(**kwargs),
                              resize_across_strides)
