"""The GPU self-check (``mmkd gpu_check``, docs/gpu.md): does mmkd work on
this CUDA machine, and what does distillation cost here?

    python tools/gpu_check.py            # work_dirs/gpu_check/report.md
    python tools/gpu_check.py --dry-run  # the steps, budgets, commands
    python tools/gpu_check.py --steps environment gpu-tests

One command runs a fixed list of steps, each in its own process with its own
time budget (the budgets add up to under 10 minutes); a step that fails or
runs out of time is recorded and the next one runs. The result is one
markdown report: the environment (and what is missing), every step's status
and time, the figures (training loss, memory, step time against the floor
per method) and the tail of the output of every step that did not pass.

This script imports only the standard library at the top: the check must be
able to say "mmdet is missing" on a machine where it is.

Entry points of its own, which the steps run as ``python
tools/gpu_check.py ...`` (this file, wherever it lies: the checkout's tools/
or an installed mmkd's .mim/tools): ``probe`` (the environment as JSON),
``prepare DIR`` (built-in data and random-weight demo teachers) and ``run
SCRIPT ARGS`` (a tool under :func:`install_cuda_fallbacks`).
"""
import argparse
import dataclasses
import datetime
import json
import os
import os.path as osp
import platform
import re
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

# Each step's budget (seconds). Their sum is the check's worst case: under
# 10 minutes. docs/gpu.md gives the estimate of each and its basis.
BUDGETS = {
    'environment': 30,
    'prepare': 45,
    'gpu-tests': 100,
    'train-vkd-amp': 60,
    'train-dino-amp': 75,
    'bench-retinanet': 60,
    'bench-rtmdet': 50,
    # Five models with a Swin-L teacher to build and initialise on the CPU:
    # about 30 s each on 2 loaded cores here.
    'bench-dino': 150,
}
TRAIN_ITERS = 20
# The built-in data the training steps use (images of 128x128).
DATA_SPLITS = dict(num_train=64, num_val=16)
# Benchmark settings at COCO size: mmdet's training scale (1333x800) for
# RetinaNet and DINO, RTMDet's 640x640; per-GPU batch of the COCO configs
# (2) and 8 for RTMDet (its COCO config takes 32 per GPU).
BENCHMARKS = {
    'bench-retinanet': ('retinanet_r50_r18', (800, 1333), 2),
    'bench-rtmdet': ('rtmdet_l_s', (640, 640), 8),
    'bench-dino': ('dino_swin-l_r50', (800, 1333), 2),
}
# Methods timed (None: the tool's default, every method of the setting).
# DINO: the floor, its tokens-only floor, VkD tokens + queries and tokens.
BENCH_METHODS = {
    'bench-dino': ['student', 'teacher_fwd', 'teacher_fwd_tokens', 'vkd',
                   'vkd_tokens'],
}
# Demo teachers for the training steps: (config, checkpoint name).
DEMO_TEACHERS = {
    'retinanet': 'mmkd::demo/retinanet_teacher_shapes.py',
    'dino': 'mmkd::demo/dino/dino_teacher_shapes.py',
}
TRAIN_CONFIGS = {
    'train-vkd-amp': ('mmkd::demo/vkd_retinanet_shapes.py', 'retinanet'),
    'train-dino-amp': ('mmkd::demo/dino/vkd_dino_shapes.py', 'dino'),
}


@dataclasses.dataclass
class Step:
    """One step: ``argv`` run in a subprocess for at most ``budget_s``."""
    name: str
    what: str
    argv: List[str]
    budget_s: float
    needs_cuda: bool = True
    cwd: Optional[str] = None


@dataclasses.dataclass
class Result:
    name: str
    what: str
    status: str  # passed, failed, timed out, skipped
    seconds: float
    budget_s: float
    output: str = ''
    note: str = ''
    figures: str = ''


# --- the steps ---------------------------------------------------------------
def repo_root() -> Optional[str]:
    """The checkout this script lives in (None for an installed wheel,
    which has no tests/). ``mmkd gpu_check`` runs it through the checkout's
    mmkd/.mim/tools symlink: the real path is the checkout's tools/."""
    root = osp.dirname(osp.dirname(osp.realpath(__file__)))
    return root if osp.isdir(osp.join(root, 'tests', 'gpu')) else None


