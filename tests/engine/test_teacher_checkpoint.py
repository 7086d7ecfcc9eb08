"""DropFrozenTeacherHook (mmkd/engine/teacher_checkpoint.py): distillation
checkpoints without the
frozen teacher, and exact resume from them."""
import copy
import os
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmkd.apis.train import evaluation_teacher_hook
from mmkd.checkpoint import CheckpointError, mismatch_report, read_checkpoint
from mmkd.engine.teacher_checkpoint import (
    DropFrozenTeacherHook,
    frozen_teacher,
)
from mmkd_lab.data import make_det_batch


def r50_r18_distill_cfg(mmdet_model_cfg):
    return dict(
        _scope_='mmrazor', type='FpnTeacherDistill',
        architecture=mmdet_model_cfg('mmdet::retinanet/'
                                     'retinanet_r18_fpn_1x_coco.py'),
        teacher=mmdet_model_cfg('mmdet::retinanet/'
                                'retinanet_r50_fpn_1x_coco.py'),
        distiller=dict(
            type='FpnDistiller', levels=(0, 1, 2, 3, 4), student_channels=256,
            teacher_channels=256,
            connector=dict(type='ProjectorConnector', orthogonal=True),
            loss=dict(type='OrthoDistillLoss', norm='batch')))


def fake_runner(model, model_cfg=None):
    return SimpleNamespace(model=model, cfg=Config(dict(model=model_cfg)))


def checkpoint_of(model):
    return {'meta': {}, 'state_dict': model.state_dict()}


# --- which models ------------------------------------------------------------
def test_only_a_frozen_teacher_is_dropped(repo, demo_distill_cfg,
                                          build_model):
    torch.manual_seed(0)
    hook = DropFrozenTeacherHook()
    frozen = build_model(demo_distill_cfg())
    assert frozen_teacher(frozen) is frozen.teacher
    ckpt = checkpoint_of(frozen)
    hook.before_save_checkpoint(fake_runner(frozen), ckpt)
    assert not any(k.startswith('teacher.') for k in ckpt['state_dict'])
    assert ckpt['meta']['teacher_dropped']['num_keys'] == len(
        frozen.teacher.state_dict())

    trainable, bn_train = demo_distill_cfg(), demo_distill_cfg()
    trainable.teacher_trainable = True
    bn_train.teacher_norm_eval = False
    kept = {
        'trainable teacher': build_model(trainable),
        # BN statistics of the teacher move during training.
        'teacher BN in train mode': build_model(bn_train),
    }
    for name, model in kept.items():
        assert frozen_teacher(model) is None, name
        ckpt = checkpoint_of(model)
        hook.before_save_checkpoint(fake_runner(model), ckpt)
        assert ckpt['state_dict'].keys() == model.state_dict().keys(), name
        assert 'teacher_dropped' not in ckpt['meta'], name

    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        student = MODELS.build(Config.fromfile(repo.student_demo).model)
    ckpt = checkpoint_of(student)
    hook.before_save_checkpoint(fake_runner(student), ckpt)
    assert ckpt['state_dict'].keys() == student.state_dict().keys()


def test_load_puts_the_teacher_back_for_a_strict_load(
        random_teacher_ckpt, demo_distill_cfg, build_model):
    model_cfg = demo_distill_cfg(teacher_ckpt=random_teacher_ckpt)
    hook = DropFrozenTeacherHook()
    torch.manual_seed(0)
    saved = build_model(model_cfg)
    saved.load_teacher()  # as training does before its first step
    ckpt = checkpoint_of(saved)
    hook.before_save_checkpoint(fake_runner(saved), ckpt)
    torch.manual_seed(1)
    fresh = build_model(model_cfg)
    fresh.load_teacher()
    assert 'missing' in mismatch_report(fresh, ckpt['state_dict'])
    hook.after_load_checkpoint(fake_runner(fresh), ckpt)
    assert mismatch_report(fresh, ckpt['state_dict']) is None
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    for key, value in saved.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_another_teacher_is_refused_unless_allowed(
        random_teacher_ckpt, demo_distill_cfg, build_model):
    teacher_ckpt = random_teacher_ckpt
    torch.manual_seed(0)
    saved = build_model(demo_distill_cfg(teacher_ckpt=teacher_ckpt))
    ckpt = checkpoint_of(saved)
    DropFrozenTeacherHook().before_save_checkpoint(
        fake_runner(saved, demo_distill_cfg(teacher_ckpt=teacher_ckpt)), ckpt)
    torch.manual_seed(1)
    random_teacher = build_model(demo_distill_cfg(teacher_ckpt=None))
    runner = fake_runner(random_teacher, demo_distill_cfg(teacher_ckpt=None))
    with pytest.raises(CheckpointError,
                       match=rf"teacher_ckpt='{teacher_ckpt}'.*"
                       r'teacher_ckpt=None.*verify_teacher=False'):
        DropFrozenTeacherHook().after_load_checkpoint(runner, copy.copy(ckpt))
    DropFrozenTeacherHook(verify_teacher=False).after_load_checkpoint(
        runner, ckpt)
    assert mismatch_report(random_teacher, ckpt['state_dict']) is None


