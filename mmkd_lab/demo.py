"""The demo behind ``make demo`` / ``mmkd demo``: built-in data, a teacher,
the student alone and the VkD student on the same schedule and seed, each
trained with mmkd's ``tools/train.py`` (the COCO code path) and evaluated with
COCO mAP.

Configs and the train tool come from the installed package
(``mmkd/.mim``: the checkout's ``configs/`` and ``tools/`` for an editable
install); data, teacher and runs go under the current directory."""
import contextlib
import fcntl
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional, Tuple

from mmkd.config_files import package_dir

from .data import ensure_dataset

MIM = osp.join(package_dir(), '.mim')
DEMO_CONFIGS = osp.join(MIM, 'configs', 'demo')
TRAIN_TOOL = osp.join(MIM, 'tools', 'train.py')
# The demo pairs' default work dirs (where ``teacher/teacher.pth`` is kept).
PAIR_WORK_DIRS = dict(retinanet='work_dirs/demo', dino='work_dirs/dino_demo')


def demo_runs(config_dir: str = DEMO_CONFIGS) -> Dict[str, Dict[str, str]]:
    """Every run config under ``configs/demo`` (``*_shapes.py`` outside
    ``_base_``), by folder (``''``: the top one), as ``{name: path relative
    to configs/demo}``, teachers included under ``teacher``.

    A run's name is its file name without ``_shapes.py``, without the
    folder's detector word (the first word of the folder's
    ``*_teacher_shapes.py``, else the folder's name), ``-`` as ``_``, and
    prefixed with the folder's name: ``vkd_retinanet_shapes.py`` is
    ``vkd``, ``dino/vkd-tokens_dino_shapes.py`` is ``dino_vkd_tokens``,
    ``narrow/narrow_ortho_shapes.py`` is ``narrow_ortho``."""
    by_folder: Dict[str, List[str]] = {}
    for path in sorted(glob.glob(osp.join(config_dir, '**', '*_shapes.py'),
                                 recursive=True)):
        rel, file = osp.split(osp.relpath(path, config_dir))
        if '_base_' not in rel.split(os.sep):
            by_folder.setdefault(rel, []).append(file[:-len('_shapes.py')])
    found: Dict[str, Dict[str, str]] = {}
    for rel, runs in sorted(by_folder.items()):
        teachers = [r for r in runs if r.endswith('_teacher')]
        word = teachers[0].split('_')[0] if teachers else rel
        for run in runs:
            words = [w for w in run.split('_') if w != word]
            name = '_'.join([rel] * bool(rel) + words).replace('-', '_')
            found.setdefault(rel, {})[name] = osp.join(rel,
                                                       run + '_shapes.py')
    return found


def _methods(runs: Dict[str, Dict[str, str]]) -> Dict[str, str]:
    """Every run but the teachers, a pair's student alone first."""
    out: Dict[str, str] = {}
    for folder in runs.values():
        names = [n for n in folder if not n.endswith('teacher')]
        for name in sorted(names, key=lambda n: not n.endswith('student')):
            out[name] = folder[name]
    return out


def _pairs(runs: Dict[str, Dict[str, str]]) -> Dict[str, dict]:
    """Each folder with a teacher config: its teacher, its work dir and its
    methods (compared by default)."""
    pairs = {}
    for folder, named in runs.items():
        teacher = [n for n in named if n.endswith('teacher')]
        if not teacher:
            continue
        pair = folder or named[teacher[0]].split('_')[0]
        pairs[pair] = dict(
            teacher=named[teacher[0]],
            work_dir=PAIR_WORK_DIRS.get(pair, f'work_dirs/{pair}_demo'),
            methods=tuple(n for n in _methods({folder: named})))
    return pairs


# Method name -> config (relative to configs/demo): every demo run but the
# teachers. docs/beyond_retinanet.md: a narrower student (32-ch FPN) and a
# PVTv2-b0 student (narrow_*, hetero_*) against the retinanet teacher;
# docs/detr.md: the DINO pair (dino_*, its own teacher).
DEMO_METHODS: Dict[str, str] = _methods(demo_runs())
# Each demo pair's teacher config and the folder its teacher is kept in
# (``teacher/teacher.pth`` there), and the methods compared by default.
DEMO_PAIRS: Dict[str, dict] = _pairs(demo_runs())


def scalars_file(work_dir: str) -> str:
    """The newest run's ``vis_data/scalars.json`` under ``work_dir``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    return files[-1]


def last_scalars(work_dir: str) -> Dict[str, float]:
    """The last logged value of every scalar in a run's ``scalars.json``."""
    out: Dict[str, float] = {}
    with open(scalars_file(work_dir)) as f:
        for line in f:
            out.update(json.loads(line))
    return out


