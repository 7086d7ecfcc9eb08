"""``mmkd config`` (mmkd.apis.distill_config, tools/make_distill_config.py):
levels paired by stride, channels set, classes and the teacher checkpoint
checked, refusals that name the reason, and a written config that loads
from anywhere and builds. The detectors are the demo's small RetinaNets
(configs/demo), varied in files written here."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import mmkd  # noqa: F401
from mmkd.apis.distill_config import (
    DistillConfigWriteError,
    Level,
    pair_by_stride,
    py_literal,
    write_distill_config,
)

CLASSES = ('disc', 'triangle', 'cross')


def _config(folder, name, base, model='', classes=CLASSES):
    text = [f"_base_ = {base!r}", f'model = dict({model})']
    if classes is not None:
        text.append(
            f'train_dataloader = dict(dataset=dict(metainfo=dict('
            f'classes={classes!r})))')
    path = folder / name
    path.write_text('\n'.join(text) + '\n')
    return str(path)


@pytest.fixture
def pair(tmp_path):
    """(teacher config, teacher checkpoint, student config) on 3 classes:
    the demo teacher (5 levels, strides 8-128, 64 channels) and a student
    of 3 levels (strides 8, 16, 32) and 32 channels."""
    teacher = _config(tmp_path, 'teacher.py',
                      'mmkd::demo/retinanet_teacher_shapes.py',
                      'bbox_head=dict(num_classes=3)')
    student = _config(
        tmp_path, 'student.py', 'mmkd::demo/retinanet_student_shapes.py',
        'neck=dict(out_channels=32, num_outs=3), bbox_head=dict('
        'num_classes=3, in_channels=32, feat_channels=32, '
        'anchor_generator=dict(strides=[8, 16, 32]))')
    return teacher, _save_weights(teacher, tmp_path / 'teacher.pth'), student


def _save_weights(config, path):
    from mmkd.apis.distill_config import _build
    model = _build(Config.fromfile(config).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)


def test_pair_by_stride_pairs_equal_strides_only():
    student = [Level(0, 32, 8), Level(1, 32, 16), Level(2, 48, 32),
               Level(3, 48, 128)]
    teacher = [Level(0, 256, 4), Level(1, 256, 8), Level(2, 256, 16),
               Level(3, 256, 32), Level(4, 256, 64)]
    pairs, lone_s, lone_t = pair_by_stride(student, teacher)
    assert [(s.index, t.index) for s, t in pairs] == [(0, 1), (1, 2), (2, 3)]
    assert [lv.index for lv in lone_s] == [3]
    assert [lv.index for lv in lone_t] == [0, 4]


def test_py_literal_is_config_source_of_the_same_value():
    value = dict(type='X', levels=(0, 1), one=(2, ), ws=[1.0, None],
                 sub=dict(name='a', flag=True))
    assert py_literal(value).startswith("dict(type='X', levels=(0, 1), ")
    assert eval(py_literal(value)) == value


def test_written_config_pairs_levels_and_loads_from_anywhere(pair, tmp_path):
    teacher, ckpt, student = pair
    out = tmp_path / 'cfgs' / 'my_vkd.py'
    out.parent.mkdir()
    found = write_distill_config(teacher, ckpt, student, 'vkd', str(out))
    assert found['levels'] == (0, 1, 2)
    assert found['teacher_levels'] == (0, 1, 2)
    assert found['unpaired_teacher'] == [3, 4]  # strides 64 and 128
    assert found['student_channels'] == [32] * 3
    assert found['teacher_channels'] == [64] * 3
    text = out.read_text()
    assert "'../student.py'" in text  # _base_: relative to the file
    assert '# Left out (no level of the same stride in the other neck): ' \
        'teacher 3 (stride 64), 4 (stride 128)' in text
    # Loaded from another working directory, it names the same files.
    code = ('import mmkd; from mmengine.config import Config; '
            f'c = Config.fromfile({str(out)!r}); '
            'print(c.model.teacher.cfg_path); print(c.model.teacher_ckpt); '
            'print(c.model.architecture.neck.out_channels)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path /
                          'cfgs'), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=''))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [teacher, ckpt, '32']
    cfg = Config.fromfile(str(out))
    assert cfg.model.distiller.connector.type == 'ProjectorConnector'
    assert 'teacher_levels' not in cfg.model.distiller  # same indices


def test_a_teacher_with_a_finer_first_level_is_paired_by_stride(tmp_path):
    """A teacher FPN from stride 4 (start_level=0: 4, 8, 16, 32, 64) under
    the demo student (8, 16, 32, 64, 128): student i <- teacher i + 1,
    the student's stride 128 and the teacher's stride 4 unpaired."""
    teacher = _config(tmp_path, 'teacher.py',
                      'mmkd::demo/retinanet_teacher_shapes.py',
                      "bbox_head=dict(num_classes=3), neck=dict("
                      "start_level=0, add_extra_convs='on_output')")
    student = _config(tmp_path, 'student.py',
                      'mmkd::demo/retinanet_student_shapes.py',
                      'bbox_head=dict(num_classes=3)')
    ckpt = _save_weights(teacher, tmp_path / 't.pth')
    found = write_distill_config(teacher, ckpt, student, 'srd',
                                 str(tmp_path / 'srd.py'))
    assert found['levels'] == (0, 1, 2, 3)
    assert found['teacher_levels'] == (1, 2, 3, 4)
    assert found['unpaired_student'] == [4]
    assert found['unpaired_teacher'] == [0]
    cfg = Config.fromfile(str(tmp_path / 'srd.py'))
    assert tuple(cfg.model.distiller.teacher_levels) == (1, 2, 3, 4)


@pytest.mark.parametrize('method, connector', [
    ('srd', 'ProjectorConnector'), ('pkd', 'ConvModuleConnector'),
    ('cwd', 'ConvModuleConnector'), ('mgd', 'MGDConnector')])
def test_every_method_writes_a_config_that_builds(pair, tmp_path, method,
                                                  connector):
    teacher, ckpt, student = pair
    out = str(tmp_path / f'{method}.py')
    write_distill_config(teacher, ckpt, student, method, out)
    cfg = Config.fromfile(out)
    assert cfg.model.distiller.connector.type == connector
    from mmkd.apis.distill_config import _build
    distiller = _build(cfg.model)
    assert len(distiller.distiller.connectors) == 3


def test_refusals_name_the_reason(pair, tmp_path):
    teacher, ckpt, student = pair

    def refused(**kwargs):
        args = dict(teacher=teacher, teacher_ckpt=ckpt, student=student,
                    method='vkd', out=str(tmp_path / 'x.py'))
        args.update(kwargs)
        with pytest.raises(DistillConfigWriteError) as info:
            write_distill_config(**args)
        assert not osp.exists(args['out']) or args['out'] == str(
            tmp_path / 'exists.py')
        return str(info.value)

    # A checkpoint of another model: the student's weights as the teacher's.
    other = _save_weights(student, tmp_path / 'student.pth')
    assert 'does not fit the model it is loaded into' in refused(
        teacher_ckpt=other)
    assert f'--teacher-ckpt {tmp_path}/nope.pth: no such file' in refused(
        teacher_ckpt=str(tmp_path / 'nope.pth'))
    five = _config(tmp_path, 'five.py',
                   'mmkd::demo/retinanet_teacher_shapes.py', '')
    message = refused(teacher=five)
    assert 'model.bbox_head.num_classes=5, but the dataset' in message
    assert 'set model.bbox_head.num_classes=3 in' in message
    reordered = _config(tmp_path, 'reordered.py',
                        'mmkd::demo/retinanet_teacher_shapes.py',
                        'bbox_head=dict(num_classes=3)',
                        classes=('cross', 'disc', 'triangle'))
    assert 'in the same order' in refused(teacher=reordered)
    # Necks without a stride in common: a teacher of stride 4 alone.
    fine = _config(tmp_path, 'fine.py',
                   'mmkd::demo/retinanet_teacher_shapes.py',
                   'bbox_head=dict(num_classes=3, anchor_generator=dict('
                   'strides=[4])), neck=dict(start_level=0, end_level=0, '
                   'num_outs=1, add_extra_convs=False)')
    message = refused(teacher=fine, teacher_ckpt='https://x/t.pth')
    assert 'no stride in common' in message and '[8, 16, 32]' in message \
        and '[4]' in message
    (tmp_path / 'exists.py').write_text('# mine\n')
    assert '--force' in refused(out=str(tmp_path / 'exists.py'))
    assert (tmp_path / 'exists.py').read_text() == '# mine\n'  # kept
    assert 'choose one of vkd, srd, pkd, cwd, mgd' in refused(method='kd')


def test_the_tool_prints_the_pairing_and_errors_plainly(pair, tmp_path):
    teacher, ckpt, student = pair
    tool = [sys.executable, '-m', 'mmkd', 'config', '--teacher', teacher,
            '--teacher-ckpt', ckpt, '--student', student, '--method', 'vkd',
            '--out', str(tmp_path / 'v.py')]
    env = dict(os.environ, PYTHONPATH=osp.join(
        osp.dirname(osp.abspath(__file__)), 'offline'))
    proc = subprocess.run(tool, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'student levels (0, 1, 2) <- teacher levels (0, 1, 2)' in \
        proc.stdout
    again = subprocess.run(tool, capture_output=True, text=True, env=env)
    assert again.returncode == 2
    assert again.stderr.startswith('mmkd error: --out ')