def test_evaluation_stops_fingerprint_checks_only(repo):
    VKD = repo.vkd_demo
    vkd, student = Config.fromfile(VKD), Config.fromfile(repo.student_demo)
    evaluation_teacher_hook(vkd)
    evaluation_teacher_hook(student)
    hooks = {h['type']: h for h in vkd.custom_hooks}
    assert hooks['DropFrozenTeacherHook']['verify_teacher'] is False
    # The guard and the hook list are the config's: nothing added or lost.
    assert [h['type'] for h in vkd.custom_hooks] == [
        h['type'] for h in Config.fromfile(VKD).custom_hooks]
    assert 'verify_teacher' not in Config.fromfile(VKD).custom_hooks[1]


# --- through MMEngine's Runner ----------------------------------------------
def distill_runner(work_dir, model, seed, max_iters=2,
                   custom_hooks=(dict(type='DropFrozenTeacherHook'), ),
                   **kwargs):
    """A Runner training the distiller of config dict ``model``."""
    data = make_det_batch(4, (96, 96), seed=0)
    items = [dict(inputs=i, data_samples=s)
             for i, s in zip(data['inputs'], data['data_samples'])]
    return Runner(
        model=model, work_dir=str(work_dir), cfg=dict(model=model),
        experiment_name=f'hook_{seed}',
        train_dataloader=dict(
            dataset=items, batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=max_iters,
                                           by_epoch=False)),
        custom_hooks=list(custom_hooks),
        randomness=dict(seed=seed), default_scope='mmdet', **kwargs)


def assert_same(a, b, where=''):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def test_runner_saves_without_teacher_and_resumes_exactly(
        random_teacher_ckpt, demo_distill_cfg, tmp_path):
    teacher_ckpt = random_teacher_ckpt
    model_cfg = demo_distill_cfg(teacher_ckpt=teacher_ckpt)
    runner = distill_runner(tmp_path / 'a', model_cfg, seed=0)
    runner.train()
    model_state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    optim_state = copy.deepcopy(runner.optim_wrapper.state_dict())
    path = str(tmp_path / 'a' / 'iter_2.pth')

    checkpoint = read_checkpoint(path)
    saved = checkpoint['state_dict']
    assert not any(k.startswith('teacher.') for k in saved)
    assert set(saved) == {k for k in model_state
                          if not k.startswith('teacher.')}
    assert any(k.startswith('distiller.connectors.') for k in saved)
    assert checkpoint['meta']['teacher_dropped']['teacher_ckpt'] == \
        teacher_ckpt
    # Exactly the teacher went: every teacher key, and nothing else.
    teacher_keys = [k for k in model_state if k.startswith('teacher.')]
    assert len(teacher_keys) == len(runner.model.teacher.state_dict()) > 0
    for key in model_state:
        assert key.startswith('teacher.') or key in saved, key
    assert checkpoint['meta']['teacher_dropped']['num_keys'] == \
        len(teacher_keys)

    # Another seed: a different student and projectors until resumed.
    resumed = distill_runner(tmp_path / 'b', model_cfg, seed=1)
    projector = next(k for k in model_state if k.startswith(
        'distiller.connectors.') and k.endswith('weight.original'))
    assert not torch.equal(resumed.model.state_dict()[projector],
                           model_state[projector])
    # Resumed as tools/train.py --resume does (resume=True, then train():
    # the run is complete, so no step runs). The teacher, not loaded when
    # the model was built, is loaded and checked before training.
    assert not resumed.model.teacher_loaded
    resumed._resume, resumed._load_from = True, path
    resumed.train()
    assert resumed.iter == 2 and resumed.model.teacher_loaded
    assert_same(dict(resumed.model.state_dict()), model_state, 'model')
    assert_same(resumed.optim_wrapper.state_dict(), optim_state, 'optimizer')


