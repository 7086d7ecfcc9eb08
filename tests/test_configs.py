"""Every config under configs/ loads and its model builds on the CPU without a
download; the COCO configs take their teacher, student, data and schedule
from MMDetection's own configs and model zoo: the student is the model of the
mmdet config a pair base inherits, the teacher is named by its mmdet config
(``cfg_path``) and its checkpoint is the one mmdet's metafile gives for it."""
import copy
import glob
import os.path as osp
import re
from functools import lru_cache

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import MODELS, DefaultScope
from torch.nn.utils import parametrize

import mmkd  # noqa: F401  (compat layer, registers mmkd's modules)
from mmkd.config_files import detector_config
from mmkd.preflight import PreflightError, preflight

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs')
CONFIGS = sorted(
    p for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, CONFIG_DIR).split(osp.sep))
COCO_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*', '*_coco.py')))
PAIR_DIR = osp.join(CONFIG_DIR, '_base_', 'coco')

# What each method prefix must build: distill loss type, connector type
# (None: no connector) and the connector / loss options that make the recipe.
METHODS = {
    'vkd': ('OrthoDistillLoss', 'ProjectorConnector',
            dict(orthogonal=True), dict(norm='batch', distance='smooth_l1',
                                        reduction='mean')),
    'srd': ('OrthoDistillLoss', 'ProjectorConnector',
            dict(orthogonal=False), dict(norm='instance', distance='l1',
                                         reduction='logsum', alpha=4.0)),
    'pkd': ('PKDLoss', None, {}, {}),
    'cwd': ('ChannelWiseDivergence', None, {}, dict(tau=1.0)),
    'mgd': ('MGDLoss', 'MGDConnector', dict(lambda_mgd=0.65),
            dict(alpha_mgd=0.00002)),
}
FPN_METHODS = tuple(METHODS)
# VkD on a DETR, tokens only: VkD's recipe without the query terms.
METHODS['vkd-tokens'] = METHODS['vkd']
# mmkd's own query rule (the student's content at the teacher's boxes).
METHODS['vkd-content'] = METHODS['vkd']
# COCO pair -> (teacher, student) mmdet configs and the student's epochs.
PAIRS = {
    'rtmdet_l_s': ('rtmdet/rtmdet_l_8xb32-300e_coco.py',
                   'rtmdet/rtmdet_s_8xb32-300e_coco.py', 300),
    'gfl_r101_r50': ('gfl/gfl_r101_fpn_ms-2x_coco.py',
                     'gfl/gfl_r50_fpn_1x_coco.py', 12),
    'retinanet_r50_r18': ('retinanet/retinanet_r50_fpn_1x_coco.py',
                          'retinanet/retinanet_r18_fpn_1x_coco.py', 12),
    'retinanet_r101_r50_2x': ('retinanet/retinanet_r101_fpn_2x_coco.py',
                              'retinanet/retinanet_r50_fpn_2x_coco.py', 24),
    'faster-rcnn_r101_r50_2x': ('faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
                                'faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
                                24),
    'dino_swin-l_r50': ('dino/dino-5scale_swin-l_8xb2-12e_coco.py',
                        'dino/dino-4scale_r50_8xb2-12e_coco.py', 12),
}
# The levels each pair distils (RTMDet's neck has 3) and the methods it has.
PAIR_LEVELS = {'rtmdet_l_s': (0, 1, 2)}
PAIR_METHODS = {'rtmdet_l_s': ('vkd', 'srd', 'pkd'),
                'gfl_r101_r50': ('vkd', 'srd', 'pkd'),
                'dino_swin-l_r50': ('vkd', 'vkd-tokens')}
