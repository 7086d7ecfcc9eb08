"""``mmkd config`` (mmkd/apis/distill_config.py, tools/make_distill_config.py):
the pure helpers against values worked out here by hand, then the tool on
mmkd's demo detectors and on variants written to tmp_path that inherit them
(and on two mmdet pairs, built offline): what it pairs and writes, what it
refuses, that each written config loads, builds and computes its losses,
and (slow) that one trains through tools/train.py."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmkd.apis.distill_config import (
    DistillConfigError,
    axis_stride,
    channels_arg,
    format_value,
    head_class_counts,
    pair_levels,
    write_distill_config,
)
from mmkd.checkpoint import CheckpointError, UnsafeCheckpointError

# Never downloaded: a URL is written as given and checked when training.
URL = 'https://download.example.com/teacher.pth'
R50 = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
DEMO_CLASSES = ('red_disc', 'red_square', 'blue_triangle', 'blue_disc',
                'green_cross')
MMKD_HOOKS = {'AtomicCheckpointHook', 'FiniteLossHook',
              'DropFrozenTeacherHook', 'DistillLossRatioHook'}
# The demo student with a 3-level, 32-channel FPN (P3-P5: strides 8, 16,
# 32) under the teacher's 5-level, 64-channel one (P3-P7: 8 ... 128).
NARROW = """
model = dict(
    neck=dict(out_channels=32, num_outs=3),
    bbox_head=dict(in_channels=32, feat_channels=32,
                   anchor_generator=dict(strides=[8, 16, 32])))
"""


def child(folder, name, base, body=''):
    """A config ``name`` in ``folder`` inheriting ``base`` (a path)."""
    path = osp.join(str(folder), name)
    with open(path, 'w') as f:
        f.write(f'_base_ = {str(base)!r}\n{body}')
    return path


def flat(text):
    """A written config's text with its wrapped comments on one line."""
    return re.sub(r'\n#\s+', ' ', text)


def _build(model_cfg, scope='mmdet'):
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(model_cfg)


