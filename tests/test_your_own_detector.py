"""docs/your_own_detector.md, run as written: a dataset in a layout of its
own (3 classes, generated here), the page's two configs, then every command
of the page in order (teacher trained briefly, config written, teacher
checked, student distilled two iterations, exported, tested), each checked
for what the page says it does."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGE = osp.join(ROOT, 'docs', 'your_own_detector.md')
# The page's classes and their category ids (not 1..3 on purpose).
CATEGORIES = (('disc', 3), ('triangle', 7), ('cross', 9))
NUM_IMAGES = 24
# The teacher: trained briefly (50 iterations), too briefly to detect much:
# it is evaluated with every box kept (score_thr=0) so that its COCO mAP is
# a number, and the teacher check runs and reports with the bar at 0
# (refusing a useless teacher and passing a good one are tested in
# tests/engine/test_teacher_check.py).
TEACHER_ITERS = 50
SHORT_TEACHER = [
    f'train_cfg.max_iters={TEACHER_ITERS}',
    f'train_cfg.val_interval={TEACHER_ITERS}',
    f'default_hooks.checkpoint.interval={TEACHER_ITERS}',
    'param_scheduler.0.end=10', 'param_scheduler.1.begin=10',
    f'param_scheduler.1.end={TEACHER_ITERS}',
    f'param_scheduler.1.T_max={TEACHER_ITERS - 10}', 'randomness.seed=0',
    'train_dataloader.batch_size=4', 'model.test_cfg.score_thr=0']
SHORT_DISTILL = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                 'default_hooks.checkpoint.interval=2',
                 'default_hooks.logger.interval=1',
                 'train_dataloader.batch_size=4',
                 'teacher_check.min_map=0',
                 'model.teacher.test_cfg.score_thr=0',
                 'model.architecture.test_cfg.score_thr=0']
NO_WORKERS = ['train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False',
              'val_dataloader.num_workers=0',
              'val_dataloader.persistent_workers=False',
              'test_dataloader.num_workers=0',
              'test_dataloader.persistent_workers=False']


def page_parts():
    """(configs {file name: text}, commands [shell line]) of the page, in
    the page's order."""
    text = open(PAGE).read()
    configs, commands = {}, []
    for lang, body in re.findall(r'^```(\w*)\n(.*?)^```', text, re.S | re.M):
        if lang == 'python':
            name = re.match(r'# (\S+\.py)\n', body).group(1)
            configs[name] = body
        elif lang == 'bash':
            commands += [ln for ln in body.splitlines() if ln.strip()]
    return configs, commands


def _scene(rng, size=128):
    """Plain scenes a briefly trained teacher learns: 1-3 large shapes, one
    colour and shape per class, on a noisy grey canvas. Returns the image
    and its objects as (class index, [x, y, w, h])."""
    from PIL import Image, ImageDraw
    canvas = rng.normal(128, 12, (size, size, 3)).clip(0, 255)
    img = Image.fromarray(canvas.astype('uint8'))
    draw = ImageDraw.Draw(img)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(3))
        side = float(rng.uniform(26, 56))
        x0, y0 = (float(v) for v in rng.uniform(0, size - side, 2))
        box = (x0, y0, x0 + side, y0 + side)
        if cls == 0:
            draw.ellipse(box, fill=(220, 40, 40))
        elif cls == 1:
            draw.polygon([(x0 + side / 2, y0), (x0 + side, y0 + side),
                          (x0, y0 + side)], fill=(40, 60, 220))
        else:
            t = side / 3
            draw.rectangle((x0, y0 + t, x0 + side, y0 + 2 * t),
                           fill=(40, 180, 60))
            draw.rectangle((x0 + t, y0, x0 + 2 * t, y0 + side),
                           fill=(40, 180, 60))
        objects.append((cls, [x0, y0, side, side]))
    return img, objects