STUDENTS = {
    'rtmdet_s': PAIRS['rtmdet_l_s'],
    'gfl_r50': PAIRS['gfl_r101_r50'],
    'retinanet_r18': PAIRS['retinanet_r50_r18'],
    'retinanet_r50_2x': PAIRS['retinanet_r101_r50_2x'],
    'faster-rcnn_r50_2x': PAIRS['faster-rcnn_r101_r50_2x'],
    'dino-4scale_r50': PAIRS['dino_swin-l_r50'],
}
DISTILL_NAME = re.compile(r'^(%s)_(.+)_coco\.py$' % '|'.join(METHODS))
STUDENT_NAME = re.compile(r'^student_(.+)_coco\.py$')


def _name(path: str) -> str:
    return osp.relpath(path, CONFIG_DIR)


def _method(path: str) -> str:
    return osp.basename(path).split('_')[0]


def _pair(path: str):
    match = DISTILL_NAME.match(osp.basename(path))
    return match.group(2) if match else None


@lru_cache(maxsize=None)
def _load(path: str) -> Config:
    return Config.fromfile(path)


def plain(cfg, drop=('_scope_', )):
    """A config as plain Python values, without the given keys at any depth
    (MMEngine adds ``_scope_`` to what a config inherits from mmdet)."""
    if isinstance(cfg, dict):
        return {k: plain(v, drop) for k, v in cfg.items() if k not in drop}
    if isinstance(cfg, (list, tuple)):
        return [plain(v, drop) for v in cfg]
    return cfg


def test_configs_are_found():
    names = [_name(p) for p in CONFIGS]
    assert 'demo/vkd_retinanet_shapes.py' in names
    assert 'vkd/vkd_retinanet_r50_r18_coco.py' in names
    # Every method of each COCO pair, and each student alone.
    want = {f"{m.split('-')[0]}/{m}_{pair}_coco.py" for pair in PAIRS
            for m in PAIR_METHODS.get(pair, FPN_METHODS)}
    want |= {f'student/student_{s}_coco.py' for s in STUDENTS}
    assert {_name(p) for p in COCO_CONFIGS} == want
    for path in COCO_CONFIGS:
        name = osp.basename(path)
        distill, student = DISTILL_NAME.match(name), STUDENT_NAME.match(name)
        assert (distill and distill.group(2) in PAIRS) or (
            student and student.group(1) in STUDENTS), name


def _pretrained_inits(model: torch.nn.Module):
    """Names of the modules whose ``init_cfg`` would load weights."""
    found = []
    for name, module in model.named_modules():
        init = getattr(module, 'init_cfg', None)
        inits = init if isinstance(init, (list, tuple)) else [init]
        if any(isinstance(i, dict) and i.get('type') == 'Pretrained'
               for i in inits):
            found.append(name)
    return found


# What the teacher built from a pair base is compared with: mmdet's model,
# built from mmdet's config by mmdet's registry.
@lru_cache(maxsize=None)
def _mmdet_signature(name: str):
    cfg = get_config(f'mmdet::{name}')
    with DefaultScope.overwrite_default_scope('mmdet'):
        return _signature(MODELS.build(cfg.model))


