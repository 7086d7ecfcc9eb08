"""The demo/COCO code path end to end on tiny generated data, and the
tables the demo and the comparison print."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from mmkd_lab.data import ensure_dataset
from mmkd_lab.demo import (
    comparison_table,
    data_options,
    last_scalars,
    loss_history,
)


def _write_scalars(run_dir, rows):
    os.makedirs(osp.join(run_dir, '20260101_000000', 'vis_data'))
    with open(osp.join(run_dir, '20260101_000000', 'vis_data',
                       'scalars.json'), 'w') as f:
        for row in rows:
            f.write(json.dumps(row) + '\n')


def test_scalars_parsing(tmp_path):
    _write_scalars(str(tmp_path), [
        dict(step=1, loss=2.0, time=0.5), dict(step=2, loss=1.5, time=0.7),
        {'coco/bbox_mAP': 0.25, 'step': 2}])
    assert last_scalars(str(tmp_path))['coco/bbox_mAP'] == 0.25
    assert loss_history(str(tmp_path))['loss'] == [2.0, 1.5]


def test_comparison_table_statistics():
    runs = {
        'student': [{'coco/bbox_mAP': m, 'coco/bbox_mAP_s': s,
                     'coco/bbox_mAP_50': 0.5, 'step_time': t, 'seed': seed}
                    for seed, (m, s, t) in enumerate(
                        ((0.20, 0.1, 1.0), (0.22, 0.1, 1.2),
                         (0.24, 0.1, 1.1)))],
        'vkd': [{'coco/bbox_mAP': m, 'coco/bbox_mAP_s': 0.2,
                 'coco/bbox_mAP_50': 0.6, 'step_time': 1.65, 'seed': seed}
                for seed, m in enumerate((0.30, 0.31, 0.32))],
    }
    table = comparison_table(runs)
    # mean 0.22, sample std 0.02; step ratio 1.65 / median(1.0,1.2,1.1)=1.5
    assert '| student | 3 | 0.220 ± 0.020 |' in table
    assert '| vkd | 3 | 0.310 ± 0.010 |' in table
    assert table.rstrip().endswith('| 1.50 |')
    # Paired by seed: 0.10, 0.09, 0.08 -> 0.090 ± 0.010 (the student: 0).
    assert '| 0.600 ± 0.000 | 0.090 ± 0.010 |' in table
    assert '| 0.500 ± 0.000 | 0.000 ± 0.000 |' in table
    # Only the seeds both have are paired: seed 2 alone -> 0.08.
    part = comparison_table({'student': runs['student'],
                             'vkd': runs['vkd'][2:]})
    assert '| 0.600 ± 0.000 | 0.080 ± 0.000 |' in part
    # Against another method: vkd - vkd = 0; student - vkd = -0.090.
    other = comparison_table(runs, paired_with='vkd')
    assert 'mAP - vkd, same seed' in other
    assert '| 0.500 ± 0.000 | -0.090 ± 0.010 |' in other
    # No runs of the reference yet: that column is '-'.
    assert '| 0.600 ± 0.000 | - |' in comparison_table(runs,
                                                        paired_with='srd')
    # Distillers without a student-alone run: a table, ratios '-'.
    alone = comparison_table({'vkd': runs['vkd']})
    assert alone.rstrip().endswith('| 0.310 ± 0.010 | 0.200 ± 0.000 | '
                                   '0.600 ± 0.000 | - | - | - |')
    # Share of the gap: (0.31 - 0.22) / (0.40 - 0.22) = 0.5, against the
    # student alone under a pair's name too.
    table = comparison_table({'dino_student': runs['student'],
                              'dino_vkd': runs['vkd']}, teacher_map=0.40)
    assert '| dino_student | 3 | 0.220 ± 0.020 |' in table
    assert '| 0.00 | 1.00 |' in table  # the student: no gap closed
    assert table.rstrip().endswith('| 0.50 | 1.50 |')


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    return ensure_dataset(root, num_train=16, num_val=8, seed=3)


def _train(train_tool, config, work_dir, data_root, extra=()):
    # The teachers here are random or trained for a few iterations: their
    # check runs and reports, with no bar to stop at.
    return train_tool(config, work_dir, cfg_options=data_options(
        data_root) + ['train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                      'train_dataloader.batch_size=4',
                      'default_hooks.logger.interval=1',
                      'teacher_check.min_map=0'] + list(extra))


@pytest.mark.slow
def test_vkd_training_through_tools_train(tiny_data, tmp_path, repo,
                                          train_tool, random_teacher_ckpt):
    # A teacher checkpoint of the demo teacher architecture (random weights).
    teacher_ckpt = random_teacher_ckpt
    work_dir = str(tmp_path / 'vkd')
    proc = _train(train_tool, repo.vkd_demo, work_dir, tiny_data,
                  [f'model.teacher_ckpt={teacher_ckpt}',
                   # untrained: keep every box so COCO mAP exists
                   'model.architecture.test_cfg.score_thr=0.0'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'eta:' in log  # progress with ETA
    scalars = last_scalars(work_dir)
    # COCO evaluation ran on the val split: every box AP, each AP at one
    # IoU no lower than the average over IoUs 0.5:0.95.
    for key in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l'):
        assert np.isfinite(scalars[f'coco/bbox_{key}']), key
    assert scalars['coco/bbox_mAP_50'] >= scalars['coco/bbox_mAP_75']
    assert scalars['coco/bbox_mAP_50'] >= scalars['coco/bbox_mAP']
    hist = loss_history(work_dir)
    distill = [k for k in hist if k.startswith('distill.loss_fpn')]
    assert len(distill) == 5
    assert all(np.isfinite(hist[k]).all() for k in distill)
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))


def test_missing_data_stops_before_runner(tmp_path, repo, train_tool):
    missing = str(tmp_path / 'nowhere')
    work_dir = str(tmp_path / 'wd')
    proc = _train(train_tool, repo.student_demo, work_dir, missing)
    assert proc.returncode != 0
    err = proc.stderr
    assert 'the dataset is not on disk' in err
    assert osp.join(missing, 'annotations', 'instances_train.json') in err
    assert 'tools/make_data.py' in err
    assert not osp.exists(work_dir)  # stopped before the runner was built


def test_preflight_checks_evaluator_annotations(tiny_data, tmp_path, repo):
    from mmkd.preflight import PreflightError, preflight
    cfg = Config.fromfile(repo.student_demo)
    cfg.merge_from_dict(dict(
        kv.split('=', 1) for kv in data_options(tiny_data)))
    preflight(cfg)  # everything present
    cfg.val_evaluator.ann_file = str(tmp_path / 'gone.json')
    with pytest.raises(PreflightError,
                       match=r'val_evaluator.ann_file: .*gone.json'):
        preflight(cfg)


def test_collect_comparison_groups_finished_runs(tmp_path):
    from mmkd_lab.demo import collect_comparison
    for method, seed, m in (('vkd', 1, 0.3), ('vkd', 0, 0.2),
                            ('student', 0, 0.1)):
        os.makedirs(tmp_path / f'{method}_seed{seed}')
        with open(tmp_path / f'{method}_seed{seed}' / 'result.json',
                  'w') as f:
            json.dump({'seed': seed, 'coco/bbox_mAP': m}, f)
    os.makedirs(tmp_path / 'srd_seed0')  # started, not finished: left out
    runs = collect_comparison(str(tmp_path), ('student', 'vkd', 'srd'))
    assert list(runs) == ['student', 'vkd']
    assert [r['seed'] for r in runs['vkd']] == [0, 1]


def test_comparison_never_trains_a_run_another_process_holds(
        tmp_path, monkeypatch):
    """Two processes on one work dir: a run locked by the other one is put
    off, trained by nobody here once the other finishes it, and the rest
    are trained once each."""
    from mmkd_lab import demo
    work = str(tmp_path / 'work')
    other = demo.run_lock(osp.join(work, 'student_seed0'), wait=False)
    assert other.__enter__()  # the other process, training student seed 0
    trained = []

    def train_method(method, run_dir, teacher_ckpt, data_opts, seed):
        trained.append((method, seed))
        os.makedirs(run_dir, exist_ok=True)
        if len(trained) == 1:  # meanwhile the other process finishes
            os.makedirs(osp.join(work, 'student_seed0'), exist_ok=True)
            with open(osp.join(work, 'student_seed0', 'result.json'),
                      'w') as f:
                json.dump({'seed': 0, 'coco/bbox_mAP': 0.5}, f)
            other.__exit__(None, None, None)
        return {'coco/bbox_mAP': 0.25}

    monkeypatch.setattr(demo, 'train_method', train_method)
    monkeypatch.setattr(demo, 'ensure_dataset', lambda root: root)
    monkeypatch.setattr(demo, 'ensure_teacher',
                        lambda *a, **k: ('teacher.pth', {}))
    runs = demo.run_comparison(work, 'data', ('student', 'vkd'), (0,))
    assert trained == [('vkd', 0)]
    assert runs['student'][0]['coco/bbox_mAP'] == 0.5
    assert runs['vkd'][0]['coco/bbox_mAP'] == 0.25


def test_demo_runs_come_from_the_config_files(tmp_path):
    """Names derived from a made-up configs/demo tree: the folder's detector
    word (its teacher's first word, else the folder's name) drops out, a
    subfolder prefixes, '-' becomes '_'; _base_ is not a run."""
    from mmkd_lab.demo import _methods, _pairs, demo_runs
    for path in ('ssd_teacher_shapes.py', 'ssd_student_shapes.py',
                 'vkd_ssd_shapes.py', '_base_/x_shapes.py',
                 'yolo/yolo_teacher_shapes.py', 'yolo/yolo_student_shapes.py',
                 'yolo/vkd-tokens_yolo_shapes.py', 'thin/thin_ortho_shapes.py',
                 'thin/thin_student_shapes.py', 'thin/models.py'):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text('')
    runs = demo_runs(str(tmp_path))
    assert runs == {
        '': {'student': 'ssd_student_shapes.py', 'teacher':
             'ssd_teacher_shapes.py', 'vkd': 'vkd_ssd_shapes.py'},
        'thin': {'thin_ortho': 'thin/thin_ortho_shapes.py',
                 'thin_student': 'thin/thin_student_shapes.py'},
        'yolo': {'yolo_student': 'yolo/yolo_student_shapes.py',
                 'yolo_teacher': 'yolo/yolo_teacher_shapes.py',
                 'yolo_vkd_tokens': 'yolo/vkd-tokens_yolo_shapes.py'}}
    # Teachers are not methods; a pair's student alone comes first.
    assert list(_methods(runs)) == ['student', 'vkd', 'thin_student',
                                    'thin_ortho', 'yolo_student',
                                    'yolo_vkd_tokens']
    pairs = _pairs(runs)
    assert list(pairs) == ['ssd', 'yolo']  # thin/ has no teacher: no pair
    assert pairs['yolo']['teacher'] == 'yolo/yolo_teacher_shapes.py'
    assert pairs['yolo']['methods'] == ('yolo_student', 'yolo_vkd_tokens')


def test_every_demo_config_is_a_method_of_the_demo():
    """The shipped configs/demo: each run config is a method (or a pair's
    teacher) under the names the docs and tools use."""
    from mmkd_lab.demo import DEMO_CONFIGS, DEMO_METHODS, DEMO_PAIRS
    files = {osp.relpath(p, DEMO_CONFIGS) for p in glob.glob(
        osp.join(DEMO_CONFIGS, '**', '*_shapes.py'), recursive=True)}
    teachers = {p['teacher'] for p in DEMO_PAIRS.values()}
    assert set(DEMO_METHODS.values()) | teachers == files
    assert len(DEMO_METHODS) == len(files) - len(teachers)
    assert {'student', 'vkd', 'srd', 'narrow_ortho', 'hetero_none',
            'dino_vkd', 'dino_vkd_tokens'} <= set(DEMO_METHODS)
    assert DEMO_METHODS['dino_vkd_tokens'] == 'dino/vkd-tokens_dino_shapes.py'
    assert DEMO_PAIRS['retinanet']['teacher'] == 'retinanet_teacher_shapes.py'
    assert DEMO_PAIRS['retinanet']['methods'][0] == 'student'
    assert DEMO_PAIRS['dino']['work_dir'] == 'work_dirs/dino_demo'