def tool_path(name: str) -> str:
    """A tool beside this script (the checkout's tools/ or .mim/tools)."""
    return osp.join(osp.dirname(osp.abspath(__file__)), f'{name}.py')


def plan(work_dir: str, python: str = sys.executable,
         budgets: Optional[Dict[str, float]] = None) -> List[Step]:
    """Every step of the check, in order."""
    budgets = dict(BUDGETS, **(budgets or {}))
    # This script by its path: its top imports only the standard library,
    # so the probe can report a stack that does not import.
    me = [python, osp.abspath(__file__)]
    data = osp.join(work_dir, 'data')
    steps = [
        Step('environment', 'torch, CUDA, mmcv ops, mmengine, mmdet, '
             'mmrazor, mmkd: versions and what is missing', me + ['probe'],
             budgets['environment'], needs_cuda=False),
        Step('prepare', f'built-in data ({DATA_SPLITS["num_train"]} train / '
             f'{DATA_SPLITS["num_val"]} val images) and random-weight demo '
             'teachers', me + ['prepare', work_dir], budgets['prepare'],
             needs_cuda=False),
    ]
    root = repo_root()
    steps.append(Step(
        'gpu-tests', 'pytest -m cuda tests/gpu: models on the GPU, fp16 AMP '
        'through the distillation losses, teacher checkpoint, nccl (2 GPUs)',
        [python, '-m', 'pytest', '-q', '-m', 'cuda', '-p',
         'no:cacheprovider', osp.join('tests', 'gpu')] if root else [],
        budgets['gpu-tests'], cwd=root))
    for name, (config, teacher) in TRAIN_CONFIGS.items():
        work = osp.join(work_dir, name)
        options = [
            f'model.teacher_ckpt={osp.join(work_dir, teacher + ".pth")}',
            f'train_cfg.max_iters={TRAIN_ITERS}',
            f'train_cfg.val_interval={TRAIN_ITERS}',
            f'default_hooks.checkpoint.interval={TRAIN_ITERS}',
            'default_hooks.logger.interval=5',
            'train_dataloader.num_workers=2',
            'val_dataloader.num_workers=2',
            'test_dataloader.num_workers=2',
        ] + [f'{split}_dataloader.dataset.data_root={data}/'
             for split in ('train', 'val', 'test')] + [
            f'{split}_evaluator.ann_file={data}/annotations/instances_val.json'
            for split in ('val', 'test')]
        steps.append(Step(
            name, f'tools/train.py {config.split("::")[1]} --amp: '
            f'{TRAIN_ITERS} iterations and COCO evaluation on CUDA',
            me + ['run', tool_path('train'), config, '--amp', '--work-dir',
                  work, '--cfg-options'] + options, budgets[name]))
    for name, (setting, (h, w), batch) in BENCHMARKS.items():
        steps.append(Step(
            name, f'tools/benchmark.py --setting {setting} {h}x{w} batch '
            f'{batch}: step time against the floor, peak memory',
            me + ['run', tool_path('benchmark'), '--setting', setting,
                  '--size', str(h), str(w), '--batch', str(batch),
                  '--warmup', '2', '--repeats', '5', '--device', 'cuda']
            + (['--methods'] + BENCH_METHODS[name]
               if name in BENCH_METHODS else []),
            budgets[name]))
    return steps


def run_step(step: Step, cuda: bool, log_dir: Optional[str] = None,
             env: Optional[dict] = None) -> Result:
    """Run one step in its own process group; past its budget the group is
    ended (SIGTERM, then SIGKILL) and the step is 'timed out'."""
    if step.needs_cuda and not cuda:
        return Result(step.name, step.what, 'skipped', 0.0, step.budget_s,
                      note='no CUDA device')
    if not step.argv:
        return Result(step.name, step.what, 'skipped', 0.0, step.budget_s,
                      note='no tests/gpu: run the check from a checkout')
    env = dict(os.environ if env is None else env, PYTHONUNBUFFERED='1')
    start = time.monotonic()
    proc = subprocess.Popen(step.argv, cwd=step.cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors='replace',
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=step.budget_s)
        status = 'passed' if proc.returncode == 0 else 'failed'
        note = '' if proc.returncode == 0 else f'exit status {proc.returncode}'
    except subprocess.TimeoutExpired:
        _end_group(proc)
        output, _ = proc.communicate()
        status, note = 'timed out', f'ended after its {step.budget_s:.0f} s'
    seconds = time.monotonic() - start
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
        with open(osp.join(log_dir, f'{step.name}.log'), 'w') as f:
            f.write(' '.join(step.argv) + '\n\n' + (output or ''))
    return Result(step.name, step.what, status, seconds, step.budget_s,
                  output or '', note, figures_of(step.name, output or ''))