def _signature(model: torch.nn.Module):
    """The modules (name, class) and tensors (name, shape) of a model."""
    return ([(n, type(m).__name__) for n, m in model.named_modules()],
            [(n, tuple(t.shape)) for n, t in model.state_dict().items()])


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_model_builds_offline(path):
    """The model as the config writes it (a teacher named by ``cfg_path``
    through MMRazor's builder): building reads no weights (init_cfg is
    applied by init_weights(), the teacher checkpoint when training first
    needs it)."""
    cfg = _load(path)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(copy.deepcopy(cfg.model))
    assert type(model).__name__ == cfg.model.type
    if 'distiller' not in cfg.model:
        assert cfg.model.get('_scope_', 'mmdet') == 'mmdet'
        return
    # The detectors are built by MMRazor from its own scope: they must say
    # they are mmdet's.
    teacher_cfg = detector_config(cfg.model.teacher)
    assert cfg.model._scope_ == 'mmrazor'
    assert cfg.model.architecture._scope_ == 'mmdet'
    assert teacher_cfg._scope_ == 'mmdet'
    assert type(model.student).__name__ == cfg.model.architecture.type
    assert type(model.teacher).__name__ == teacher_cfg.type
    assert not any(p.requires_grad for p in model.teacher.parameters())
    # The teacher's weights come from teacher_ckpt alone: no ImageNet init
    # (its mmdet config's) is left to apply, and with a checkpoint
    # init_weights() leaves it alone.
    assert _pretrained_inits(model.teacher) == []
    assert model.teacher.is_init == bool(cfg.model.teacher_ckpt)
    assert not model.teacher_loaded or not cfg.model.teacher_ckpt
    pair = _pair(path)
    if path in COCO_CONFIGS:
        # The teacher MMRazor's builder made of the pair base's cfg_path is
        # mmdet's model of its config.
        assert _signature(model.teacher) == _mmdet_signature(PAIRS[pair][0])
    if cfg.model.distiller.type == 'DetrDistiller':
        _check_detr_distiller(cfg, teacher_cfg, model, path)
        return
    for detector in (cfg.model.architecture, teacher_cfg):
        assert detector.neck.get('num_outs', 3) == len(
            PAIR_LEVELS.get(pair, range(5)))

    # One loss (and one connector per configured connector) per FPN level.
    distiller = cfg.model.distiller
    assert distiller.type == 'FpnDistiller'
    levels = tuple(distiller.levels)
    if path in COCO_CONFIGS:  # COCO: every level of the neck
        assert levels == PAIR_LEVELS.get(pair, (0, 1, 2, 3, 4))
    assert set(levels) <= {0, 1, 2, 3, 4}
    losses = model.distiller.distill_losses
    assert len(losses) == len(levels)
    assert {type(loss).__name__ for loss in losses.values()} == {
        distiller.loss.type}
    connectors = model.distiller.connectors
    configured = [distiller[key].type for key in ('connector',
                                                  'teacher_connector')
                  if distiller.get(key)]

    assert sorted(type(c).__name__ for c in connectors.values()) == sorted(
        configured * len(levels))

    if path not in COCO_CONFIGS:
        return
    # The COCO configs follow their method's recipe.
    loss_type, connector_type, connector_opts, loss_opts = METHODS[
        _method(path)]
    assert distiller.loss.type == loss_type
    if connector_type is None and \
            distiller.student_channels != distiller.teacher_channels:
        # A recipe without a connector (PKD, CWD) on a narrower student:
        # MMRazor's 1x1 ConvModuleConnector.
        assert configured == ['ConvModuleConnector']
        assert distiller.connector.kernel_size == 1
    else:
        assert configured == ([connector_type] if connector_type else [])
    for loss in losses.values():
        for key, value in loss_opts.items():
            assert getattr(loss, key) == value, (key, loss)
    for conn in connectors.values():
        for key, value in connector_opts.items():
            assert getattr(conn, key) == value, (key, conn)
        if connector_type == 'ProjectorConnector':
            assert parametrize.is_parametrized(
                conn.proj, 'weight') == conn.orthogonal