def write_dataset(root, seed=0):
    """shapes3/: labels/{split}.json, pictures/{split}/*.png; the val split
    is the train images (see SHORT_TEACHER)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    os.makedirs(osp.join(root, 'labels'))
    for split in ('train', 'val'):
        os.makedirs(osp.join(root, 'pictures', split))
    for i in range(NUM_IMAGES):
        img, objects = _scene(rng)
        name = f'scene_{i:03d}.png'
        for split in ('train', 'val'):
            img.save(osp.join(root, 'pictures', split, name))
        images.append(dict(id=100 + i, file_name=name, width=128,
                           height=128))
        for cls, (x, y, w, h) in objects:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=100 + i,
                category_id=CATEGORIES[cls][1], bbox=[x, y, w, h],
                area=w * h, iscrowd=0))
    categories = [dict(id=cid, name=n) for n, cid in CATEGORIES]
    for split in ('train', 'val'):
        with open(osp.join(root, 'labels', f'{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)


def cheap(command):
    """The page's command with the test's shorter schedule."""
    if command.startswith('mmkd train my_teacher.py'):
        return command + ' --cfg-options ' + ' '.join(
            SHORT_TEACHER + NO_WORKERS)
    if command.startswith('mmkd train '):
        return command + ' --cfg-options ' + ' '.join(
            SHORT_DISTILL + NO_WORKERS)
    if command.startswith('mmkd test '):
        return command + ' --cfg-options ' + ' '.join(
            NO_WORKERS + ['model.test_cfg.score_thr=0'])
    return command


def test_the_page_has_the_whole_path():
    configs, commands = page_parts()
    assert set(configs) == {'my_teacher.py', 'my_student.py'}
    tools = [c.split()[1] for c in commands]
    assert tools == ['train', 'config', 'train', 'export_student', 'test']


@pytest.mark.slow  # the teacher's 50 iterations, then 4 tools: ~1.5 min
def test_the_page_runs_end_to_end(tmp_path):
    work = tmp_path / 'mine'
    work.mkdir()
    write_dataset(str(work / 'shapes3'))
    configs, commands = page_parts()
    for name, text in configs.items():
        (work / name).write_text(text)
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'mmkd').write_text(
        f'#!/bin/sh\nexec {sys.executable} -m mmkd "$@"\n')
    (bin_dir / 'mmkd').chmod(0o755)
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
               PYTHONPATH=osp.join(ROOT, 'tests', 'offline'),
               OMP_NUM_THREADS='2')
    outputs = []
    for command in commands:
        proc = subprocess.run(['bash', '-c', cheap(command)], cwd=work,
                              env=env, capture_output=True, text=True,
                              timeout=1200)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f'{command}\n{out[-4000:]}'
        outputs.append(out)
    teacher_out, config_out, distill_out, export_out, test_out = outputs

    # The teacher trained and evaluated (COCO mAP on its validation set).
    assert osp.isfile(work / 'work_dirs' / 'my_teacher' / 'last_checkpoint')
    assert re.search(r'coco/bbox_mAP: \d\.\d+', teacher_out)
    # The written config pairs strides 8, 16, 32 (the student's levels 0-2,
    # the teacher's 0-2 of 5) and maps 32 -> 64 channels.
    from mmengine.config import Config

    import mmkd  # noqa: F401
    cfg = Config.fromfile(str(work / 'my_vkd.py'))
    distiller = cfg.model.distiller
    assert list(distiller.levels) == [0, 1, 2]
    assert list(distiller.get('teacher_levels', [0, 1, 2])) == [0, 1, 2]
    channels = distiller.student_channels, distiller.teacher_channels
    assert [c if isinstance(c, int) else set(c) for c in channels] in (
        [32, 64], [{32}, {64}])
    assert cfg.model.teacher_ckpt.endswith('.pth')
    assert cfg.model.architecture.bbox_head.num_classes == 3
    # The teacher check ran on the first 5 validation batches and reported
    # the teacher's mAP, and the ratio of the distillation terms to the
    # task's is in the log.
    checked = re.search(r'teacher check: coco/bbox_mAP \d\.\d{3} on the '
                        r'first \d validation batches', distill_out)
    assert checked, distill_out[-3000:]
    assert 'distill_ratio: ' in distill_out
    # The export is the student alone, and plain MMDetection's test runs it.
    from mmkd.checkpoint import read_checkpoint
    state = read_checkpoint(str(work / 'my_student_distilled.pth'))
    keys = list(state.get('state_dict', state))
    assert keys and not any(k.startswith(('teacher', 'distiller',
                                          'architecture')) for k in keys)
    assert osp.isfile(work / 'my_student_distilled.py')
    assert re.search(r'coco/bbox_mAP: \d\.\d+', test_out), test_out[-3000:]
