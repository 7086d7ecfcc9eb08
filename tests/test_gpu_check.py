"""The GPU self-check's CPU path (tools/gpu_check.py, tools/gpu_check.sh,
tools/offline/): its plan and budgets, the report, going on past failures
and time-outs, the environment probe, the CUDA fallbacks, the ``cuda``
marker, and the offline fetch and install, which are run here against files
the tests make themselves (no network: pip gets --no-index, and sockets
are refused in every subprocess through tests/offline/sitecustomize.py)."""
import importlib
import importlib.metadata as metadata
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OFFLINE = osp.join(ROOT, 'tools', 'offline')
# Requirements of the listed packages that the node's torch brings.
TORCH_BRINGS = {'typing-extensions', 'filelock', 'sympy', 'mpmath',
                'networkx', 'jinja2', 'markupsafe', 'fsspec', 'torch'}
BUILD_TOOLS = {'setuptools', 'wheel', 'ninja'}


@pytest.fixture(scope='module')
def gpu_check(load_tool):
    """tools/gpu_check.py as a module (it is a script, not part of mmkd)."""
    return load_tool('gpu_check')


def no_network_env(**extra):
    env = dict(os.environ, PYTHONPATH=osp.join(ROOT, 'tests', 'offline'))
    env.update(extra)
    return env


def sh(args, env=None, timeout=120, cwd=ROOT):
    return subprocess.run(args, cwd=cwd, env=env or no_network_env(),
                          capture_output=True, text=True, timeout=timeout)


def pinned(*names):
    """{canonical name: version} of tools/offline/<name>.txt."""
    out = {}
    for name in names:
        for line in open(osp.join(OFFLINE, f'{name}.txt')):
            line = line.split('#')[0].strip()
            if line:
                pkg, version = line.split('==')
                out[canonical(pkg)] = version
    return out


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


# --- the plan ----------------------------------------------------------------
def test_the_steps_fit_ten_minutes_and_name_real_settings_configs(
        tmp_path, gpu_check):
    from mmengine.config import Config

    from mmkd_lab.benchmark import DETR_METHODS, SETTINGS
    steps = gpu_check.plan(str(tmp_path))
    assert [s.name for s in steps] == list(gpu_check.BUDGETS)
    assert sum(s.budget_s for s in steps) <= 570  # + the report: < 10 min
    assert all(s.argv for s in steps)  # tests/gpu found in the checkout
    for name, (setting, _, _) in gpu_check.BENCHMARKS.items():
        argv = next(s.argv for s in steps if s.name == name)
        assert setting in SETTINGS and argv[argv.index('--setting') + 1] \
            == setting and argv[argv.index('--device') + 1] == 'cuda'
    dino = next(s.argv for s in steps if s.name == 'bench-dino')
    methods = dino[dino.index('--methods') + 1:]
    assert methods and set(methods) <= set(DETR_METHODS)
    for name, (config, _) in gpu_check.TRAIN_CONFIGS.items():
        argv = next(s.argv for s in steps if s.name == name)
        assert '--amp' in argv and config in argv
        Config.fromfile(config)  # the config exists and loads


def test_dry_run_prints_every_step_with_its_budget(tmp_path, gpu_check):
    proc = sh([sys.executable, 'tools/gpu_check.py', '--dry-run',
               '--work-dir', str(tmp_path), '--budget', 'bench-dino=45'])
    assert proc.returncode == 0, proc.stderr
    for name in gpu_check.BUDGETS:
        assert f'[{name}, ' in proc.stdout
    assert '[bench-dino, 45 s]' in proc.stdout
    assert 'total budget 465 s' in proc.stdout
    bad = sh([sys.executable, 'tools/gpu_check.py', '--budget', 'nope=3'])
    assert bad.returncode != 0 and 'STEP=SECONDS' in bad.stderr