def _check_detr_distiller(cfg, teacher_cfg, model, path):
    """A DETR distiller (DinoTeacherDistill): one loss and one connector
    per configured neck level and encoder scale, and ONE query term for all
    decoder layers (VkD's weighting: one projector, statistics over layers
    x queries); the method's recipe on each; the COCO pair's student scales
    paired with the teacher's of the same stride; the teacher's queries as
    the distillation points by default."""
    distiller = cfg.model.distiller
    groups = {'neck': 'neck', 'encoder': 'enc'}
    want = sorted(f'loss_{short}{level}' for group, short in groups.items()
                  if distiller.get(group)
                  for level in distiller[group].levels)
    if distiller.get('queries'):
        want.append('loss_query')
        recorder = model.distiller.student_recorders.get_recorder('query_s')
        assert recorder.layers == list(distiller.queries.levels)
        assert model.query_input == ('student_content' if _method(path) ==
                                     'vkd-content' else 'teacher')
    assert sorted(model.distiller.distill_losses) == sorted(want)
    if distiller.get('connector'):
        assert sorted(model.distiller.connectors) == sorted(
            n.replace('loss_', '') + '_student' for n in want)
    loss_type, connector_type, connector_opts, loss_opts = METHODS[
        _method(path)]
    assert {type(x).__name__ for x in
            model.distiller.distill_losses.values()} == {loss_type}
    assert {type(x).__name__ for x in model.distiller.connectors.values()
            } <= ({connector_type} if connector_type else set())
    for conn in model.distiller.connectors.values():
        for key, value in connector_opts.items():
            assert getattr(conn, key) == value, (key, conn)
    for loss in model.distiller.distill_losses.values():
        for key, value in loss_opts.items():
            assert getattr(loss, key) == value, (key, loss)
    if _method(path) == 'vkd-tokens':
        assert not distiller.get('queries')
    elif _method(path) in ('vkd', 'vkd-content'):
        assert distiller.queries.levels == tuple(
            range(cfg.model.architecture.decoder.num_layers))
    if path in COCO_CONFIGS:
        # Student strides 8-64 against the teacher's 4-64.
        assert teacher_cfg.num_feature_levels == 5
        assert cfg.model.architecture.get('num_feature_levels', 4) == 4
        for group in ('neck', 'encoder'):
            assert distiller[group].levels == (0, 1, 2, 3)
            assert distiller[group].teacher_levels == (1, 2, 3, 4)


@pytest.mark.parametrize('path', COCO_CONFIGS, ids=_name)
def test_coco_config_uses_mmdet_zoo(path):
    cfg = _load(path)
    name = osp.basename(path)
    distill = DISTILL_NAME.match(name)
    if distill:
        teacher_cfg, student_cfg, epochs = PAIRS[distill.group(2)]
        student = cfg.model.architecture
    else:
        teacher_cfg, student_cfg, epochs = STUDENTS[
            STUDENT_NAME.match(name).group(1)]
        student = cfg.model
    mmdet_student = get_config(f'mmdet::{student_cfg}')
    # The student is mmdet's, ImageNet init included.
    assert plain(student) == plain(mmdet_student.model)
    assert student.backbone.init_cfg.type == 'Pretrained'
    # So are the data, schedule and runtime; mmkd's hooks come after the
    # config's own (RTMDet's EMA and pipeline switch).
    for key in mmdet_student:
        if key == 'custom_hooks':
            assert plain(cfg[key])[:len(mmdet_student[key])] == plain(
                mmdet_student[key])
        elif key != 'model':
            assert plain(cfg[key]) == plain(mmdet_student[key]), key
    assert cfg.train_cfg.max_epochs == epochs
    if not distill:
        return

    # The teacher and its checkpoint are its pair base's.
    pair = _load(osp.join(PAIR_DIR, f'{distill.group(2)}.py'))
    assert plain(cfg.model.teacher) == plain(pair.model.teacher)
    assert cfg.model.teacher_ckpt == pair.model.teacher_ckpt