def _save_weights(config, path, meta=None):
    """A checkpoint of ``config``'s detector in MMEngine's layout, tensors
    only, random weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _build(Config.fromfile(config).model)
    torch.save({'state_dict': model.state_dict(), 'meta': meta or {}},
               str(path))
    return str(path)


@pytest.fixture(scope='module')
def teacher_ckpt(repo, tmp_path_factory):
    return _save_weights(repo.teacher_demo,
                         tmp_path_factory.mktemp('ckpt') / 'teacher.pth')


@pytest.fixture
def narrow(repo, tmp_path):
    return child(tmp_path, 'narrow_student.py', repo.student_demo, NARROW)


def write(tmp_path, teacher, student, method='vkd', ckpt=URL, **kwargs):
    out = str(tmp_path / 'out' / f'{method}_mine.py')
    plan = write_distill_config(teacher, ckpt, student, method, out,
                                **kwargs)
    return plan, Config.fromfile(out)


# --- pure helpers ------------------------------------------------------------
@pytest.mark.parametrize('size', [320, 256, 200, 129])
def test_axis_stride_of_padded_halvings(size):
    # A 3x3 stride-2 convolution with padding 1 gives floor((n - 1) / 2) + 1
    # rows: after k of them the map's stride is 2**k, down to one row.
    rows, k = size, 0
    while rows > 1:
        rows, k = (rows - 1) // 2 + 1, k + 1
        assert axis_stride(size, rows) == 2 ** k, (size, rows)
    assert axis_stride(size, size) == 1


def test_axis_stride_without_a_power_of_two():
    # A 14-pixel patch embedding: 224 / 14 = 16 rows, no halving gives 16.
    assert axis_stride(224, 16) == 14
    # 100 rows to 3: halvings give 4 (stride 32) or 2 (64), so the ratio.
    assert axis_stride(100, 3) == 33.33
    assert axis_stride(300, 3) == 128  # ceil(300 / 128) = 3


def test_pair_levels_by_stride():
    p = pair_levels([8, 16, 32], [8, 16, 32, 64, 128])
    assert p.pairs == ((0, 0), (1, 1), (2, 2))
    assert p.student_left == () and p.teacher_left == (3, 4)
    # A teacher neck one level finer (P2-P6 against P3-P7).
    p = pair_levels([8, 16, 32, 64, 128], [4, 8, 16, 32, 64])
    assert p.pairs == ((0, 1), (1, 2), (2, 3), (3, 4))
    assert p.student_left == (4, ) and p.teacher_left == (0, )
    # A stride twice in one neck: its first level, the other left out.
    p = pair_levels([8, 16], [8, 8, 16])
    assert p.pairs == ((0, 0), (1, 2)) and p.teacher_left == (1, )
    # Per-axis strides pair as a whole.
    p = pair_levels([(8, 16)], [8, (8, 16)])
    assert p.pairs == ((0, 1), ) and p.teacher_left == (0, )
    assert pair_levels([16, 32], [8, 64]).pairs == ()


def test_channels_arg():
    assert channels_arg([64, 64, 64]) == 64
    assert channels_arg([96, 1280, 512]) == [96, 1280, 512]


def test_format_value_is_the_value_and_fits():
    value = dict(type='X', levels=(0, ), ratios=[0.5, 1.0, 2e-05],
                 norm_cfg=None, flag=True, nested=dict(a='x' * 40, b=(1, 2)),
                 odd={'not a name': 1, 'class': 2})
    for width in (79, 40):
        text = format_value(value, width=width)
        assert eval(text) == value  # noqa: S307 - our own literal
        lines = text.split('\n')
        assert all(len(line) <= width for line in lines
                   if "'x" not in line), text
    assert '\n' not in format_value(dict(a=1, b=(2, )))


def test_head_class_counts():
    model = dict(rpn_head=dict(type='RPNHead', num_classes=1),
                 roi_head=dict(bbox_head=[dict(num_classes=3)] * 2,
                               mask_head=dict(num_classes=3)))
    assert head_class_counts(model) == [
        ('model.roi_head.bbox_head.0.num_classes', 3),
        ('model.roi_head.bbox_head.1.num_classes', 3),
        ('model.roi_head.mask_head.num_classes', 3)]
    assert head_class_counts(dict(bbox_head=dict(num_classes=7))) == [
        ('model.bbox_head.num_classes', 7)]


# --- pairing and channels ----------------------------------------------------
def test_three_student_levels_under_five(repo, narrow, tmp_path,
                                         monkeypatch):
    plan, cfg = write(tmp_path, repo.teacher_demo, narrow)
    d = cfg.model.distiller
    assert tuple(d.levels) == (0, 1, 2)
    assert tuple(d.teacher_levels) == (0, 1, 2)
    assert (d.student_channels, d.teacher_channels) == (32, 64)
    assert cfg.model.teacher_ckpt == URL
    text = flat(plan.text)
    assert 'teacher levels 3 (stride 64), 4 (stride 128)' in text
    assert 'a URL: not downloaded' in text
    # From any working directory: the _base_ and the teacher's config are
    # named relative to the written file.
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = Config.fromfile(plan.path)
    assert osp.samefile(cfg.model.teacher.cfg_path, repo.teacher_demo)
    assert cfg.model.architecture.neck.num_outs == 3


def test_teacher_one_level_finer(repo, tmp_path):
    # The teacher's FPN from the backbone's first stage: P2-P6 (strides 4,
    # 8, 16, 32, 64) against the student's P3-P7 (8 ... 128).
    teacher = child(tmp_path, 'fine_teacher.py', repo.teacher_demo, """
model = dict(neck=dict(start_level=0),
             bbox_head=dict(anchor_generator=dict(strides=[4, 8, 16, 32, 64])))