# --- running steps and the report --------------------------------------------
def test_steps_run_in_order_past_a_failure_and_a_time_out(tmp_path, gpu_check):
    py, Step = sys.executable, gpu_check.Step
    steps = [
        Step('environment', 'passes', [py, '-c', 'print("fine")'], 20,
             needs_cuda=False),
        Step('prepare', 'fails', [py, '-c', 'import sys; print("boom"); '
                                  'sys.exit(3)'], 20, needs_cuda=False),
        Step('gpu-tests', 'hangs', [py, '-c', 'import time; print("wait", '
                                    'flush=True); time.sleep(60)'], 1,
             needs_cuda=False),
        Step('train-vkd-amp', 'needs a GPU', [py, '-c', 'pass'], 20),
        Step('bench-dino', 'passes', [py, '-c', 'print("**t**")'], 20,
             needs_cuda=False),
    ]
    start = time.monotonic()
    results = gpu_check.run_check(steps, cuda=False,
                                  log_dir=str(tmp_path / 'logs'))
    assert time.monotonic() - start < 15  # the hanging step was ended
    assert [r.status for r in results] == [
        'passed', 'failed', 'timed out', 'skipped', 'passed']
    assert results[1].note == 'exit status 3'
    assert 'wait' in results[2].output  # output up to the time-out kept
    assert (tmp_path / 'logs' / 'prepare.log').read_text().endswith(
        '\n\nboom\n')  # the command, then its output

    text = gpu_check.format_report(None, results, 'gpu_check --x')
    assert '**2 passed, 1 failed, 1 timed out, 1 skipped**' in text
    rows = [ln for ln in text.splitlines() if ln.startswith('| ')]
    assert rows[1].startswith('| environment | passes | passed |')
    assert '| gpu-tests | hangs | timed out (ended after its 1 s) |' in text
    assert '| train-vkd-amp | needs a GPU | skipped (no CUDA device) |' in text
    # What went wrong: the failing and the timed-out steps' output, only.
    wrong = text.split('## What went wrong')[1]
    assert '### prepare: failed' in wrong and 'boom' in wrong
    assert '### gpu-tests: timed out' in wrong
    assert 'fine' not in wrong
    assert '**t**' in text.split('## Figures')[1]


def test_figures_are_read_from_the_tools_own_output(gpu_check):
    from mmkd_lab.benchmark import format_table, summarise
    times = {'student': [0.10, 0.12], 'teacher_fwd': [0.05, 0.05],
             'vkd': [0.16, 0.17]}
    table = format_table(summarise(
        times, {'student': [], 'teacher_fwd': [], 'vkd': [0.002, 0.002]},
        {'student': 2**30, 'teacher_fwd': 2**29, 'vkd': 3 * 2**30}),
        'retinanet_r50_r18, 800x1333')
    output = 'loading...\nwarning: x\n' + table + '\n'
    figures = gpu_check.figures_of('bench-retinanet', output)
    assert figures.startswith('**retinanet_r50_r18, 800x1333**')
    assert '| vkd | 165.0 | 1.031 |' in figures and '3072' in figures
    assert 'warning' not in figures

    log = ('12/01 10:00:00 - mmengine - INFO - Iter(train) [20/20]  '
           'lr: 1.0e-02  eta: 0:00:00  time: 0.0812  data_time: 0.01  '
           'memory: 1532  grad_norm: 3.1  loss: 2.5012  loss_cls: 1.1  '
           'distill.loss_fpn0: 0.2021  distill.loss_fpn1: 0.1500\n'
           '12/01 10:00:03 - mmengine - INFO - Iter(val) [2/2] '
           'coco/bbox_mAP: 0.0010  coco/bbox_mAP_50: 0.0030\n')
    figures = gpu_check.figures_of('train-vkd-amp', log)
    assert 'loss 2.5012' in figures and 'time 0.0812' in figures
    assert 'memory 1532' in figures
    assert 'distill.loss_fpn0 0.2021, distill.loss_fpn1 0.1500' in figures
    assert 'COCO bbox mAP 0.0010' in figures
    assert gpu_check.figures_of(
        'gpu-tests', '....\n=== 8 passed, 1 skipped in 20.1s ===\n') == \
        '8 passed, 1 skipped in 20.1s'


