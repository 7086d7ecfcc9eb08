"""tools/dist_train.sh, dist_test.sh and slurm_train.sh: two processes on the
CPU over gloo, exactly as a user launches them.

The launches hide CUDA (``CUDA_VISIBLE_DEVICES=''``) on every machine: what
is tested is mmkd's CPU path (gloo, no GPU device ids), and two ranks on a
machine with one GPU would otherwise share it under nccl, which nccl refuses.
On a CUDA machine MMEngine's own nccl setup is used unchanged."""
import glob
import os
import os.path as osp
import re
import socket
import stat
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmkd.apis.train import setup_cpu_distributed
from mmkd.checkpoint import mismatch_report, read_checkpoint
from mmkd_lab.data import ensure_dataset

# One pytest-xdist worker for the module: its two-process training runs
# once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('dist')]

MAX_ITERS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def small_run_options(data_root: str, loaders=('train', 'val')) -> list:
    opts = [f'{loader}_dataloader.{key}' for loader in loaders
            for key in ('batch_size=2', 'num_workers=0',
                        'persistent_workers=False')]
    opts += [f'{loader}_dataloader.dataset.data_root={data_root}/'
             for loader in loaders]
    evaluator = 'test_evaluator' if 'test' in loaders else 'val_evaluator'
    return opts + [
        f'{evaluator}.ann_file={data_root}/annotations/instances_val.json']


def launch(repo, script: str, args: list, timeout: int = 240):
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(['bash', osp.join(repo.tools, script)] + args,
                          cwd=repo.root, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def dist_train(repo, config, work_dir, data_root, extra=()):
    # log_level=DEBUG: MMEngine then writes one log file per rank.
    return launch(repo, 'dist_train.sh', [
        config, '2', '--work-dir', work_dir, '--cfg-options',
        f'train_cfg.max_iters={MAX_ITERS}',
        f'train_cfg.val_interval={MAX_ITERS}',
        'default_hooks.logger.interval=1', 'log_level=DEBUG',
        *small_run_options(data_root), *extra])


def last_train_line(log_file: str) -> str:
    with open(log_file) as f:
        lines = [ln for ln in f
                 if f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in ln]
    assert lines, f'{log_file} has no iteration {MAX_ITERS}'
    return lines[-1]


def scalar(line: str, name: str) -> float:
    return float(re.search(rf'\b{name}: ([-\d.e+]+)', line).group(1))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return ensure_dataset(str(tmp_path_factory.mktemp('shapes')),
                          num_train=16, num_val=4)


@pytest.fixture(scope='module')
def student_run(data_root, tmp_path_factory, repo):
    work_dir = str(tmp_path_factory.mktemp('dist_student'))
    dist_train(repo, repo.student_demo, work_dir, data_root)
    return work_dir


def test_two_process_training_on_cpu(student_run, repo):
    work_dir = student_run
    ckpt_path = osp.join(work_dir, f'iter_{MAX_ITERS}.pth')
    assert osp.isfile(ckpt_path)
    checkpoint = read_checkpoint(ckpt_path)
    assert checkpoint['meta']['iter'] == MAX_ITERS
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(Config.fromfile(repo.student_demo).model)
    assert mismatch_report(model, checkpoint['state_dict']) is None

    logs = sorted(glob.glob(osp.join(work_dir, '*', '*_rank*.log')))
    assert [re.search(r'rank(\d)\.log$', f).group(1) for f in logs] == \
        ['0', '1'], logs
    with open(logs[0]) as f:
        env = f.read()
    assert 'Distributed training: True' in env
    assert 'GPU number: 2' in env  # MMEngine's name for the world size
    assert "'backend': 'gloo'" in env
    # Both ranks trained: each on its own images (different losses), with
    # DDP's averaged gradients (the same gradient norm).
    line0, line1 = (last_train_line(f) for f in logs)
    assert scalar(line0, 'grad_norm') == scalar(line1, 'grad_norm')
    assert scalar(line0, 'loss') != scalar(line1, 'loss')


def test_two_process_testing_on_cpu(student_run, data_root, tmp_path, repo):
    proc = launch(repo, 'dist_test.sh', [
        repo.student_demo, osp.join(student_run, f'iter_{MAX_ITERS}.pth'), '2',
        '--work-dir', str(tmp_path), '--cfg-options',
        *small_run_options(data_root, loaders=('test', ))])
    # 4 iterations give no detection above the score threshold, so no mAP:
    # the checkpoint loaded and the test loop ran to its end.
    assert 'Load checkpoint from' in proc.stdout
    assert re.search(r'Iter\(test\) \[1/1\]', proc.stdout)


def test_distiller_checkpoint_without_teacher_under_ddp(data_root, tmp_path,
                                                         repo):
    VKD = repo.vkd_demo
    dist_train(repo, VKD, str(tmp_path), data_root,
               extra=['model.teacher_ckpt=None'])
    checkpoint = read_checkpoint(str(tmp_path / f'iter_{MAX_ITERS}.pth'))
    state = checkpoint['state_dict']
    assert not any(k.startswith('teacher.') for k in state)
    assert any(k.startswith('architecture.') for k in state)
    assert any(k.startswith('distiller.connectors.') for k in state)
    assert checkpoint['meta']['teacher_dropped']['num_keys'] > 0
    # A Runner's checkpoint (message hub included) exports in a fresh process.
    out = str(tmp_path / 'student.pth')
    subprocess.run(
        [sys.executable, osp.join(repo.tools, 'export_student.py'), VKD,
         str(tmp_path / f'iter_{MAX_ITERS}.pth'), out],
        cwd=repo.root, check=True, capture_output=True, timeout=120)
    exported = read_checkpoint(out)['state_dict']
    assert exported.keys() == {k[len('architecture.'):] for k in state
                               if k.startswith('architecture.')}


def test_teacher_check_stops_both_ranks_together(data_root, tmp_path, repo,
                                                 random_teacher_ckpt):
    """Under torchrun the teacher check pools the ranks' batches (a
    collective call): a random teacher stops both ranks before the first
    step, with mmkd's message, and neither waits for the other."""
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(
        ['bash', osp.join(repo.tools, 'dist_train.sh'), repo.vkd_demo, '2',
         '--work-dir', str(tmp_path), '--cfg-options',
         f'model.teacher_ckpt={random_teacher_ckpt}',
         'teacher_check.batches=1',
         *small_run_options(data_root)],
        cwd=repo.root, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    # Each rank: 1 batch of 2 of the 4 validation images, pooled.
    assert out.count('mmkd error: teacher check: the teacher') == 2, \
        out[-3000:]
    assert 'validation batches of each of 2 ranks (about 4 images)' in out
    assert not glob.glob(str(tmp_path / '*.pth'))


def test_cpu_distributed_needs_torchrun(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(launcher='slurm'))
    with pytest.raises(RuntimeError, match='tools/dist_train.sh'):
        setup_cpu_distributed(cfg)
    setup_cpu_distributed(Config(dict(launcher='none')))  # nothing to do


def test_slurm_script_builds_the_srun_command(tmp_path, repo):
    ROOT, VKD = repo.root, repo.vkd_demo
    fake = tmp_path / 'srun'
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > '
                    f'{tmp_path}/argv\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}', GPUS='4',
               GPUS_PER_NODE='2', CPUS_PER_TASK='3',
               SRUN_ARGS='--quotatype=auto --time=1:00:00')
    subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'slurm_train.sh'), 'gpu', 'kd',
         VKD, 'work_dirs/kd', '--amp', '--cfg-options', 'a=1'],
        cwd=ROOT, env=env, check=True, capture_output=True)
    argv = (tmp_path / 'argv').read_text().splitlines()
    python = osp.join(ROOT, '.venv', 'bin', 'python')
    assert argv == [
        '-p', 'gpu', '--job-name=kd', '--gres=gpu:2', '--ntasks=4',
        '--ntasks-per-node=2', '--cpus-per-task=3', '--kill-on-bad-exit=1',
        '--quotatype=auto', '--time=1:00:00',
        python if osp.exists(python) else 'python', '-u',
        osp.join(ROOT, 'tools', 'train.py'), VKD, '--work-dir=work_dirs/kd',
        '--launcher=slurm', '--amp', '--cfg-options', 'a=1']


