"""The demo behind ``make demo``: built-in data, a teacher, the student alone
and the VkD student on the same schedule and seed, each trained with
``tools/train.py`` (the COCO code path) and evaluated with COCO mAP."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from ..data import ensure_dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIGS = osp.join(ROOT, 'configs', 'demo')


def last_scalars(work_dir: str) -> Dict[str, float]:
    """The last logged value of every scalar in a run's ``scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no scalars.json under {work_dir}')
    out: Dict[str, float] = {}
    with open(files[-1]) as f:
        for line in f:
            out.update(json.loads(line))
    return out


def loss_history(work_dir: str) -> Dict[str, List]:
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    hist: Dict[str, List] = {}
    with open(files[-1]) as f:
        for line in f:
            row = json.loads(line)
            if 'loss' in row:
                for k, v in row.items():
                    hist.setdefault(k, []).append(v)
    return hist


def run_train(config: str, work_dir: str, cfg_options: Optional[List[str]]
              = None, seed: int = 0) -> float:
    """``python tools/train.py CONFIG`` in a fresh process; returns seconds."""
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
           '--work-dir', work_dir, '--cfg-options', f'randomness.seed={seed}',
           'randomness.deterministic=False'] + list(cfg_options or [])
    print('+ ' + ' '.join(cmd), flush=True)
    start = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.time() - start


def final_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def run_demo(work_dir: str = 'work_dirs/demo',
             data_root: str = 'data/mmkd_shapes', seed: int = 0,
             methods=('student', 'vkd'), retrain_teacher: bool = False,
             cfg_options: Optional[List[str]] = None) -> Dict[str, dict]:
    work_dir = osp.join(ROOT, work_dir) if not osp.isabs(work_dir) else work_dir
    ensure_dataset(osp.join(ROOT, data_root))
    data_opts = [f'train_dataloader.dataset.data_root={data_root}/',
                 f'val_dataloader.dataset.data_root={data_root}/',
                 f'val_evaluator.ann_file={data_root}/annotations/'
                 'instances_val.json'] + list(cfg_options or [])
    teacher_dir = osp.join(work_dir, 'teacher')
    teacher_ckpt = osp.join(teacher_dir, 'teacher.pth')
    results: Dict[str, dict] = {}
    if retrain_teacher or not osp.isfile(teacher_ckpt):
        secs = run_train(osp.join(DEMO_CONFIGS, 'retinanet_teacher_shapes.py'),
                         teacher_dir, data_opts, seed)
        shutil.copyfile(final_checkpoint(teacher_dir), teacher_ckpt)
        results['teacher'] = dict(last_scalars(teacher_dir), seconds=secs)
    else:
        print(f'reusing the trained teacher {teacher_ckpt} '
              '(--retrain-teacher to train it again)')
        results['teacher'] = dict(last_scalars(teacher_dir), seconds=0.0)
    configs = dict(student='retinanet_student_shapes.py',
                   vkd='vkd_retinanet_shapes.py',
                   srd='srd_retinanet_shapes.py')
    for method in methods:
        run_dir = osp.join(work_dir, method)
        extra = [f'model.teacher_ckpt={teacher_ckpt}'] if method != 'student' \
            else []
        secs = run_train(osp.join(DEMO_CONFIGS, configs[method]), run_dir,
                         data_opts + extra, seed)
        results[method] = dict(last_scalars(run_dir), seconds=secs)
    return results


def format_table(results: Dict[str, dict]) -> str:
    rows = ['| run | bbox mAP | AP50 | AP_small | train time (s) |',
            '|---|---|---|---|---|']
    for name, r in results.items():
        rows.append(
            f"| {name} | {r.get('coco/bbox_mAP', float('nan')):.3f} | "
            f"{r.get('coco/bbox_mAP_50', float('nan')):.3f} | "
            f"{r.get('coco/bbox_mAP_s', float('nan')):.3f} | "
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