def _end_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_check(steps: Sequence[Step], cuda: bool,
              log_dir: Optional[str] = None,
              on_result: Optional[Callable[[Result], None]] = None
              ) -> List[Result]:
    """Every step in order, whatever the previous ones gave."""
    results = []
    for step in steps:
        result = run_step(step, cuda, log_dir)
        results.append(result)
        if on_result:
            on_result(result)
    return results


# --- figures out of a step's output ------------------------------------------
def figures_of(name: str, output: str) -> str:
    """The numbers a step's output carries, as markdown ('' if none)."""
    if name.startswith('bench-'):
        match = re.search(r'^\*\*.*?(?=\n\S*\n?\Z|\Z)', output, re.S | re.M)
        return match.group(0).strip() if match else ''
    if name.startswith('train-'):
        lines = [ln for ln in output.splitlines() if 'Iter(train)' in ln]
        found = []
        if lines:
            last = lines[-1]
            for key in ('loss', 'time', 'memory'):
                m = re.search(rf'\b{key}: ([-\d.e+]+)', last)
                if m:
                    found.append(f'{key} {m.group(1)}')
            distill = re.findall(r'(distill\.\w+): ([-\d.e+]+)', last)
            if distill:
                found.append(', '.join(f'{k} {v}' for k, v in distill))
        m = re.search(r'coco/bbox_mAP: ([-\d.e+]+)', output)
        if m:
            found.append(f'COCO bbox mAP {m.group(1)} (random teacher, '
                         f'{TRAIN_ITERS} iterations: a smoke test)')
        unit = ('last logged iteration: ' if lines else '')
        return unit + '; '.join(found) if found else ''
    if name == 'gpu-tests':
        summary = [ln for ln in output.splitlines()
                   if re.search(r'\d+ (passed|failed|skipped|error)', ln)]
        return summary[-1].strip('= ') if summary else ''
    return ''