def test_report_environment_says_what_is_missing(gpu_check):
    env = dict(python='3.12.4', executable='/n/bin/python', packages=dict(
        torch=dict(version='2.11.0+cu130'), mmengine=dict(version='0.10.7'),
        mmcv=dict(version='2.1.0', ops='CPU only'),
        mmdet=dict(version='3.3.0'),
        mmrazor=dict(error="ModuleNotFoundError: No module named 'mmrazor'"),
        mmkd=dict(error='ImportError: mmrazor')),
        cuda=dict(available=True, torch_cuda='13.0', cudnn=91000,
                  devices=[dict(name='NVIDIA H200', capability='9.0',
                                memory_gib=139.8)], nccl='2.27.3'),
        nvcc='13.0')
    text = gpu_check.format_report(env, [], install='install.sh, 200 s')
    assert '| torch | 2.11.0+cu130 | CUDA 13.0, cuDNN 91000, NVIDIA H200 ' \
        '(sm 9.0, 139.8 GiB), NCCL 2.27.3 |' in text
    assert '| mmcv | 2.1.0 | ops: CPU only |' in text
    assert '| mmrazor | missing |' in text
    assert 'Install before the check: install.sh, 200 s.' in text
    gaps = text.split('**Missing:**')[1]
    assert "- mmrazor does not import (ModuleNotFoundError" in gaps
    assert '- mmcv ops compiled without CUDA' in gaps
    env['packages'].update(mmrazor=dict(version='1.0.0'),
                           mmkd=dict(version='0.1.0'))
    env['packages']['mmcv']['ops'] = 'CUDA 13.0'
    assert '**Missing:** nothing.' in gpu_check.format_report(env, [])


def test_probe_names_a_package_that_does_not_import(tmp_path, gpu_check):
    broken = tmp_path / 'mmrazor'
    broken.mkdir()
    (broken / '__init__.py').write_text('raise ImportError("broken here")\n')
    argv = gpu_check.plan(str(tmp_path))[0].argv
    proc = sh(argv, env=no_network_env(
        PYTHONPATH=f'{tmp_path}{os.pathsep}{ROOT}/tests/offline'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = json.loads(proc.stdout.strip().splitlines()[-1])
    assert env['packages']['mmrazor'] == dict(
        error='ImportError: broken here')
    assert env['packages']['torch']['version'] == torch.__version__
    assert env['packages']['mmcv']['ops'] in ('CPU only', 'CUDA ' + str(
        torch.version.cuda))
    assert any(g.startswith('mmrazor does not import')
               for g in gpu_check.missing(env))


def test_the_check_without_a_gpu_skips_the_gpu_steps(tmp_path):
    out = tmp_path / 'report.md'
    proc = sh([sys.executable, 'tools/gpu_check.py', '--work-dir',
               str(tmp_path), '--out', str(out), '--steps', 'environment',
               'gpu-tests', 'bench-rtmdet'],
              env=no_network_env(CUDA_VISIBLE_DEVICES=''), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert '**1 passed, 0 failed, 0 timed out, 2 skipped**' in text
    assert '| gpu-tests |' in text and 'skipped (no CUDA device)' in text
    assert '- no CUDA device visible to torch' in text
    assert '| mmkd | 0.1.0 |' in text


# --- the CUDA fallbacks ------------------------------------------------------
def test_cuda_fallbacks_compute_what_mmcv_and_mmdet_compute(gpu_check):
    msda = importlib.import_module('mmcv.ops.multi_scale_deform_attn')
    nms_module = importlib.import_module('mmcv.ops.nms')  # not ops.nms()
    focal = importlib.import_module('mmdet.models.losses.focal_loss')
    originals = (focal.sigmoid_focal_loss,
                 msda.MultiScaleDeformableAttnFunction, nms_module.nms)
    undo = gpu_check.install_cuda_fallbacks(force=True)
    try:
        torch.manual_seed(0)
        pred, target = torch.randn(30, 4), torch.randint(0, 5, (30,))
        weight = torch.rand(30)
        # Focal loss written out: sigmoid p, one-hot t (label 4 = background)
        p = pred.sigmoid()
        t = torch.nn.functional.one_hot(target, 5)[:, :4].float()
        pt = (1 - p) * t + p * (1 - t)
        w = (0.25 * t + 0.75 * (1 - t)) * pt.pow(2)
        ce = -(t * p.log() + (1 - t) * (1 - p).log())
        expected = (ce * w * weight[:, None]).sum() / 7.0
        got = focal.sigmoid_focal_loss(pred, target, weight, 2.0, 0.25,
                                       'mean', 7.0)
        assert got.item() == pytest.approx(expected.item(), rel=1e-5)

        boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10],
                              [20, 20, 30, 30]], dtype=torch.float)
        scores = torch.tensor([0.9, 0.8, 0.7])
        dets, keep = nms_module.nms(boxes, scores, 0.5)
        assert keep.tolist() == [0, 2]
        assert torch.equal(dets[:, :4], boxes[[0, 2]])

        shapes = torch.tensor([[4, 4], [2, 2]])
        value = torch.randn(1, 20, 2, 4)
        loc, attw = torch.rand(1, 3, 2, 2, 2, 2), torch.rand(1, 3, 2, 2, 2)
        assert torch.equal(
            msda.MultiScaleDeformableAttnFunction.apply(
                value, shapes, None, loc, attw, 64),
            msda.multi_scale_deformable_attn_pytorch(value, shapes, loc,
                                                     attw))
    finally:
        undo()
    assert (focal.sigmoid_focal_loss, msda.MultiScaleDeformableAttnFunction,
            nms_module.nms) == originals
    # Without CUDA nothing is replaced.
    if not torch.cuda.is_available():
        gpu_check.install_cuda_fallbacks()
        assert focal.sigmoid_focal_loss is originals[0]