def loss_history(work_dir: str) -> Dict[str, List]:
    hist: Dict[str, List] = {}
    with open(scalars_file(work_dir)) as f:
        for line in f:
            row = json.loads(line)
            if 'loss' in row:
                for k, v in row.items():
                    hist.setdefault(k, []).append(v)
    return hist


def run_train(config: str, work_dir: str, cfg_options: Optional[List[str]]
              = None, seed: int = 0) -> float:
    """``python tools/train.py CONFIG`` in a fresh process; returns seconds."""
    cmd = [sys.executable, TRAIN_TOOL, config,
           '--work-dir', work_dir, '--cfg-options', f'randomness.seed={seed}',
           'randomness.deterministic=False'] + list(cfg_options or [])
    print('+ ' + ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True)
    return time.time() - start


def final_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def data_options(data_root: str) -> List[str]:
    return [f'train_dataloader.dataset.data_root={data_root}/',
            f'val_dataloader.dataset.data_root={data_root}/',
            f'test_dataloader.dataset.data_root={data_root}/',
            f'val_evaluator.ann_file={data_root}/annotations/'
            'instances_val.json',
            f'test_evaluator.ann_file={data_root}/annotations/'
            'instances_val.json']


def project_path(path: str) -> str:
    """A path relative to the current directory, made absolute."""
    return osp.abspath(path)


def ensure_teacher(work_dir: str, data_opts: List[str], seed: int = 0,
                   retrain: bool = False,
                   config: str = 'retinanet_teacher_shapes.py'
                   ) -> Tuple[str, dict]:
    """Train the demo teacher (``config`` under configs/demo/) once; later
    calls reuse ``teacher.pth``."""
    teacher_dir = osp.join(work_dir, 'teacher')
    teacher_ckpt = osp.join(teacher_dir, 'teacher.pth')
    if retrain or not osp.isfile(teacher_ckpt):
        secs = run_train(osp.join(DEMO_CONFIGS, config), teacher_dir,
                         data_opts, seed)
        shutil.copyfile(final_checkpoint(teacher_dir), teacher_ckpt)
        return teacher_ckpt, dict(last_scalars(teacher_dir), seconds=secs,
                                  step_time=median_step_time(teacher_dir))
    print(f'reusing the trained teacher {teacher_ckpt} '
          '(--retrain-teacher to train it again)')
    return teacher_ckpt, dict(last_scalars(teacher_dir), seconds=0.0,
                              step_time=median_step_time(teacher_dir))


def run_demo(work_dir: str = 'work_dirs/demo',
             data_root: str = 'data/mmkd_shapes', seed: int = 0,
             methods=('student', 'vkd'), retrain_teacher: bool = False,
             cfg_options: Optional[List[str]] = None) -> Dict[str, dict]:
    work_dir = project_path(work_dir)
    ensure_dataset(project_path(data_root))
    data_opts = data_options(data_root) + list(cfg_options or [])
    teacher_ckpt, teacher = ensure_teacher(work_dir, data_opts, seed,
                                           retrain_teacher)
    results: Dict[str, dict] = {'teacher': teacher}
    for method in methods:
        results[method] = train_method(method, osp.join(work_dir, method),
                                       teacher_ckpt, data_opts, seed)
    return results