""")
    plan, cfg = write(tmp_path, teacher, repo.student_demo)
    d = cfg.model.distiller
    assert tuple(d.levels) == (0, 1, 2, 3)
    assert tuple(d.teacher_levels) == (1, 2, 3, 4)
    text = flat(plan.text)
    assert 'student level 4 (stride 128)' in text
    assert 'teacher level 0 (stride 4)' in text


def test_channels_per_level_ssdlite_under_retinanet(tmp_path):
    # SSDLite's neck (mmdet config): MobileNetV2 stages of strides 16 and 32
    # (96 and 1280 channels), then four stride-2 levels of 512, 256, 256 and
    # 128 channels: strides 16 ... 512. RetinaNet R50's FPN: 8 ... 128, 256
    # channels. Both COCO (80 classes, CocoDataset's METAINFO; SSDLite's
    # data under a RepeatDataset).
    student = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
    plan, cfg = write(tmp_path, R50, student, method='pkd')
    d = cfg.model.distiller
    assert tuple(d.levels) == (0, 1, 2, 3)
    assert tuple(d.teacher_levels) == (1, 2, 3, 4)
    assert list(d.student_channels) == [96, 1280, 512, 256]
    assert d.teacher_channels == 256
    assert d.connector.type == 'ConvModuleConnector'
    text = flat(plan.text)
    assert 'student levels 4 (stride 256), 5 (stride 512)' in text
    assert 'teacher level 0 (stride 8)' in text
    # SSDLite's config has custom_hooks: mmkd's are added to them.
    hooks = [h.type for h in cfg.custom_hooks]
    assert {'NumClassCheckHook', 'CheckInvalidLossHook'} <= set(hooks)
    assert MMKD_HOOKS <= set(hooks) and len(hooks) == 6
    assert 'mmkd' in cfg.custom_imports.imports
    assert student in plan.text.split('_base_ = [')[1]
    model = _build(cfg.model, 'mmrazor')
    for level, c_s in zip(d.levels, [96, 1280, 512, 256]):
        connector = model.distiller.connectors[f'fpn{level}_student']
        assert connector(torch.zeros(1, c_s, 2, 2)).shape[1] == 256


def test_coco_pair_takes_mmkd_runtime_as_a_base(tmp_path):
    # mmdet's RetinaNet configs set no custom_hooks: mmkd's runtime is a base.
    plan, cfg = write(tmp_path, R50,
                      'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py')
    assert "'mmkd::_base_/mmkd_runtime.py'," in plan.text
    assert {h.type for h in cfg.custom_hooks} == MMKD_HOOKS
    d = cfg.model.distiller
    assert tuple(d.levels) == tuple(d.teacher_levels) == (0, 1, 2, 3, 4)
    assert cfg.model.teacher.cfg_path == R50


def test_student_without_a_scope_gets_mmdets(repo, tmp_path):
    # A config of your own without mmdet:: bases has no _scope_: built from
    # the mmrazor scope, the student would not be found.
    student = child(tmp_path, 'unscoped.py', repo.student_demo,
                    'model = dict(_scope_=None)\n')
    plan, cfg = write(tmp_path, repo.teacher_demo, student)
    assert "architecture=dict(_base_.model, _scope_='mmdet')" in plan.text
    assert cfg.model.architecture._scope_ == 'mmdet'


def test_necks_without_a_common_stride_are_refused(repo, narrow, tmp_path):
    teacher = child(tmp_path, 'p2_teacher.py', repo.teacher_demo, """
model = dict(neck=dict(start_level=0, end_level=0, num_outs=1),
             bbox_head=dict(anchor_generator=dict(strides=[4])))
