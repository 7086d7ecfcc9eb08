"""The RTMDet and GFL COCO configs train at demo size: built offline from the
configs themselves (5 classes, random teacher), two SGD steps on 128x128
images, one distillation term per configured level, gradients into the
student; RTMDet's distillation stops with its pipeline switch."""
import copy
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, MODELS, DefaultScope

from mmkd_lab.data import make_det_batch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '*', '*_rtmdet_l_s_coco.py')) +
    glob.glob(osp.join(ROOT, 'configs', '*', '*_gfl_r101_r50_coco.py')))
NUM_CLASSES = 5


def _build(path: str, offline_model_cfg):
    """The config's distiller with no download (no ImageNet init, no
    teacher checkpoint) and 5 classes."""
    cfg = Config.fromfile(path)
    model = offline_model_cfg(cfg.model)
    for detector in (model.architecture, model.teacher):
        detector.bbox_head.num_classes = NUM_CLASSES
    with DefaultScope.overwrite_default_scope('mmdet'):
        algo = MODELS.build(model)
    algo.init_weights()
    # One process on a CPU: SyncBN as BN, as MMEngine's runner does.
    return cfg, revert_sync_batchnorm(algo)


def test_both_pairs_have_their_configs():
    names = sorted(osp.basename(p) for p in CONFIGS)
    assert names == sorted(f'{m}_{pair}_coco.py' for m in ('vkd', 'srd',
                                                          'pkd')
                           for pair in ('rtmdet_l_s', 'gfl_r101_r50'))


@pytest.mark.parametrize('path', CONFIGS,
                         ids=lambda p: osp.basename(p)[:-len('_coco.py')])
def test_trains_two_steps_at_demo_size(path, offline_model_cfg):
    cfg, algo = _build(path, offline_model_cfg)
    levels = tuple(cfg.model.distiller.levels)
    torch.manual_seed(0)
    wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in algo.parameters() if p.requires_grad], lr=1e-3,
        momentum=0.9), clip_grad=dict(max_norm=35))
    neck = copy.deepcopy(algo.student.neck.state_dict())
    teacher = copy.deepcopy(algo.teacher.state_dict())
    data = make_det_batch(2, (128, 128), seed=0)
    algo.train()
    for _ in range(2):
        log_vars = algo.train_step(copy.deepcopy(data), wrapper)
        distill = sorted(k for k in log_vars if k.startswith('distill.'))
        assert distill == sorted(f'distill.loss_fpn{i}' for i in levels)
        for value in log_vars.values():
            assert torch.isfinite(torch.as_tensor(value))
    # The student's neck moved; nothing of the frozen teacher did.
    moved = [k for k, v in algo.student.neck.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, neck[k])]
    assert moved
    for key, value in algo.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key


def test_rtmdet_distillation_stops_with_the_pipeline_switch(
        offline_model_cfg):
    path = osp.join(ROOT, 'configs', 'vkd', 'vkd_rtmdet_l_s_coco.py')
    cfg, algo = _build(path, offline_model_cfg)
    hooks = {h['type']: h for h in cfg.custom_hooks}
    stop = hooks['mmrazor.StopDistillHook']
    assert stop['stop_epoch'] == hooks['PipelineSwitchHook']['switch_epoch']
    hook = HOOKS.build(copy.deepcopy(stop))
    runner = SimpleNamespace(model=algo, epoch=stop['stop_epoch'] - 1,
                             logger=SimpleNamespace(info=lambda msg: None))
    hook.before_train_epoch(runner)
    assert not algo.distillation_stopped
    data = algo.data_preprocessor(make_det_batch(2, (128, 128), seed=0),
                                  True)
    assert any(k.startswith('distill.')
               for k in algo.loss(data['inputs'], data['data_samples']))
    runner.epoch = stop['stop_epoch']
    hook.before_train_epoch(runner)
    assert algo.distillation_stopped
    losses = algo.loss(data['inputs'], data['data_samples'])
    assert not any(k.startswith('distill.') for k in losses)
    assert any(k.startswith('student.') for k in losses)


@pytest.mark.parametrize('setting, levels, channels', [
    ('rtmdet_l_s', (0, 1, 2), (128, 256)),
    ('gfl_r101_r50', (0, 1, 2, 3, 4), (256, 256))])
def test_benchmark_settings_read_the_pair_from_the_configs(setting, levels,
                                                           channels):
    from mmkd_lab.benchmark import (
        build_method,
        setting_levels,
        setting_models,
    )
    student, teacher, c_s, c_t = setting_models(setting)
    assert (c_s, c_t) == channels
    assert setting_levels(setting) == levels
    model = build_method('pkd', student, teacher, c_s, c_t, levels=levels)
    # One loss per level of the neck; a 1x1 ConvModule where channels differ.
    assert len(model.distiller.distill_losses) == len(levels)
    connectors = list(model.distiller.connectors.values())
    assert [type(c).__name__ for c in connectors] == (
        ['ConvModuleConnector'] * len(levels) if c_s != c_t else [])
    assert not any(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in model.modules())