def test_two_processes_follow_the_one_process_trajectory(tmp_path, repo,
                                                          train_tool):
    """2 gloo processes x 2 samples == 1 process x 4 samples, step by step
    (weights after every iteration), for a loss that is a batch mean."""
    from mmkd.checkpoint import read_checkpoint
    cfg = tmp_path / 'toy.py'
    cfg.write_text(
        "custom_imports = dict(imports=['toymodel'], "
        'allow_failed_imports=False)\n'
        "default_scope = 'mmengine'\n"
        "model = dict(type='ToyRegressor')\n"
        'train_dataloader = dict(batch_size=4, num_workers=0, '
        "sampler=dict(type='DefaultSampler', shuffle=True), "
        "collate_fn=dict(type='pseudo_collate'), "
        "dataset=dict(type='ToyRegression', n=32))\n"
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=4)\n"
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, "
        'momentum=0.9))\n'
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook', "
        'interval=1, by_epoch=False))\n'
        "randomness = dict(seed=3)\n"
        "env_cfg = dict(dist_cfg=dict(backend='gloo'))\n")
    # toymodel.py lives in tests/.
    env = dict(os.environ, PYTHONPATH=repo.tests,
               OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    one = train_tool(cfg, tmp_path / 'one', env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        ['bash', osp.join(repo.tools, 'dist_train.sh'), str(cfg), '2',
         '--work-dir', str(tmp_path / 'two'), '--cfg-options',
         'train_dataloader.batch_size=2'], cwd=repo.root,
        env=dict(env, PORT=str(free_port())),
        capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    for it in range(1, 5):
        a = read_checkpoint(str(tmp_path / 'one' / f'iter_{it}.pth'))
        b = read_checkpoint(str(tmp_path / 'two' / f'iter_{it}.pth'))
        for k, v in a['state_dict'].items():
            torch.testing.assert_close(b['state_dict'][k], v, rtol=1e-5,
                                        atol=1e-6, msg=f'iter {it}: {k}')