# --- the environment ---------------------------------------------------------
def probe() -> dict:
    """What this Python has: each package's version or its import error,
    CUDA devices, and whether mmcv's ops were compiled with CUDA."""
    found: dict = dict(python=platform.python_version(),
                       executable=sys.executable, packages={})
    packages = found['packages']
    for name in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmrazor', 'mmkd'):
        try:
            module = __import__(name)
            packages[name] = dict(version=getattr(module, '__version__', '?'))
        except Exception as exc:  # any failure is a finding, not a crash
            packages[name] = dict(error=f'{type(exc).__name__}: {exc}'[:300])
    if 'version' in packages['torch']:
        import torch
        cuda = dict(available=torch.cuda.is_available(),
                    torch_cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version()
                    if torch.backends.cudnn.is_available() else None,
                    devices=[])
        if cuda['available']:
            for i in range(torch.cuda.device_count()):
                prop = torch.cuda.get_device_properties(i)
                cuda['devices'].append(dict(
                    name=prop.name, capability=f'{prop.major}.{prop.minor}',
                    memory_gib=round(prop.total_memory / 2**30, 1)))
            try:
                cuda['nccl'] = '.'.join(map(str, torch.cuda.nccl.version()))
            except Exception as exc:
                cuda['nccl'] = f'unavailable ({exc})'
        found['cuda'] = cuda
    if 'version' in packages['mmcv']:
        try:
            from mmcv.ops import get_compiling_cuda_version
            compiled = get_compiling_cuda_version()
            packages['mmcv']['ops'] = (
                'CPU only' if compiled in ('not available', None, '')
                else f'CUDA {compiled}')
        except Exception as exc:
            packages['mmcv']['ops'] = f'missing ({type(exc).__name__}: ' \
                f'{exc})'[:300]
    try:
        nvcc = subprocess.run(['nvcc', '--version'], capture_output=True,
                              text=True, timeout=10).stdout
        m = re.search(r'release ([\d.]+)', nvcc)
        found['nvcc'] = m.group(1) if m else None
    except (OSError, subprocess.SubprocessError):
        found['nvcc'] = None
    root = repo_root()
    if root:
        try:
            found['commit'] = subprocess.run(
                ['git', 'rev-parse', '--short', 'HEAD'], cwd=root,
                capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return found


def missing(env: dict) -> List[str]:
    """What stops the check or a training run, one sentence each."""
    out = []
    for name, info in env.get('packages', {}).items():
        if 'error' in info:
            out.append(f'{name} does not import ({info["error"]})')
    cuda = env.get('cuda')
    if cuda is not None and not cuda['available']:
        out.append('no CUDA device visible to torch (CPU build, driver or '
                   'CUDA_VISIBLE_DEVICES): every GPU step is skipped')
    ops = env.get('packages', {}).get('mmcv', {}).get('ops', '')
    if ops == 'CPU only' and cuda and cuda['available']:
        out.append('mmcv ops compiled without CUDA: the check ran mmcv\'s '
                   'focal loss, deformable attention and NMS as pure-PyTorch '
                   'fallbacks (install_cuda_fallbacks); for training, build '
                   'them: bash tools/offline/install.sh --ops cuda')
    elif ops.startswith('missing'):
        out.append(f'mmcv ops {ops}')
    return out


# --- the report --------------------------------------------------------------
def format_report(env: Optional[dict], results: Sequence[Result],
                  command: str = '', tail_lines: int = 40,
                  install: Optional[str] = None) -> str:
    """The check's one markdown report. ``install``: a sentence on the
    install that preceded the check (tools/gpu_check.sh gives it)."""
    total = sum(r.seconds for r in results)
    budget = sum(r.budget_s for r in results)
    counts = {s: sum(r.status == s for r in results)
              for s in ('passed', 'failed', 'timed out', 'skipped')}
    lines = ['# mmkd GPU self-check', '',
             f'{datetime.datetime.now().strftime("%Y-%m-%d %H:%M")} on '
             f'{platform.node() or "?"}'
             + (f', `{command}`' if command else '') + '.',
             f'**{counts["passed"]} passed, {counts["failed"]} failed, '
             f'{counts["timed out"]} timed out, {counts["skipped"]} '
             f'skipped** in {total:.0f} s (budgets: {budget:.0f} s).']
    if install:
        lines.append(f'Install before the check: {install}.')
    lines += ['', '## Environment', '']
    if env is None:
        lines += ['The environment probe did not run or did not finish '
                  '(see its output below).', '']
    else:
        lines += ['| component | version | note |', '|---|---|---|',
                  f'| Python | {env.get("python", "?")} | '
                  f'{env.get("executable", "")} |']
        cuda = env.get('cuda') or {}
        for name, info in env.get('packages', {}).items():
            note = info.get('error', '')
            if name == 'torch' and cuda:
                note = (f'CUDA {cuda.get("torch_cuda")}, cuDNN '
                        f'{cuda.get("cudnn")}, ' +
                        (', '.join(f'{d["name"]} (sm {d["capability"]}, '
                                   f'{d["memory_gib"]} GiB)'
                                   for d in cuda.get('devices', []))
                         or 'no CUDA device') +
                        (f', NCCL {cuda["nccl"]}' if 'nccl' in cuda else ''))
            if name == 'mmcv' and 'ops' in info:
                note = f'ops: {info["ops"]}'
            if name == 'mmkd' and env.get('commit'):
                note = f'commit {env["commit"]}'
            lines.append(f'| {name} | {info.get("version", "missing")} | '
                         f'{note} |')
        lines.append(f'| nvcc | {env.get("nvcc") or "not found"} | |')
        gaps = missing(env)
        lines += ['', '**Missing:** ' + ('nothing.' if not gaps else ''), '']
        lines += [f'- {gap}' for gap in gaps]
        lines.append('')
    lines += ['## Steps', '', '| step | what | status | time (s) | '
              'budget (s) |', '|---|---|---|---|---|']
    for r in results:
        status = r.status + (f' ({r.note})' if r.note else '')
        lines.append(f'| {r.name} | {r.what} | {status} | {r.seconds:.1f} | '
                     f'{r.budget_s:.0f} |')
    figures = [r for r in results if r.figures]
    if figures:
        lines += ['', '## Figures', '']
        for r in figures:
            lines += [f'### {r.name}', '', r.figures, '']
    bad = [r for r in results if r.status in ('failed', 'timed out')]
    if bad:
        lines += ['', '## What went wrong', '']
        for r in bad:
            tail = '\n'.join(r.output.rstrip().splitlines()[-tail_lines:])
            lines += [f'### {r.name}: {r.status}', '', '```', tail, '```', '']
    return '\n'.join(lines).rstrip() + '\n'


# --- pure-PyTorch stand-ins for mmcv's CUDA kernels --------------------------
def cuda_fallbacks_needed() -> bool:
    """CUDA is there but mmcv's ops were compiled without it."""
    import torch
    if not torch.cuda.is_available():
        return False
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() in ('not available', None, '')


def install_cuda_fallbacks(force: bool = False) -> Callable[[], None]:
    """Where mmcv's ops lack CUDA (``bash tools/offline/install.sh`` builds
    them for the CPU by default), route the three mmcv CUDA kernels that the
    check's models reach to code that runs on CUDA tensors: mmdet's focal
    loss to its own PyTorch formula (one-hot targets), multi-scale deformable
    attention to mmcv's PyTorch version (``grid_sample``), NMS to mmcv's CPU
    kernel (boxes copied to the host and back). Used by the check's
    processes only (``run``, tests/gpu); returns the undo. ``force``
    installs them on any machine (tests)."""
    if not (force or cuda_fallbacks_needed()):
        return lambda: None
    import importlib

    import torch.nn.functional as F

    # By module name: the attribute mmcv.ops.nms is the function nms().
    msda = importlib.import_module('mmcv.ops.multi_scale_deform_attn')
    nms_module = importlib.import_module('mmcv.ops.nms')
    focal = importlib.import_module('mmdet.models.losses.focal_loss')
    saved = [(focal, 'sigmoid_focal_loss', focal.sigmoid_focal_loss),
             (msda, 'MultiScaleDeformableAttnFunction',
              msda.MultiScaleDeformableAttnFunction),
             (nms_module, 'nms', nms_module.nms)]

    def sigmoid_focal_loss(pred, target, weight=None, gamma=2.0, alpha=0.25,
                           reduction='mean', avg_factor=None):
        num_classes = pred.size(1)
        one_hot = F.one_hot(target, num_classes + 1)[:, :num_classes]
        return focal.py_sigmoid_focal_loss(
            pred, one_hot.type_as(pred), weight, gamma, alpha, reduction,
            avg_factor)

    class MultiScaleDeformableAttnFunction:
        @staticmethod
        def apply(value, spatial_shapes, level_start_index,
                  sampling_locations, attention_weights, im2col_step):
            return msda.multi_scale_deformable_attn_pytorch(
                value, spatial_shapes, sampling_locations, attention_weights)

    cpu_nms = nms_module.nms

    def nms(boxes, scores, *args, **kwargs):
        if not getattr(boxes, 'is_cuda', False):
            return cpu_nms(boxes, scores, *args, **kwargs)
        dets, keep = cpu_nms(boxes.cpu(), scores.cpu(), *args, **kwargs)
        return dets.to(boxes.device), keep.to(boxes.device)

    focal.sigmoid_focal_loss = sigmoid_focal_loss
    msda.MultiScaleDeformableAttnFunction = MultiScaleDeformableAttnFunction
    nms_module.nms = nms
    print('mmkd gpu_check: mmcv ops without CUDA; pure-PyTorch fallbacks '
          'for sigmoid_focal_loss, MultiScaleDeformableAttnFunction, nms',
          file=sys.stderr)

    def undo() -> None:
        for module, name, original in saved:
            setattr(module, name, original)
    return undo


# --- the steps' own entry points ---------------------------------------------
def prepare(work_dir: str) -> None:
    """The built-in data and one random-weight teacher checkpoint per demo
    pair (a trained teacher is not needed to see the steps run)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    import mmkd  # noqa: F401  (mmkd:: config names, registries)
    from mmkd_lab.data import ensure_dataset
    ensure_dataset(osp.join(work_dir, 'data'), **DATA_SPLITS)
    for name, config in DEMO_TEACHERS.items():
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = MODELS.build(Config.fromfile(config).model)
        model.init_weights()
        torch.save({'state_dict': model.state_dict()},
                   osp.join(work_dir, f'{name}.pth'))
    print(f'prepared {work_dir}: data/, ' +
          ', '.join(f'{n}.pth' for n in DEMO_TEACHERS))


def run_tool(argv: List[str]) -> None:
    """``run SCRIPT ARGS``: the script as __main__, after the fallbacks."""
    import runpy

    import mmkd  # noqa: F401
    install_cuda_fallbacks()
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name='__main__')


def report_progress(result: Result) -> None:
    print(f'[gpu_check] {result.name}: {result.status} '
          f'({result.seconds:.1f} s of {result.budget_s:.0f})'
          + (f' {result.note}' if result.note else ''), flush=True)


# --- the command -------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='gpu_check', description='mmkd GPU self-check: environment, '
        'GPU tests, AMP training and benchmarks on CUDA, one markdown report')
    parser.add_argument('--work-dir', default='work_dirs/gpu_check',
                        help='data, logs and the report (default '
                        'work_dirs/gpu_check)')
    parser.add_argument('--out', help='the report (default '
                        'WORK_DIR/report.md)')
    parser.add_argument('--steps', nargs='+', choices=list(BUDGETS),
                        help='run only these steps (default: all)')
    parser.add_argument('--budget', nargs='+', default=[], metavar='STEP=S',
                        help='another budget for a step, in seconds')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the steps, their budgets and commands')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['probe']:
        print(json.dumps(probe()))
        return 0
    if argv[:1] == ['prepare']:
        prepare(argv[1])
        return 0
    if argv[:1] == ['run']:
        run_tool(argv[1:])
        return 0
    args = parse_args(argv)
    budgets = {}
    for item in args.budget:
        name, _, seconds = item.partition('=')
        if name not in BUDGETS or not seconds.replace('.', '', 1).isdigit():
            raise SystemExit(f'gpu_check: --budget {item}: give STEP=SECONDS '
                             f'with STEP one of {", ".join(BUDGETS)}')
        budgets[name] = float(seconds)
    work_dir = osp.abspath(args.work_dir)
    steps = [s for s in plan(work_dir, budgets=budgets)
             if not args.steps or s.name in args.steps]
    out = args.out or osp.join(work_dir, 'report.md')
    if args.dry_run:
        for s in steps:
            print(f'[{s.name}, {s.budget_s:.0f} s] {s.what}\n  '
                  + ' '.join(s.argv))
        print(f'total budget {sum(s.budget_s for s in steps):.0f} s; '
              f'report: {out}')
        return 0
    os.makedirs(work_dir, exist_ok=True)
    env = None
    if steps and steps[0].name == 'environment':
        first = run_step(steps[0], cuda=False,
                         log_dir=osp.join(work_dir, 'logs'))
        try:
            env = json.loads(first.output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            if first.status == 'passed':
                first.status, first.note = 'failed', 'no JSON from the probe'
        report_progress(first)
        results, steps = [first], steps[1:]
    else:  # the probe is needed anyway: is there a GPU?
        results = []
        probe_step = plan(work_dir)[0]
        done = subprocess.run(probe_step.argv, capture_output=True,
                              text=True, timeout=probe_step.budget_s)
        try:
            env = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            env = None
    cuda = bool(env and (env.get('cuda') or {}).get('available'))
    results += run_check(steps, cuda, osp.join(work_dir, 'logs'),
                         report_progress)
    text = format_report(env, results, 'gpu_check ' + ' '.join(argv),
                         install=os.environ.get('MMKD_GPU_CHECK_INSTALL'))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write(text)
    print(f'[gpu_check] report: {out}')
    return 0 if all(r.status in ('passed', 'skipped') for r in results) \
        else 1


if __name__ == '__main__':
    sys.exit(main())