@pytest.mark.parametrize('pair', sorted(PAIRS))
def test_pair_base_names_its_detectors_by_mmdet_config(pair, mmdet_zoo):
    """A pair base names the teacher by its mmdet config and gives as
    teacher_ckpt the checkpoint mmdet's metafile gives for that config; its
    levels and channels are those of the two detectors' necks."""
    cfg = _load(osp.join(PAIR_DIR, f'{pair}.py'))
    teacher_name, student_name, _ = PAIRS[pair]
    assert plain(cfg.model.teacher) == dict(
        cfg_path=f'mmdet::{teacher_name}', pretrained=False)
    assert plain(cfg.model.architecture) == plain(
        get_config(f'mmdet::{student_name}').model)
    # What MMEngine's hub gives as that config's weights (its metafile).
    url = get_config(f'mmdet::{teacher_name}', pretrained=True).model_path
    assert cfg.model.teacher_ckpt == url
    assert url.startswith('https://download.openmmlab.com/mmdetection/')
    assert mmdet_zoo[teacher_name][0] == url

    student = cfg.model.architecture
    teacher = detector_config(cfg.model.teacher)
    assert plain(teacher) == plain(get_config(f'mmdet::{teacher_name}').model)
    assert teacher._scope_ == 'mmdet'

    def outs(neck):
        return neck.get('num_outs', len(neck.in_channels))

    distiller = cfg.model.distiller
    assert distiller.student_channels == student.neck.out_channels
    assert distiller.teacher_channels == teacher.neck.out_channels
    if distiller.type == 'DetrDistiller':
        # Paired by stride: the student's scales are the teacher's last.
        n_s, n_t = outs(student.neck), outs(teacher.neck)
        for group in ('neck', 'encoder'):
            assert distiller[group].levels == tuple(range(n_s))
            assert distiller[group].teacher_levels == tuple(
                range(n_t - n_s, n_t))
        assert distiller.queries.levels == tuple(
            range(student.decoder.num_layers))
    else:
        assert outs(student.neck) == outs(teacher.neck)
        assert distiller.levels == tuple(range(outs(student.neck)))


def test_detector_config_merges_settings_and_refuses_the_rest():
    """Keys beside cfg_path change the referenced config's model as a child
    config would (a user's teacher with its own classes); ``pretrained=True``
    (a non-strict zoo load while building) and a whole model config merged
    into a reference (no ``_delete_``) stop with the key and the fix."""
    from mmrazor.registry import MODELS as RAZOR_MODELS
    name = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
    mmdet_model = get_config(name).model
    with pytest.raises(ValueError, match='model.teacher.pretrained=True'):
        detector_config(dict(cfg_path=name, pretrained=True))
    with pytest.raises(ValueError, match=r'_delete_=True') as info:
        detector_config(dict(cfg_path=name, type='RetinaNet'))
    assert 'model.teacher.bbox_head.num_classes=3' in str(info.value)
    changed = detector_config(dict(cfg_path=name, pretrained=False,
                                   bbox_head=dict(num_classes=3)),
                              'model.architecture')
    assert changed.bbox_head.num_classes == 3
    # ... and the rest of the head, and the model, as mmdet's config has it
    assert plain(changed.bbox_head.anchor_generator) == plain(
        mmdet_model.bbox_head.anchor_generator)
    assert plain(changed.backbone) == plain(mmdet_model.backbone)
    assert changed._scope_ == 'mmdet' and changed.type == 'RetinaNet'
    replaced = detector_config(dict(cfg_path=name, neck=dict(
        _delete_=True, type='FPN', in_channels=[512, 1024, 2048],
        out_channels=256, num_outs=5)))
    assert 'add_extra_convs' not in replaced.neck
    # A model config is returned as it is (a copy).
    model = dict(type='RetinaNet', backbone=dict(depth=18))
    assert detector_config(model) == model and \
        detector_config(model) is not model
    algorithm = RAZOR_MODELS.get('StrictFpnTeacherDistill')
    with pytest.raises(ValueError, match=re.escape(
            'model.teacher.pretrained=True')):
        algorithm(architecture=dict(type='RetinaNet'),
                  teacher=dict(cfg_path=name, pretrained=True),
                  distiller=dict(type='FpnDistiller'))


def test_distiller_builds_a_referenced_teacher_with_its_own_classes(
        tmp_path):
    """A user's config on a pair base whose teacher has 3 classes (a
    custom dataset): ``--cfg-options model.teacher.bbox_head.num_classes=3``
    builds that head; a whole teacher dict without ``_delete_`` is refused
    naming it; with ``_delete_`` it replaces the reference."""
    from mmengine.registry import DefaultScope
    from mmrazor.registry import MODELS as RAZOR_MODELS
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'pkd',
                                   'pkd_retinanet_r50_r18_coco.py'))
    cfg.merge_from_dict({'model.teacher.bbox_head.num_classes': 3,
                         'model.teacher_ckpt': None})

    def build(model):
        with DefaultScope.overwrite_default_scope('mmrazor'):
            return RAZOR_MODELS.build(copy.deepcopy(model))

    algo = build(cfg.model)
    assert algo.teacher.bbox_head.num_classes == 3
    assert algo.teacher.backbone.depth == 50
    whole = plain(get_config(
        'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py').model)
    whole['backbone']['init_cfg'] = None
    merged = copy.deepcopy(cfg.model)
    merged.teacher.update(whole)  # what MMEngine's merge gives
    with pytest.raises(ValueError, match=r'_delete_=True'):
        build(merged)
    replaced = copy.deepcopy(cfg.model)
    replaced.teacher = dict(whole, _scope_='mmdet')
    assert build(replaced).teacher.backbone.depth == 18


