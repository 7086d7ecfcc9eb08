"""mmkd from a built wheel (not the editable checkout), used the way an
OpenMMLab user uses an extension: ``mmkd::`` configs, MMDetection's own
``tools/train.py`` on an mmkd config, the ``mmkd`` command and the demo, all
run from a folder outside the checkout.

The wheel is built from this checkout and installed into a fresh virtual
environment that sees the installed stack (torch, mmcv, mmdet, mmrazor) through
a ``.pth`` line, but not the editable mmkd: every check below asserts that the
mmkd it ran is the wheel's.
"""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig

import mmdet
import pytest
import torch

# One pytest-xdist worker for the module: its wheel and venv are built
# once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('wheel')]

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MMDET_TRAIN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                       'train.py')


def run(cmd, cwd, timeout=900, env=None):
    full_env = dict(os.environ, PYTHONHASHSEED='0', **(env or {}))
    full_env.pop('PYTHONPATH', None)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture(scope='module')
def wheel_env(tmp_path_factory):
    """(python of a venv with mmkd installed from a wheel, its bin folder,
    a working folder outside the checkout)."""
    base = tmp_path_factory.mktemp('wheel')
    # Built from a copy, so that the build leaves nothing in the checkout.
    source = base / 'source'
    top_level = {'.venv', '.git', 'work_dirs', 'data', 'build', 'dist'}
    shutil.copytree(ROOT, source, symlinks=True, ignore=lambda folder, names: [
        n for n in names if (folder == ROOT and n in top_level)
        or n in ('__pycache__', '.pytest_cache') or n.endswith('.egg-info')])
    build = run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                 '--no-build-isolation', '--no-index',
                 '-w', str(base / 'dist'), str(source)], cwd=str(base))
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    wheels = glob.glob(str(base / 'dist' / 'mmkd-*.whl'))
    assert len(wheels) == 1, wheels

    venv = base / 'venv'
    made = run([sys.executable, '-m', 'venv', '--without-pip', str(venv)],
               cwd=str(base))
    assert made.returncode == 0, made.stderr
    python = str(venv / 'bin' / 'python')
    site = run([python, '-c', 'import sysconfig; '
                'print(sysconfig.get_paths()["purelib"])'], cwd=str(base))
    # The installed stack, appended after the venv's own site-packages, so
    # the wheel's mmkd comes first; the editable mmkd's own .pth/finder in
    # the stack's site-packages is not processed (a path line only).
    with open(osp.join(site.stdout.strip(), 'installed_stack.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    install = run([sys.executable, '-m', 'pip', '--python', python,
                   'install', '--no-deps', '--no-index', wheels[0]],
                  cwd=str(base))
    assert install.returncode == 0, install.stdout + install.stderr
    work = base / 'outside'
    work.mkdir()
    return python, str(venv / 'bin'), str(work)