def test_ema_copies_leave_the_teacher_out_and_get_it_back(
        random_teacher_ckpt, demo_distill_cfg, tmp_path):
    """RTMDet's configs keep an EMA copy of the whole distiller
    (EMAHook, priority 49 as there): its ema_state_dict must not carry the
    teacher either."""
    ema = dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
               update_buffers=True, priority=49)
    model_cfg = demo_distill_cfg(teacher_ckpt=random_teacher_ckpt)
    runner = distill_runner(tmp_path / 'a', model_cfg, seed=0,
                            custom_hooks=[ema,
                                          dict(type='DropFrozenTeacherHook')])
    runner.train()
    ckpt = read_checkpoint(str(tmp_path / 'a' / 'iter_2.pth'))
    assert 'ema_state_dict' in ckpt
    assert not [k for k in ckpt['state_dict'] if k.startswith('teacher.')]
    assert not [k for k in ckpt['ema_state_dict'] if 'teacher.' in k]
    assert any(k.startswith('module.architecture.')
               for k in ckpt['ema_state_dict'])
    # The EMA copy holds the loaded teacher (it was copied before loading).
    teacher = torch.load(random_teacher_ckpt)['state_dict']
    ema_hook = next(h for h in runner.hooks if hasattr(h, 'ema_model'))
    for key, value in ema_hook.ema_model.module.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key

    resumed = distill_runner(tmp_path / 'b', model_cfg, seed=1,
                             custom_hooks=[
                                 ema, dict(type='DropFrozenTeacherHook')],
                             resume=True,
                             load_from=str(tmp_path / 'a' / 'iter_2.pth'))
    resumed.train()
    ema_hook = next(h for h in resumed.hooks if hasattr(h, 'ema_model'))
    for key, value in ema_hook.ema_model.module.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key
    for key, value in resumed.model.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key


# --- how much smaller --------------------------------------------------------
@pytest.mark.parametrize('name', ['demo', 'retinanet_r50_r18'])
def test_size_reduction(name, tmp_path, demo_distill_cfg, build_model,
                        mmdet_model_cfg):
    """Checkpoint size with and without the teacher, optimizer state (SGD
    momentum, the student's and projectors' size) included. ``pytest -s``
    prints the numbers."""
    torch.manual_seed(0)
    algo = build_model(demo_distill_cfg() if name == 'demo' else
                       r50_r18_distill_cfg(mmdet_model_cfg))
    params = [p for p in algo.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    for p in params:
        optimizer.state[p]['momentum_buffer'] = torch.zeros_like(p)
    checkpoint = dict(meta={}, state_dict=algo.state_dict(),
                      optimizer=optimizer.state_dict())
    full_path, slim_path = str(tmp_path / 'full.pth'), str(tmp_path / 's.pth')
    torch.save(checkpoint, full_path)
    optimizer_before = copy.deepcopy(checkpoint['optimizer'])
    DropFrozenTeacherHook().before_save_checkpoint(fake_runner(algo),
                                                   checkpoint)
    torch.save(checkpoint, slim_path)
    full, slim = os.path.getsize(full_path), os.path.getsize(slim_path)
    n_teacher = sum(p.numel() for p in algo.teacher.parameters())
    n_trained = sum(p.numel() for p in params)
    print(f'\n{name}: {full / 2**20:.1f} MiB with the teacher, '
          f'{slim / 2**20:.1f} MiB without ({slim / full:.3f} of the size; '
          f'teacher {n_teacher / 1e6:.2f}M params, student+projectors '
          f'{n_trained / 1e6:.2f}M)')
    # What went is exactly the teacher: every 'teacher.' key and nothing
    # else, each of the others byte-identical (same dtype, same values).
    reference = algo.state_dict()
    teacher_keys = {k for k in reference if k.startswith('teacher.')}
    assert teacher_keys and len(teacher_keys) == len(
        algo.teacher.state_dict())
    saved = checkpoint  # as written to slim_path
    assert set(saved['state_dict']) == set(reference) - teacher_keys
    for key, value in saved['state_dict'].items():
        assert value.dtype == reference[key].dtype, key
        assert torch.equal(value, reference[key]), key
    assert saved['meta']['teacher_dropped']['num_keys'] == len(teacher_keys)
    assert_same(saved['optimizer'], optimizer_before, 'optimizer')
    # The sizes docs/usage.md quotes ("DropFrozenTeacherHook ..."), in MiB.
    quoted = {'retinanet_r50_r18': ('293.9', '154.7', '0.53'),
              'demo': ('21.7', '9.0', '0.41')}[name]
    assert (f'{full / 2**20:.1f}', f'{slim / 2**20:.1f}',
            f'{slim / full:.2f}') == quoted