@pytest.mark.parametrize('path', COCO_CONFIGS, ids=_name)
def test_coco_config_reads_standard_layout(path):
    cfg = _load(path)
    splits = dict(train_dataloader=('train2017', 'instances_train2017.json'),
                  val_dataloader=('val2017', 'instances_val2017.json'),
                  test_dataloader=('val2017', 'instances_val2017.json'))
    for loader, (images, ann) in splits.items():
        dataset = cfg[loader].dataset
        assert dataset.type == 'CocoDataset'
        assert dataset.data_root == 'data/coco/'
        assert dataset.ann_file == f'annotations/{ann}'
        assert dataset.data_prefix.img == f'{images}/'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CocoMetric'
        assert evaluator.ann_file == \
            'data/coco/annotations/instances_val2017.json'


def test_preflight_names_missing_coco(tmp_path, monkeypatch):
    cfg = _load(osp.join(CONFIG_DIR, 'vkd', 'vkd_retinanet_r50_r18_coco.py'))
    monkeypatch.chdir(tmp_path)  # no data/coco here
    monkeypatch.setenv('MMKD_SKIP_URL_CHECK', '1')  # never reach a network
    with pytest.raises(PreflightError) as info:
        preflight(cfg, train=True)
    message = str(info.value)
    assert 'data/coco/annotations/instances_train2017.json' in message
    assert 'data/coco/train2017' in message
    assert 'cocodataset.org' in message and 'mim download' in message


def test_offline_model_cfg_leaves_no_download(offline_model_cfg):
    cfg = _load(osp.join(CONFIG_DIR, 'vkd', 'vkd_retinanet_r50_r18_coco.py'))
    model = offline_model_cfg(cfg.model)
    assert model.architecture.backbone.init_cfg is None
    assert model.teacher_ckpt is None
    # The teacher named by its mmdet config is written out (a test may
    # change its settings), without its ImageNet init.
    assert model.teacher.type == 'RetinaNet'
    assert model.teacher.backbone.depth == 50
    assert model.teacher.backbone.init_cfg is None
    # The loaded config itself is unchanged.
    assert cfg.model.architecture.backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.teacher_ckpt.startswith('https://')
    assert 'cfg_path' in cfg.model.teacher


@pytest.mark.parametrize('path', CONFIGS, ids=_name)
def test_config_describes_its_whole_run(path):
    """What mmkd's tools used to add is in every config, so MMDetection's
    own tools run it the same way."""
    cfg = _load(path)
    assert cfg.custom_imports == dict(imports=['mmkd'],
                                      allow_failed_imports=False)
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks.count('FiniteLossHook') == 1
    assert hooks.count('DropFrozenTeacherHook') == 1
    # Its train, val and test data name the same classes in the same order.
    from mmkd.preflight import class_order_problems
    assert class_order_problems(cfg) == []


def test_preflight_refuses_a_config_that_does_not_import_mmkd(tmp_path):
    from mmkd.preflight import check_imports
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'demo',
                                   'vkd_retinanet_shapes.py'))
    check_imports(cfg)  # the config imports mmkd itself
    without = Config({k: v for k, v in cfg.to_dict().items()
                      if k != 'custom_imports'})
    with pytest.raises(PreflightError) as info:
        check_imports(without)
    message = str(info.value)
    assert 'custom_imports' in message and 'mmkd_runtime.py' in message
    assert 'FpnDistiller' in message and 'ProjectorConnector' in message
    # A plain mmdet config needs nothing of mmkd's.
    plain_cfg = Config(dict(model=dict(type='RetinaNet')))
    check_imports(plain_cfg)


