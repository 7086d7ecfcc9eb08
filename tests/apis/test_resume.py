"""A run killed mid-way resumes with --resume and ends exactly where an
uninterrupted run ends; a checkpoint write that dies leaves the previous
checkpoint intact."""
import os
import os.path as osp

import pytest
import torch

from mmkd.checkpoint import read_checkpoint
from mmkd_lab.data import ensure_dataset
from mmkd_lab.demo import data_options


@pytest.fixture(scope='module')
def setup(tmp_path_factory, random_teacher_ckpt):
    tmp = tmp_path_factory.mktemp('resume')
    data = ensure_dataset(str(tmp / 'data'), num_train=24, num_val=4, seed=5)
    return tmp, data, random_teacher_ckpt


def _config(tmp, vkd, kill_at=None):
    path = str(tmp / f'vkd_kill{kill_at}.py')
    # A user's config on top of an mmkd config: it extends the base's
    # custom_imports and custom_hooks (mmkd, the loss guard, the teacher
    # hook) instead of replacing them.
    lines = [f'_base_ = [{vkd!r}]',
             "custom_imports = dict(imports=['mmkd', 'killhook'], "
             'allow_failed_imports=False)']
    if kill_at:
        lines.append("custom_hooks = _base_.custom_hooks + [dict("
                     f"type='KillAtIterHook', at={kill_at})]")
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def _train(train_tool, repo, config, work_dir, data, teacher, resume=False,
           seed=None):
    options = data_options(data) + [
        f'model.teacher_ckpt={teacher}', 'train_cfg.max_iters=6',
        'train_cfg.val_interval=100', 'train_dataloader.batch_size=4',
        'default_hooks.checkpoint.interval=3',
        'param_scheduler.0.end=4', 'param_scheduler.1.begin=4',
        'param_scheduler.1.end=6', 'param_scheduler.1.T_max=2']
    if seed is not None:
        options.append(f'randomness.seed={seed}')
    # killhook.py lives in tests/.
    env = dict(os.environ, PYTHONPATH=repo.tests)
    # The teacher is random by design: its check would stop the run.
    args = ['--skip-teacher-check'] + (['--resume'] if resume else [])
    return train_tool(config, work_dir, cfg_options=options, args=args,
                      env=env, timeout=900)


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(setup, repo, train_tool):
    """The demo config leaves ``randomness.seed`` unset, as MMDetection's
    configs do: the run draws a seed, and ``--resume`` must continue with it
    (the images in the same order), not with a new one."""
    tmp, data, teacher = setup
    work = str(tmp / 'killed')
    run = (train_tool, repo)
    killed = _train(*run, _config(tmp, repo.vkd_demo, kill_at=5), work, data,
                    teacher)
    assert killed.returncode == 3, killed.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'iter_3.pth'))
    assert not osp.exists(osp.join(work, 'iter_6.pth'))
    seed = read_checkpoint(osp.join(work, 'iter_3.pth'))['meta']['seed']

    # The same run, uninterrupted, with the seed it drew.
    full = _train(*run, _config(tmp, repo.vkd_demo), str(tmp / 'full'), data,
                  teacher, seed=seed)
    assert full.returncode == 0, full.stderr[-3000:]

    resumed = _train(*run, _config(tmp, repo.vkd_demo), work, data, teacher,
                     resume=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed' in (resumed.stdout + resumed.stderr).lower()

    a = read_checkpoint(str(tmp / 'full' / 'iter_6.pth'))
    b = read_checkpoint(osp.join(work, 'iter_6.pth'))
    assert a['meta']['iter'] == b['meta']['iter'] == 6
    sa, sb = a['state_dict'], b['state_dict']
    assert set(sa) == set(sb)
    assert any('connectors' in k for k in sa)  # projectors are saved
    # The base's hooks stayed on: the teacher is not in the checkpoints.
    assert not any(k.startswith('teacher.') for k in sa)
    for k in sa:
        torch.testing.assert_close(sb[k], sa[k], rtol=1e-5, atol=1e-6,
                                   msg=k)
    for group_a, group_b in zip(a['optimizer']['state'].values(),
                                b['optimizer']['state'].values()):
        torch.testing.assert_close(group_b['momentum_buffer'],
                                   group_a['momentum_buffer'], rtol=1e-5,
                                   atol=1e-6)
    assert a['param_schedulers'] == b['param_schedulers']


def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    """MMEngine's save_checkpoint through mmkd's backend, as
    AtomicCheckpointHook selects it for a run's checkpoints."""
    from functools import partial

    from mmengine.runner.checkpoint import save_checkpoint
    save_checkpoint = partial(save_checkpoint,
                              backend_args=dict(backend='mmkd_atomic_local'))
    path = str(tmp_path / 'iter_3.pth')
    save_checkpoint({'state_dict': {'w': torch.ones(3)}}, path)
    good = open(path, 'rb').read()

    def dying_fsync(fd):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'fsync', dying_fsync)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert open(path, 'rb').read() == good
    assert os.listdir(tmp_path) == ['iter_3.pth']  # no partial file left
    assert torch.equal(read_checkpoint(path)['state_dict']['w'],
                       torch.ones(3))


def test_last_checkpoint_pointer_is_replaced_atomically(tmp_path,
                                                       monkeypatch):
    """MMEngine's CheckpointHook writes ``last_checkpoint`` with the ``open``
    of its module: a write that dies leaves the previous pointer whole."""
    from mmengine.hooks import checkpoint_hook
    pointer = tmp_path / 'last_checkpoint'
    with checkpoint_hook.open(str(pointer), 'w') as f:
        f.write(str(tmp_path / 'iter_3.pth'))

    def dying_fsync(fd):
        raise KeyboardInterrupt('killed while writing')

    monkeypatch.setattr(os, 'fsync', dying_fsync)
    with pytest.raises(KeyboardInterrupt):
        with checkpoint_hook.open(str(pointer), 'w') as f:
            f.write(str(tmp_path / 'iter_6.pth'))
    monkeypatch.undo()
    assert pointer.read_text() == str(tmp_path / 'iter_3.pth')
    assert os.listdir(tmp_path) == ['last_checkpoint']  # no partial file
    # Every other file that module opens is the builtin open's.
    with checkpoint_hook.open(str(tmp_path / 'other.txt'), 'w') as f:
        assert f.fileno() >= 0