def test_cuda_marker_skips_only_marked_tests_without_a_gpu():
    # tests/engine/test_amp.py has a test whose parameter id is 'cuda'
    # (not the marker): it must still run.
    proc = sh([sys.executable, '-m', 'pytest', '-q', '-rs', '-p',
               'no:cacheprovider', 'tests/gpu',
               'tests/engine/test_amp.py::'
               'test_amp_flag_picks_the_wrapper_of_the_device_and_keeps_'
               'the_optimizer'],
              env=no_network_env(CUDA_VISIBLE_DEVICES=''), timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert re.search(r'\b2 passed, 9 skipped\b', proc.stdout), proc.stdout
    assert 'needs a CUDA device' in proc.stdout


# --- the offline files -------------------------------------------------------
def test_the_offline_lists_hold_every_requirement_of_what_they_list():
    lists = pinned('core', 'scientific')
    for name in sorted(set(lists) - BUILD_TOOLS):
        if name == 'opencv-python-headless':
            continue  # not in .venv (opencv-python is: the same cv2)
        version = metadata.version(name)
        # The pins are the versions checked together in .venv.
        assert version.split('+')[0] == lists[name], name
        for req in metadata.requires(name) or []:
            req_name, marker = re.match(r'([\w.-]+)[^;]*;?(.*)', req).groups()
            if 'extra' in marker or (marker.strip() and not _holds(marker)):
                continue
            wanted = canonical(req_name)
            if wanted == 'opencv-python':
                wanted = 'opencv-python-headless'
            assert wanted in lists or wanted in TORCH_BRINGS, \
                f'{name} requires {req_name}: add it to tools/offline/*.txt'


def _holds(marker):
    from packaging.markers import Marker
    env = dict(python_version='3.12', python_full_version='3.12.0',
               sys_platform='linux', platform_system='Linux',
               platform_machine='x86_64', os_name='posix',
               implementation_name='cpython',
               platform_python_implementation='CPython')
    return Marker(marker).evaluate(env)


def test_fetch_dry_run_prints_the_pip_commands_for_the_node():
    proc = sh(['bash', 'tools/offline/fetch.sh', '--dry-run'])
    assert proc.returncode == 0, proc.stderr
    wheels, source = [shlex.split(ln) for ln in proc.stdout.splitlines()]
    assert wheels[:4] == ['python3', '-m', 'pip', 'download']
    for pair in (['--python-version', '3.12'], ['--abi', 'cp312'],
                 ['--abi', 'abi3'], ['--platform', 'manylinux_2_28_x86_64'],
                 ['--platform', 'manylinux2014_x86_64'],
                 ['-r', 'tools/offline/core.txt'],
                 ['-r', 'tools/offline/scientific.txt'], ['-d', 'offline']):
        assert any(wheels[i:i + 2] == pair for i in range(len(wheels))), pair
    assert '--only-binary=:all:' in wheels and '--no-deps' in wheels
    assert source[3:] == ['download', '--disable-pip-version-check',
                          '--no-deps', '--no-binary=:all:', '-d', 'offline',
                          'mmcv==2.1.0']
    core = sh(['bash', 'tools/offline/fetch.sh', '--dry-run', '--core-only',
               '--python-version', '3.11', '--arch', 'aarch64',
               '--glibc', '2.17'])
    assert 'scientific.txt' not in core.stdout and '--abi cp311' in \
        core.stdout and 'manylinux_2_17_aarch64' in core.stdout
    assert 'manylinux_2_18' not in core.stdout
    bad = sh(['bash', 'tools/offline/fetch.sh', '--python-version', '312'])
    assert bad.returncode == 2 and 'MAJOR.MINOR' in bad.stderr


def test_fetch_writes_the_install_list_with_a_stand_in_pip(tmp_path):
    # A stand-in for pip: records its arguments, "downloads" an empty file
    # per requirement.
    fake = tmp_path / 'fake_pip.py'
    fake.write_text(textwrap.dedent('''
        import os, sys
        args = sys.argv[1:]
        dest = args[args.index('-d') + 1]
        os.makedirs(dest, exist_ok=True)
        with open(os.path.join(dest, 'calls'), 'a') as f:
            f.write(' '.join(args) + '\\n')
    '''))
    dest = tmp_path / 'fetched'
    proc = sh(['bash', 'tools/offline/fetch.sh', '--dest', str(dest),
               '--pip', f'{sys.executable} {fake}', '--python-version',
               '3.12'])
    assert proc.returncode == 0, proc.stderr
    calls = (dest / 'calls').read_text().splitlines()
    assert len(calls) == 2 and calls[1].endswith('mmcv==2.1.0')
    listed = [ln for ln in (dest / 'requirements.txt').read_text().split()]
    assert {canonical(x.split('==')[0]): x.split('==')[1]
            for x in listed} == pinned('core', 'scientific')
    assert (dest / 'FETCHED').read_text().startswith('python=3.12\n')


def _tiny_wheel(folder, name, version):
    """A pure-Python wheel with one module that says where it was loaded."""
    dist = f'{name}-{version}.dist-info'
    path = folder / f'{name}-{version}-py3-none-any.whl'
    with zipfile.ZipFile(path, 'w') as whl:
        whl.writestr(f'{name}.py', 'HERE = __file__\n')
        whl.writestr(f'{dist}/METADATA', f'Metadata-Version: 2.1\nName: '
                     f'{name}\nVersion: {version}\n')
        whl.writestr(f'{dist}/WHEEL', 'Wheel-Version: 1.0\nGenerator: test\n'
                     'Root-Is-Purelib: true\nTag: py3-none-any\n')
        whl.writestr(f'{dist}/RECORD', f'{name}.py,,\n{dist}/METADATA,,\n'
                     f'{dist}/WHEEL,,\n{dist}/RECORD,,\n')
    return path


def _fake_mmcv_sdist(folder):
    """Stands in for mmcv-2.1.0.tar.gz: its setup.py records the build
    environment install.sh gives it (a differently named package, so
    nothing of .venv's mmcv is touched)."""
    import tarfile
    src = folder / 'src' / 'fake-mmcv-2.1.0'
    src.mkdir(parents=True)
    (src / 'setup.py').write_text(textwrap.dedent('''
        import json, os, shutil
        from setuptools import setup
        keys = ('CUDA_VISIBLE_DEVICES', 'FORCE_CUDA', 'MMCV_WITH_OPS',
                'MAX_JOBS', 'TORCH_CUDA_ARCH_LIST')
        record = {k: os.environ.get(k) for k in keys}
        record['ninja'] = shutil.which('ninja')
        with open(os.environ['MMKD_TEST_BUILD_RECORD'], 'w') as f:
            json.dump(record, f)
        setup(name='mmkd-fake-mmcv', version='2.1.0',
              py_modules=['mmkd_fake_mmcv'])
    '''))
    (src / 'mmkd_fake_mmcv.py').write_text('')
    with tarfile.open(folder / 'mmcv-2.1.0.tar.gz', 'w:gz') as tar:
        tar.add(src, arcname='fake-mmcv-2.1.0')


@pytest.fixture
def node_venv(tmp_path):
    """A scratch venv that sees .venv's packages (torch, the stack) as a
    node sees its own torch; its own site-packages come first."""
    venv = tmp_path / 'node'
    subprocess.run([sys._base_executable, '-m', 'venv', '--without-pip',
                    str(venv)], check=True)
    py = venv / 'bin' / 'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print('
                           'sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True).stdout.strip()
    with open(osp.join(site, 'dot_venv.pth'), 'w') as f:
        f.write(f'import site; site.addsitedir('
                f'{sysconfig.get_paths()["purelib"]!r})\n')
    return venv


@pytest.mark.slow  # builds and installs a (stand-in) sdist: ~40 s
def test_install_from_fetched_files_into_a_scratch_venv(tmp_path, node_venv):
    fetched = tmp_path / 'fetched'
    fetched.mkdir()
    _tiny_wheel(fetched, 'mmkd_probe_dep', '0.1')
    _fake_mmcv_sdist(fetched)
    (fetched / 'requirements.txt').write_text(
        'mmkd_probe_dep==0.1\nmmengine==0.10.7\n')
    (fetched / 'FETCHED').write_text(
        f'python={sys.version_info[0]}.{sys.version_info[1]}\n')
    # A "ninja" command where the install puts the venv's bin/ on PATH.
    ninja = node_venv / 'bin' / 'ninja'
    ninja.write_text('#!/bin/sh\necho 1.11\n')
    ninja.chmod(0o755)
    record = tmp_path / 'build.json'
    py = str(node_venv / 'bin' / 'python')
    env = no_network_env(MMKD_TEST_BUILD_RECORD=str(record),
                         TORCH_CUDA_ARCH_LIST='9.0', MAX_JOBS='3')
    args = ['bash', 'tools/offline/install.sh', '--from', str(fetched),
            '--venv', str(node_venv), '--python', py]
    proc = sh(args + ['--ops', 'cuda'], env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pip_lines = [ln for ln in proc.stdout.splitlines()
                 if ln.startswith('+') and ' pip install' in ln]
    assert pip_lines and all('--no-index' in ln for ln in pip_lines)
    # The fetched wheel landed in the scratch venv, not in .venv.
    here = subprocess.run([py, '-c', 'import mmkd_probe_dep as m; '
                           'print(m.HERE)'], capture_output=True, text=True)
    assert here.stdout.startswith(str(node_venv)), here.stderr
    # mmcv was "built" (.venv's mmcv has no CUDA ops) for this GPU only,
    # with ninja on PATH.
    built = json.loads(record.read_text())
    assert built['FORCE_CUDA'] == '1' and built['MMCV_WITH_OPS'] == '1'
    assert built['TORCH_CUDA_ARCH_LIST'] == '9.0' and built['MAX_JOBS'] == '3'
    assert built['ninja'] == str(ninja)
    assert 'mmkd of this checkout already imports' in proc.stdout
    # --ops cpu: .venv's mmcv (CPU ops) is kept, nothing is built.
    record.unlink()
    proc = sh(args, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'mmcv 2.1.0 with cpu ops already installed' in proc.stdout
    assert not record.exists()


def test_install_dry_run_shows_a_cpu_build_that_hides_the_gpu(tmp_path):
    fetched = tmp_path / 'fetched'
    fetched.mkdir()
    (fetched / 'requirements.txt').write_text('mmengine==0.10.7\n')
    proc = sh(['bash', 'tools/offline/install.sh', '--from', str(fetched),
               '--python', sys.executable, '--venv', str(tmp_path / 'v'),
               '--dry-run'])
    assert proc.returncode == 0, proc.stderr
    build = next(ln for ln in proc.stdout.splitlines() if 'mmcv-2.1.0' in ln)
    assert 'CUDA_VISIBLE_DEVICES=' in build and 'FORCE_CUDA=0' in build
    assert 'MMCV_WITH_OPS=1' in build and '--no-build-isolation' in build
    assert not (tmp_path / 'v').exists()  # a dry run creates nothing
    (fetched / 'FETCHED').write_text('python=3.9\n')
    wrong = sh(['bash', 'tools/offline/install.sh', '--from', str(fetched),
                '--python', sys.executable, '--dry-run'])
    assert wrong.returncode == 2
    assert 'fetch.sh --python-version' in wrong.stderr


# --- the commands the docs show ----------------------------------------------
def documented_gpu_commands():
    """The shell commands of docs/gpu.md and README's GPU section."""
    texts = [open(osp.join(ROOT, 'docs', 'gpu.md')).read()]
    readme = open(osp.join(ROOT, 'README.md')).read()
    texts.append(readme.split('## On a GPU machine')[1].split('\n## ')[0])
    found = []
    for text in texts:
        for body in re.findall(r'^```bash\n(.*?)^```', text, re.S | re.M):
            for line in body.replace('\\\n', ' ').splitlines():
                command = line.split('  #')[0].strip()
                if command and not command.startswith('#'):
                    found.append(command)
        # Commands quoted inline in the text, e.g. `bash tools/... --x`.
        prose = re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)
        found += re.findall(r'`((?:bash|python) tools/[^`]+)`', prose)
    return found


def test_every_documented_gpu_command_runs_as_a_dry_run(tmp_path):
    commands = documented_gpu_commands()
    assert 'bash tools/gpu_check.sh' in commands
    assert 'bash tools/gpu_check.sh --ops cuda' in commands  # inline
    assert any(c.startswith('bash tools/offline/fetch.sh') for c in commands)
    fetched = tmp_path / 'fetched'
    fetched.mkdir()
    (fetched / 'requirements.txt').write_text('mmengine==0.10.7\n')
    # The node: its Python has torch, there is no .venv-gpu yet.
    env = no_network_env(MMKD_OFFLINE_DIR=str(fetched),
                         MMKD_GPU_VENV=str(tmp_path / 'none'),
                         MMKD_BASE_PYTHON=sys.executable)
    for command in commands:
        args = shlex.split(command)
        if args[0] == 'python':
            args[0] = sys.executable
        elif args[0] == 'scp' or args[0] == 'rsync':
            continue  # copying the tree to the node: not ours to run
        assert args[0] in ('bash', sys.executable), command
        proc = sh(args + ['--dry-run'], env=env)
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
        assert 'FAILED' not in proc.stdout + proc.stderr, command
        if 'gpu_check' in command:
            assert '[environment, 30 s]' in proc.stdout, command
        if command == 'bash tools/gpu_check.sh':  # installs first
            assert 'install --disable-pip-version-check --no-index' in \
                proc.stdout, proc.stdout