def test_preflight_refuses_a_dino_config_that_does_not_import_mmkd():
    """mmkd's types are read from the registries, so the DETR modules
    (DinoTeacherDistill, DetrDistiller, the DETR recorders) count too."""
    from mmkd.preflight import check_imports
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'demo', 'dino',
                                   'vkd_dino_shapes.py'))
    check_imports(cfg)
    without = Config({k: v for k, v in cfg.to_dict().items()
                      if k != 'custom_imports'})
    with pytest.raises(PreflightError) as info:
        check_imports(without)
    for name in ('DinoTeacherDistill', 'DetrDistiller'):
        assert name in str(info.value)
    # Only the modules themselves: a DINO recorder config alone counts.
    recorder_only = Config(dict(model=dict(
        type='SingleTeacherDistill',
        distiller=dict(student_recorders=dict(
            q=dict(type='DetrDecoderQueries', source='decoder'))))))
    with pytest.raises(PreflightError, match='DetrDecoderQueries'):
        check_imports(recorder_only)


def test_mmkd_types_come_from_the_registries():
    from mmrazor.registry import MODELS as RAZOR_MODELS

    from mmkd.preflight import mmkd_types
    types = mmkd_types()
    assert {'DinoTeacherDistill', 'DetrDistiller', 'FpnDistiller',
            'DetrDecoderQueries', 'DetrEncoderLevels', 'FiniteLossHook',
            'ProjectorConnector', 'OrthoDistillLoss'} <= types
    # Not mmkd's: MMDetection's and MMRazor's own.
    assert not {'DINO', 'ConfigurableDistiller', 'PKDLoss',
                'ModuleOutputs', 'SingleTeacherDistill'} & types
    # A module mmkd registers later is covered without a list to update.
    fake = type('MmkdFakeModule', (), {'__module__': 'mmkd.models.fake'})
    RAZOR_MODELS.register_module(module=fake)
    try:
        mmkd_types.cache_clear()
        assert 'MmkdFakeModule' in mmkd_types()
    finally:
        RAZOR_MODELS._module_dict.pop('MmkdFakeModule')
        mmkd_types.cache_clear()


def test_mmkd_scope_names_configs_in_the_package():
    """``mmkd::`` resolves to the package's .mim/configs (the checkout's
    configs/ through a symlink in an editable install)."""
    cfg = Config.fromfile('mmkd::vkd/vkd_retinanet_r50_r18_coco.py')
    assert osp.realpath(cfg.filename) == osp.realpath(
        osp.join(CONFIG_DIR, 'vkd', 'vkd_retinanet_r50_r18_coco.py'))
    assert cfg.model.distiller.connector.orthogonal is True
    # ... and as a base of a user's config elsewhere.
    user = Config.fromstring(
        "_base_ = ['mmkd::srd/srd_retinanet_r50_r18_coco.py']\n"
        'model = dict(distiller=dict(loss=dict(loss_weight=2.0)))\n', '.py')
    assert user.model.distiller.loss.norm == 'instance'
    assert user.model.distiller.loss.loss_weight == 2.0
    # MMEngine scopes what such a base brings as 'mmkd' (unless a base of its
    # own gave it a scope, as mmdet:: does for the COCO data); the mmkd
    # registries find MMDetection's types (a dataset, a metric) from there.
    user = Config.fromstring(
        "_base_ = ['mmkd::demo/vkd_retinanet_shapes.py']\n", '.py')
    from mmdet.datasets import CocoDataset
    from mmdet.evaluation import CocoMetric
    from mmengine.registry import DATASETS, METRICS
    for registry, cfg, found in (
            (DATASETS, user.train_dataloader.dataset, CocoDataset),
            (METRICS, user.val_evaluator, CocoMetric)):
        assert cfg._scope_ == 'mmkd'
        with registry.switch_scope_and_registry(cfg._scope_) as scoped:
            assert scoped.scope == 'mmkd'
            assert scoped.get(cfg.type) is found