def test_wheel_ships_configs_and_resolves_mmkd_scope(wheel_env):
    python, _, work = wheel_env
    code = (
        'import os.path as osp, mmkd\n'
        'from mmengine.config import Config\n'
        "cfg = Config.fromfile('mmkd::vkd/vkd_retinanet_r50_r18_coco.py')\n"
        'print(osp.realpath(mmkd.__file__))\n'
        'print(cfg.model.type, cfg.model.distiller.connector.type)\n'
        "print(osp.realpath(cfg.filename))\n")
    proc = run([python, '-c', code], cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mmkd_file, model, cfg_file = proc.stdout.strip().splitlines()[-3:]
    assert not mmkd_file.startswith(ROOT), 'ran the checkout, not the wheel'
    assert model == 'StrictFpnTeacherDistill ProjectorConnector'
    # The config is a copy inside the installed package, not a symlink back.
    assert cfg_file.startswith(osp.dirname(mmkd_file))
    assert cfg_file.endswith('.mim/configs/vkd/vkd_retinanet_r50_r18_coco.py')


def test_mmkd_command_lists_and_runs_tools(wheel_env):
    _, bin_dir, work = wheel_env
    proc = run([osp.join(bin_dir, 'mmkd'), 'list'], cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for tool in ('train', 'test', 'demo', 'benchmark', 'export_student'):
        assert tool in proc.stdout
    bad = run([osp.join(bin_dir, 'mmkd'), 'trian'], cwd=work)
    assert bad.returncode != 0 and "unknown tool 'trian'" in bad.stderr


@pytest.fixture(scope='module')
def tiny_data(wheel_env):
    python, _, work = wheel_env
    root = osp.join(work, 'data', 'tiny')
    proc = run([python, '-c', 'from mmkd_lab.data import ensure_dataset; '
                f'ensure_dataset({root!r}, num_train=8, num_val=4, seed=5)'],
               cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def _data_options(root):
    return [f'train_dataloader.dataset.data_root={root}/',
            f'val_dataloader.dataset.data_root={root}/',
            f'test_dataloader.dataset.data_root={root}/',
            f'val_evaluator.ann_file={root}/annotations/instances_val.json',
            f'test_evaluator.ann_file={root}/annotations/instances_val.json']


def _random_teacher(python, work):
    path = osp.join(work, 'teacher.pth')
    if osp.isfile(path):
        return path
    code = (
        'import torch, mmkd\n'
        'from mmengine.config import Config\n'
        'from mmengine.registry import MODELS, DefaultScope\n'
        "cfg = Config.fromfile('mmkd::demo/retinanet_teacher_shapes.py')\n"
        "with DefaultScope.overwrite_default_scope('mmdet'):\n"
        '    model = MODELS.build(cfg.model)\n'
        f"torch.save({{'state_dict': model.state_dict()}}, {path!r})\n")
    proc = run([python, '-c', code], cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return path


def _installed_config(python, work, name):
    proc = run([python, '-c', 'import os.path as osp, mmkd; print(osp.join('
                "osp.dirname(mmkd.__file__), '.mim', 'configs', "
                f'{name!r}))'], cwd=work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_mmdet_train_tool_runs_an_mmkd_config(wheel_env, tiny_data):
    """MMDetection's installed tools/train.py, an mmkd demo config from the
    installed package, no mmkd tool involved: the config itself imports
    mmkd, leaves the teacher out of the checkpoint and guards the loss."""
    python, _, work = wheel_env
    teacher = _random_teacher(python, work)
    # A user's own config that inherits an mmkd config by its mmkd:: name,
    # read by a tool that never imported mmkd before parsing it.
    config = osp.join(work, 'my_vkd.py')
    with open(config, 'w') as f:
        f.write("_base_ = ['mmkd::demo/vkd_retinanet_shapes.py']\n")
    work_dir = osp.join(work, 'mmdet_tool')
    common = [python, MMDET_TRAIN, config, '--cfg-options'] + _data_options(
        tiny_data) + [f'model.teacher_ckpt={teacher}',
                      'train_dataloader.batch_size=4',
                      'train_dataloader.num_workers=0',
                      'train_dataloader.persistent_workers=False',
                      'val_dataloader.num_workers=0',
                      'val_dataloader.persistent_workers=False',
                      'default_hooks.logger.interval=1',
                      'model.architecture.test_cfg.score_thr=0.0']
    proc = run(common + ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                         'default_hooks.checkpoint.interval=2',
                         '--work-dir', work_dir], cwd=work)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'FiniteLossHook' in log and 'DropFrozenTeacherHook' in log
    assert 'coco/bbox_mAP' in log

    ckpt = torch.load(osp.join(work_dir, 'iter_2.pth'), map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    teacher_state = torch.load(teacher, map_location='cpu',
                               weights_only=True)['state_dict']
    assert not any(k.startswith('teacher.') for k in state)
    assert ckpt['meta']['teacher_dropped']['num_keys'] == len(teacher_state)
    assert any(k.startswith('architecture.') for k in state)

    # The loss guard is the config's: a NaN distillation weight stops the run
    # at its first iteration, naming the term, with no checkpoint written.
    nan_dir = osp.join(work, 'mmdet_tool_nan')
    installed = _installed_config(python, work, 'demo/vkd_retinanet_shapes.py')
    proc = run([python, MMDET_TRAIN, installed] + common[3:] + [
                         'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                         'default_hooks.checkpoint.interval=1',
                         'model.distiller.loss.loss_weight=nan',
                         '--work-dir', nan_dir], cwd=work)
    assert proc.returncode != 0
    assert 'NonFiniteLossError' in proc.stderr, proc.stderr[-3000:]
    assert 'distill.loss_fpn' in proc.stderr
    assert not glob.glob(osp.join(nan_dir, '*.pth'))


def test_demo_runs_outside_the_checkout(wheel_env):
    """``mmkd demo`` from the wheel, in a folder with nothing of mmkd's:
    data, teacher, runs, table and figures appear there (2 iterations per
    run; the schedule is the demo's otherwise)."""
    _, bin_dir, work = wheel_env
    demo_dir = osp.join(work, 'demo_run')
    os.makedirs(demo_dir)
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2',
             'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0',
             'val_dataloader.persistent_workers=False',
             # A teacher of 2 iterations: its check runs, with no bar.
             'teacher_check.min_map=0']
    proc = run([osp.join(bin_dir, 'mmkd'), 'demo', '--cfg-options'] + short,
               cwd=demo_dir, timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    for path in ('data/mmkd_shapes/annotations/instances_train.json',
                 'work_dirs/demo/teacher/teacher.pth',
                 'work_dirs/demo/results.md', 'work_dirs/demo/vkd/iter_2.pth'):
        assert osp.isfile(osp.join(demo_dir, path)), path
    assert glob.glob(osp.join(demo_dir, 'work_dirs', 'demo', '*.png'))
    assert '| vkd |' in proc.stdout