""")
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, teacher, narrow)
    assert 'no stride in common' in str(err.value)
    assert 'strides [8, 16, 32]' in str(err.value)
    assert 'strides [4]' in str(err.value)
    assert not osp.exists(tmp_path / 'out' / 'vkd_mine.py')


# --- classes -----------------------------------------------------------------
def test_heads_of_other_class_counts_are_refused(repo, tmp_path):
    teacher = child(tmp_path, 't3.py', repo.teacher_demo,
                    'model = dict(bbox_head=dict(num_classes=3))\n')
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, teacher, repo.student_demo)
    msg = str(err.value)
    assert f'model.bbox_head.num_classes=3 in {teacher}' in msg
    assert f'model.bbox_head.num_classes=5 in {repo.student_demo}' in msg


THREE = "('disc', 'triangle', 'cross')"


@pytest.mark.parametrize('body, key, count', [
    (f'train_dataloader = dict(dataset=dict(metainfo=dict(classes={THREE})))',
     'train_dataloader.dataset.metainfo.classes', 3),
    ('train_dataloader = dict(dataset=dict(_delete_=True, '
     "type='RepeatDataset', times=2, dataset=dict(_base_.train_dataloader."
     f'dataset, metainfo=dict(classes={THREE}))))',
     'train_dataloader.dataset.dataset.metainfo.classes', 3),
    # No metainfo: CocoDataset's own, COCO's 80 classes.
    ('train_dataloader = dict(dataset=dict(metainfo=None))',
     "CocoDataset's default METAINFO", 80),
], ids=['metainfo', 'wrapped', 'default'])
def test_head_against_dataset_classes_refused(repo, tmp_path, body, key,
                                              count):
    student = child(tmp_path, 'student.py', repo.student_demo, body + '\n')
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, repo.teacher_demo, student)
    msg = str(err.value)
    assert f'model.bbox_head.num_classes=5 in {student}' in msg
    assert key in msg and f'has {count} classes' in msg
    assert f'set model.bbox_head.num_classes={count} in {student}' in msg


def test_teacher_class_order_refused(repo, tmp_path):
    reverse = tuple(reversed(DEMO_CLASSES))
    student = child(tmp_path, 'reversed.py', repo.student_demo,
                    'train_dataloader = dict(dataset=dict(metainfo=dict('
                    f'classes={reverse!r})))\n')
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, repo.teacher_demo, student)
    msg = str(err.value)
    assert 'not the student\'s in the same order' in msg
    assert str(DEMO_CLASSES) in msg and str(reverse) in msg
    assert "class 0 is 'red_disc' in one, 'green_cross' in the other" in msg


def test_checkpoint_class_order_refused(repo, tmp_path):
    # A teacher config that states no classes; its checkpoint's meta does.
    teacher = child(tmp_path, 'unstated.py', repo.teacher_demo,
                    'train_dataloader = dict(dataset=dict(metainfo=None))\n')
    reverse = tuple(reversed(DEMO_CLASSES))
    ckpt = _save_weights(repo.teacher_demo, tmp_path / 'reversed.pth',
                         meta=dict(dataset_meta=dict(classes=reverse)))
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, teacher, repo.student_demo, ckpt=ckpt)
    assert 'meta.dataset_meta.classes' in str(err.value)
    assert str(reverse) in str(err.value)


# --- the teacher checkpoint --------------------------------------------------
def test_local_checkpoint_is_loaded_and_written_absolute(
        repo, narrow, teacher_ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(osp.dirname(teacher_ckpt))
    plan, cfg = write(tmp_path, repo.teacher_demo, narrow,
                      ckpt=osp.basename(teacher_ckpt))
    assert cfg.model.teacher_ckpt == teacher_ckpt
    assert 'loaded strictly into the teacher' in flat(plan.text)


def test_checkpoint_of_another_model_refused(repo, narrow, tmp_path):
    ckpt = _save_weights(repo.student_demo, tmp_path / 'student.pth')
    with pytest.raises(CheckpointError) as err:
        write(tmp_path, repo.teacher_demo, narrow, ckpt=ckpt)
    msg = str(err.value)
    assert 'does not fit the model' in msg and '--teacher-ckpt' in msg
    # ResNet stems: 7x7 convolutions of 3 channels into the base width
    # (the student's 16, the teacher's 32).
    assert 'backbone.conv1.weight: checkpoint (16, 3, 7, 7) vs model ' \
        '(32, 3, 7, 7)' in msg
    assert not osp.exists(tmp_path / 'out' / 'vkd_mine.py')


def test_missing_checkpoint(repo, narrow, tmp_path):
    missing = tmp_path / 'no' / 'teacher.pth'
    with pytest.raises(CheckpointError) as err:
        write(tmp_path, repo.teacher_demo, narrow, ckpt=str(missing))
    assert f'looked at {missing}' in str(err.value)


def test_unsafe_checkpoint_refused_unrun(repo, narrow, tmp_path,
                                        payload_ckpt):
    path, marker = payload_ckpt
    with pytest.raises(UnsafeCheckpointError):
        write(tmp_path, repo.teacher_demo, narrow, ckpt=path)
    assert not marker.exists()


# --- the output and the refusals before any build ----------------------------
def test_existing_out_is_kept_unless_force(repo, narrow, tmp_path):
    out = tmp_path / 'out' / 'vkd_mine.py'
    out.parent.mkdir()
    out.write_text('keep = 1\n')
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, repo.teacher_demo, narrow)
    assert 'exists' in str(err.value) and '--force' in str(err.value)
    assert out.read_text() == 'keep = 1\n'
    write(tmp_path, repo.teacher_demo, narrow, force=True)
    assert 'StrictFpnTeacherDistill' in out.read_text()
    assert [p for p in os.listdir(out.parent)] == ['vkd_mine.py']


def test_detr_and_distill_configs_refused(repo, tmp_path):
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
              repo.student_demo)
    assert 'DETR-family' in str(err.value)
    assert 'configs/vkd/vkd_dino_swin-l_r50_coco.py' in str(err.value)
    with pytest.raises(DistillConfigError) as err:
        write(tmp_path, repo.teacher_demo, repo.vkd_demo)
    assert 'is a distillation config' in str(err.value)


@pytest.mark.parametrize('change, expected', [
    (dict(method='kd'),
     "--method 'kd': choose one of vkd, srd, pkd, cwd, mgd"),
    (dict(probe_size=(16, )), '--probe-size (16,): give H [W], each an int'),
    (dict(out='STUDENT'), 'is one of the input configs'),
    (dict(out='x.yaml'), 'a config file name ends with .py'),
], ids=['method', 'probe', 'out-is-input', 'out-not-py'])
def test_options_refused_before_building(repo, narrow, tmp_path, change,
                                         expected):
    args = dict(teacher=repo.teacher_demo, teacher_ckpt=URL,
                student=narrow, method='vkd', out=str(tmp_path / 'o.py'))
    args.update(change)
    if args['out'] == 'STUDENT':
        args.update(out=narrow, force=True)
    before = open(narrow).read()
    with pytest.raises(DistillConfigError) as err:
        write_distill_config(**args)
    assert expected in str(err.value)
    assert open(narrow).read() == before


# --- every method ------------------------------------------------------------
EXPECTED = {  # method: (connector type, loss type)
    'vkd': ('ProjectorConnector', 'OrthoDistillLoss'),
    'srd': ('ProjectorConnector', 'OrthoDistillLoss'),
    'pkd': ('ConvModuleConnector', 'PKDLoss'),
    'cwd': ('ConvModuleConnector', 'ChannelWiseDivergence'),
    'mgd': ('MGDConnector', 'MGDLoss'),
}


@pytest.mark.parametrize('method', sorted(EXPECTED))
def test_each_method_builds_and_computes_its_losses(
        method, repo, narrow, teacher_ckpt, tmp_path, batch):
    _, cfg = write(tmp_path, repo.teacher_demo, narrow, method=method,
                   ckpt=teacher_ckpt)
    model = _build(cfg.model, 'mmrazor')
    connector, loss = EXPECTED[method]
    connectors = model.distiller.connectors
    assert sorted(connectors) == ['fpn0_student', 'fpn1_student',
                                  'fpn2_student']
    for name, module in connectors.items():
        assert type(module).__name__ == connector
        # 32 student channels in, the teacher's 64 out.
        assert module(torch.zeros(2, 32, 4, 4)).shape[1] == 64, name
    assert {type(m).__name__ for m in
            model.distiller.distill_losses.values()} == {loss}
    losses = model(**batch(model), mode='loss')
    for level in (0, 1, 2):
        value = losses[f'distill.loss_fpn{level}']
        assert torch.isfinite(value).all(), (method, level, value)
    assert model.teacher_loaded  # the strict load of teacher_ckpt ran


# --- the command -------------------------------------------------------------
def test_mmkd_config_is_listed(capsys):
    from mmkd.__main__ import main
    main(['list'])
    tools = capsys.readouterr().out
    assert 'config' in tools.split('tools: ')[1].strip().split(', ')
    assert 'make_distill_config' in tools


def test_cli_error_is_one_line_exit_2(repo, tmp_path):
    missing = tmp_path / 'missing.pth'
    proc = subprocess.run(
        [sys.executable, '-m', 'mmkd', 'config', '--teacher',
         repo.teacher_demo, '--teacher-ckpt', str(missing), '--student',
         repo.student_demo, '--method', 'vkd', '--out',
         str(tmp_path / 'x.py')], capture_output=True, text=True,
        cwd=repo.root, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('mmkd error: --teacher-ckpt=') and \
        str(missing) in last
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_written_config_trains(repo, narrow, tmp_path, train_tool):
    """The vkd config written for the narrow student trains 2 iterations
    through tools/train.py, run from another folder. The teacher has random
    weights (a checkpoint saved here): the teacher check runs with no bar
    (teacher_check.min_map=0)."""
    from mmkd_lab.data import ensure_dataset
    from mmkd_lab.demo import data_options
    data = ensure_dataset(str(tmp_path / 'data'), num_train=8, num_val=4,
                          seed=5)
    ckpt = _save_weights(repo.teacher_demo, tmp_path / 'teacher.pth')
    out = str(tmp_path / 'configs_mine' / 'vkd_mine.py')
    proc = subprocess.run(
        [sys.executable, osp.join(repo.tools, 'make_distill_config.py'),
         '--teacher', repo.teacher_demo, '--teacher-ckpt', ckpt,
         '--student', narrow, '--method', 'vkd', '--out', out],
        capture_output=True, text=True, cwd=repo.root, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'wrote {out} (vkd)' in proc.stdout
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2',
             'default_hooks.logger.interval=1',
             'train_dataloader.batch_size=4',
             'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0',
             'val_dataloader.persistent_workers=False',
             'teacher_check.min_map=0']
    proc = train_tool(out, tmp_path / 'work', data_options(data) + short,
                      cwd=str(elsewhere))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'distill.loss_fpn2' in log and 'coco/bbox_mAP' in log