RECIPE_DIR = osp.join(CONFIG_DIR, '_base_', 'recipes')
METHOD_CONFIGS = [p for p in CONFIGS
                  if _method(p) in METHODS and 'distill' not in _name(p)]


@pytest.mark.parametrize('path', METHOD_CONFIGS, ids=_name)
def test_method_config_is_its_recipe_on_its_pair(path):
    """A method config states neither levels nor losses itself: the pair
    base gives levels and channels, the recipe base connector and loss (a
    config may change the loss weight or the levels, nothing else)."""
    cfg = _load(path)
    with open(path) as f:
        text = f.read()
    # 'vkd-tokens' is VkD's recipe, through the VkD config of its pair;
    # configs/vkd_retinanet_r50_r18_coco.py (the first published path) is
    # configs/vkd/'s, inherited whole.
    method = _method(path).split('-')[0]
    assert f"recipes/{method}.py'" in text or \
        re.search(r"_base_ = \['\./(%s/)?%s_[^']+'\]" % (method, method),
                  text)
    for word in ('OrthoDistillLoss', 'ProjectorConnector', 'student_channels',
                 'PKDLoss', 'MGDLoss', 'ChannelWiseDivergence'):
        assert word not in text, word
    recipe = Config.fromfile(osp.join(RECIPE_DIR, f'{method}.py'))
    distiller = cfg.model.distiller
    want_connector = plain(recipe.recipe.get('connector'))
    if want_connector is None and \
            distiller.student_channels != distiller.teacher_channels:
        # The one addition a config may make: MMRazor's 1x1 ConvModule to
        # the teacher's channels, for a recipe without a connector.
        want_connector = dict(type='ConvModuleConnector', kernel_size=1,
                              norm_cfg=None, act_cfg=None)
    assert plain(distiller.get('connector')) == want_connector
    want_loss = plain(recipe.recipe.loss)
    got_loss = plain(distiller.loss)
    want_loss.pop('loss_weight', None)
    got_loss.pop('loss_weight', None)
    assert got_loss == want_loss


@pytest.mark.parametrize('method', FPN_METHODS)
def test_recipe_bases_build_inherited_by_their_mmkd_name(method, tmp_path):
    """A user's config elsewhere joins a pair base and a recipe base by their
    ``mmkd::`` names, as a method config joins them by relative paths.
    MMEngine gives such a base's first typed dicts ``_scope_='mmkd'`` unless
    they state one; the recipes' connectors and losses are MMRazor's
    modules, which the ``mmkd`` registries (MMDetection's children) do not
    reach, so each recipe states ``_scope_='mmrazor'``."""
    user = tmp_path / f'my_{method}.py'
    user.write_text(
        "_base_ = ['mmkd::_base_/coco/retinanet_r50_r18.py',\n"
        f"          'mmkd::_base_/recipes/{method}.py']\n"
        'model = dict(distiller=_base_.recipe)\n')
    cfg = Config.fromfile(str(user))
    loss_type, connector_type = METHODS[method][:2]
    assert cfg.model.distiller.loss.type == loss_type
    from mmrazor.registry import MODELS as RAZOR_MODELS
    # As the algorithm builds it: in the mmrazor scope (the pair's model
    # states _scope_='mmrazor'), whatever scope another test left.
    with DefaultScope.overwrite_default_scope('mmrazor'):
        distiller = RAZOR_MODELS.build(copy.deepcopy(cfg.model.distiller))
    assert {type(m).__name__ for m in distiller.distill_losses.values()} \
        == {loss_type}
    assert {type(m).__name__ for m in distiller.connectors.values()} \
        == ({connector_type} if connector_type else set())