@contextlib.contextmanager
def run_lock(run_dir: str, wait: bool) -> Iterator[bool]:
    """Hold ``<run_dir>.lock`` (an exclusive ``flock``) for the block: True
    when held, False when another process holds it and ``wait`` is False.
    The kernel releases it when its holder exits, however it ends, so a
    killed run leaves no stale lock."""
    os.makedirs(osp.dirname(run_dir) or '.', exist_ok=True)
    with open(run_dir + '.lock', 'a') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_comparison(work_dir: str = 'work_dirs/compare',
                   data_root: str = 'data/mmkd_shapes',
                   methods=('student', 'vkd', 'srd', 'pkd', 'cwd', 'mgd'),
                   seeds=(0, 1, 2), teacher_work_dir: str = 'work_dirs/demo',
                   cfg_options: Optional[List[str]] = None,
                   teacher_config: str = 'retinanet_teacher_shapes.py'
                   ) -> Dict[str, List[dict]]:
    """Every method for every seed, one shared teacher (the pair's). Each
    run leaves ``result.json`` in its folder; a finished run is not redone,
    so several processes can share a work dir: a run (and the teacher)
    another process is training is locked (:func:`run_lock`); it is put
    off to the end, then waited for, never trained twice."""
    work_dir = project_path(work_dir)
    ensure_dataset(project_path(data_root))
    data_opts = data_options(data_root) + list(cfg_options or [])
    teacher_ckpt = None  # trained or found when a run first needs it:
    # students alone can run beside the process that trains the teacher
    # seed-major: a cut-short run still compares methods
    runs = [(seed, method) for seed in seeds for method in methods]
    for wait in (False, True):
        busy = []
        for seed, method in runs:
            run_dir = osp.join(work_dir, f'{method}_seed{seed}')
            result_file = osp.join(run_dir, 'result.json')
            with run_lock(run_dir, wait) as held:
                if not held:
                    print(f'{method} seed {seed}: another process is '
                          'training it; coming back to it at the end')
                    busy.append((seed, method))
                    continue
                if osp.isfile(result_file):
                    continue
                if teacher_ckpt is None and not method.endswith('student'):
                    teacher_dir = osp.join(project_path(teacher_work_dir),
                                           'teacher')
                    with run_lock(teacher_dir, wait=True):
                        teacher_ckpt, _ = ensure_teacher(
                            project_path(teacher_work_dir), data_opts,
                            config=teacher_config)
                result = dict(train_method(method, run_dir, teacher_ckpt,
                                           data_opts, seed), seed=seed)
                with open(result_file, 'w') as f:
                    json.dump(result, f, indent=1)
        runs = busy
    return collect_comparison(work_dir, methods)


def plan_comparison(work_dir: str, data_root: str, methods, seeds,
                    teacher_work_dir: str, teacher_config: str,
                    cfg_options: Optional[List[str]] = None) -> List[dict]:
    """What :func:`run_comparison` would train, without training: one entry
    per run (the teacher first) with its config, work dir, the options
    passed to the train tool and whether a finished run is already there.
    Each config is loaded with those options, so a wrong method, config or
    option fails here (``tools/compare.py --dry-run``)."""
    import argparse

    from mmengine.config import DictAction

    from mmkd.apis import load_config
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    data_opts = data_options(data_root) + list(cfg_options or [])
    teacher_dir = osp.join(project_path(teacher_work_dir), 'teacher')
    teacher_ckpt = osp.join(teacher_dir, 'teacher.pth')
    plan = [dict(run='teacher', config=osp.join(DEMO_CONFIGS, teacher_config),
                 work_dir=teacher_dir, options=data_opts,
                 done=osp.isfile(teacher_ckpt))]
    for seed in seeds:
        for method in methods:
            run_dir = osp.join(project_path(work_dir), f'{method}_seed{seed}')
            extra = [] if method.endswith('student') else [
                f'model.teacher_ckpt={teacher_ckpt}']
            plan.append(dict(
                run=f'{method} seed {seed}',
                config=osp.join(DEMO_CONFIGS, DEMO_METHODS[method]),
                work_dir=run_dir, options=data_opts + extra,
                done=osp.isfile(osp.join(run_dir, 'result.json'))))
    for entry in plan:
        options = parser.parse_args(['--cfg-options'] +
                                    entry['options']).cfg_options
        load_config(entry['config'], options, entry['work_dir'])
    return plan


def collect_comparison(work_dir: str, methods=tuple(DEMO_METHODS)
                       ) -> Dict[str, List[dict]]:
    """The finished runs under ``work_dir``, by method, in seed order."""
    runs: Dict[str, List[dict]] = {}
    for method in methods:
        files = sorted(glob.glob(osp.join(project_path(work_dir),
                                          f'{method}_seed*', 'result.json')))
        results = []
        for path in files:
            with open(path) as f:
                results.append(json.load(f))
        if results:
            runs[method] = sorted(results, key=lambda r: r['seed'])
    return runs


def comparison_table(runs: Dict[str, List[dict]],
                     teacher_map: Optional[float] = None,
                     paired_with: Optional[str] = None) -> str:
    """Mean +- std over seeds of mAP and AP_small, of the mAP difference
    from the student alone with the same seed (runs paired by ``seed``;
    from method ``paired_with`` instead when given), step time vs the
    student alone (the run named ``student`` or ``*_student``); with the
    teacher's mAP, the share of the teacher-student gap each method closes,
    (mAP - student) / (teacher - student), on the seed means."""
    import numpy as np

    def stat(values):
        a = np.asarray(values, dtype=float)
        return f'{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0:.3f}'

    def maps(rs):
        return [r.get('coco/bbox_mAP', 0.0) for r in rs]

    # Without a student-alone run there is no base: those columns say so
    # instead of failing the whole table.
    base = next((rs for m, rs in runs.items()
                 if (m == 'student' or m.endswith('_student')) and rs), None)
    base_step = (float(np.median([r['step_time'] for r in base]))
                 if base else None)
    gap = (teacher_map - float(np.mean(maps(base)))
           if base and teacher_map is not None else None)
    # No finished runs of the reference (yet): that column says '-'.
    reference = runs.get(paired_with) if paired_with else base

    def paired(rs):
        # Same seed, same data order and initialisation: the difference per
        # seed has a spread of its own.
        if not reference:
            return '-'
        own = {r.get('seed', i): r.get('coco/bbox_mAP', 0.0)
               for i, r in enumerate(reference)}
        diffs = [r.get('coco/bbox_mAP', 0.0) - own[r.get('seed', i)]
                 for i, r in enumerate(rs) if r.get('seed', i) in own]
        return stat(diffs) if diffs else '-'

    rows = ['| method | seeds | bbox mAP | AP_small | AP50 | mAP - '
            f"{paired_with or 'student'}, same seed | share of the "
            'teacher-student gap closed | '
            'step time / student |',
            '|---|---|---|---|---|---|---|---|']
    for method, rs in runs.items():
        if not rs:
            continue
        step = ('-' if base_step is None else
                f"{np.median([r['step_time'] for r in rs]) / base_step:.2f}")
        share = ('-' if not gap else
                 f'{(np.mean(maps(rs)) - np.mean(maps(base))) / gap:.2f}')
        rows.append(
            f"| {method} | {len(rs)} | {stat(maps(rs))} | "
            f"{stat([r.get('coco/bbox_mAP_s', 0.0) for r in rs])} | "
            f"{stat([r.get('coco/bbox_mAP_50', 0.0) for r in rs])} | "
            f'{paired(rs)} | {share} | {step} |')
    return '\n'.join(rows)



def median_step_time(work_dir: str) -> float:
    """Median logged iteration time ('time' in scalars.json) of a run."""
    import statistics
    hist = loss_history(work_dir)
    return statistics.median(hist['time']) if hist.get('time') else float(
        'nan')


def train_method(method: str, run_dir: str, teacher_ckpt: str,
                 data_opts: List[str], seed: int) -> dict:
    # A student-alone config has no teacher to point at.
    extra = [] if method.endswith('student') else [
        f'model.teacher_ckpt={teacher_ckpt}']
    secs = run_train(osp.join(DEMO_CONFIGS, DEMO_METHODS[method]), run_dir,
                     data_opts + extra, seed)
    return dict(last_scalars(run_dir), seconds=secs,
                step_time=median_step_time(run_dir))


def format_table(results: Dict[str, dict]) -> str:
    rows = ['| run | bbox mAP | AP50 | AP_small | s / iter | train time (s) |',
            '|---|---|---|---|---|---|']
    for name, r in results.items():
        rows.append(
            f"| {name} | {r.get('coco/bbox_mAP', 0.0):.3f} | "
            f"{r.get('coco/bbox_mAP_50', 0.0):.3f} | "
            f"{r.get('coco/bbox_mAP_s', 0.0):.3f} | "
            f"{r.get('step_time', float('nan')):.3f} | "
            f"{r['seconds']:.0f} |")
    return '\n'.join(rows)


def write_report(results: Dict[str, dict], work_dir: str) -> str:
    os.makedirs(work_dir, exist_ok=True)
    table = format_table(results)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
    return table


def make_demo_figures(results: Dict[str, dict], work_dir: str,
                      data_root: str = 'data/mmkd_shapes',
                      image_index: int = 0) -> List[str]:
    """mAP bars, loss curves, and teacher / student / distilled features and
    detections on one validation image."""
    import cv2

    from . import figures
    work_dir = project_path(work_dir)
    paths = figures.figure_paths(work_dir)
    figures.plot_map({k: [v.get('coco/bbox_mAP', 0.0)]
                      for k, v in results.items()}, paths['map'])
    figures.plot_losses({m: loss_history(osp.join(work_dir, m))
                         for m in results}, paths['losses'])
    image = cv2.imread(osp.join(project_path(data_root), 'val',
                                f'val_{image_index:06d}.png'))
    panels = {}
    for name in results:
        if name == 'teacher':
            config = osp.join(DEMO_CONFIGS,
                              DEMO_PAIRS['retinanet']['teacher'])
            ckpt = osp.join(work_dir, 'teacher', 'teacher.pth')
        else:
            config = osp.join(DEMO_CONFIGS, DEMO_METHODS[name])
            ckpt = final_checkpoint(osp.join(work_dir, name))
        panels[name] = figures.model_panel(
            figures.load_student(config, ckpt), image)
    figures.plot_features(image[:, :, ::-1], panels, paths['features'])
    return list(paths.values())
