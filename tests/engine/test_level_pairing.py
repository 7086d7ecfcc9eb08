"""Teacher and student necks of different level counts and strides:
FpnDistiller's ``teacher_levels`` pairs them, and the pairing is checked
before the first step with the key to fix (mmkd/distill.py,
mmkd/engine/guards.py)."""
import pytest
import torch

from mmkd.data import make_det_batch
from mmkd.distill import fpn_distiller_cfg
from mmkd.engine import check_distiller_shapes

PKD = dict(type='PKDLoss', loss_weight=1.0)
CWD = dict(type='ChannelWiseDivergence', tau=1.0, loss_weight=1.0)


def test_teacher_levels_pair_student_levels_in_order():
    cfg = fpn_distiller_cfg(levels=(0, 1, 2, 3), teacher_levels=(1, 2, 3, 4),
                            student_channels=64, teacher_channels=(64, 64,
                                                                   64, 128),
                            connector=dict(type='ProjectorConnector'),
                            loss=dict(type='OrthoDistillLoss'))
    mappings = cfg['loss_forward_mappings']
    assert sorted(mappings) == [f'loss_fpn{i}' for i in range(4)]
    for level, teacher_level in zip((0, 1, 2, 3), (1, 2, 3, 4)):
        mapping = mappings[f'loss_fpn{level}']
        assert mapping['preds_S']['data_idx'] == level
        assert mapping['preds_S']['from_student'] is True
        assert mapping['preds_T']['data_idx'] == teacher_level
        assert mapping['preds_T']['from_student'] is False
    # Channels follow the pairs: the last projector maps 64 -> 128.
    assert cfg['connectors']['fpn3_student']['out_channels'] == 128
    # Without teacher_levels each level is paired with itself.
    same = fpn_distiller_cfg(levels=(2, 4), student_channels=8,
                             teacher_channels=8, loss=PKD)
    assert [m['preds_T']['data_idx']
            for m in same['loss_forward_mappings'].values()] == [2, 4]


@pytest.mark.parametrize('kwargs, match', [
    (dict(levels=(0, 1, 2), teacher_levels=(0, 1)),
     r'levels=\[0, 1, 2\] and teacher_levels=\[0, 1\] pair 3 student '
     r'levels with 2'),
    (dict(levels=(0, 1), teacher_levels=(1, 1)),
     r'teacher_levels=\[1, 1\]: expected distinct'),
    (dict(levels=(0, -1)), r'levels=\[0, -1\]: expected distinct'),
])
def test_pairing_errors_name_the_keys(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fpn_distiller_cfg(student_channels=8, teacher_channels=8, loss=PKD,
                          **kwargs)


def test_level_past_the_student_neck_is_named_before_training(demo_distiller):
    algo = demo_distiller(student_outs=4, levels=(0, 1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"levels asks for output 4 of the "
                       r"student's 'fpn_s' recorder, which gives 4 "
                       r'\(indices 0-3\): set levels to indices below 4'):
        check_distiller_shapes(algo)


def test_level_past_the_teacher_neck_is_named_before_training(demo_distiller):
    algo = demo_distiller(levels=(0, 1), teacher_levels=(3, 5))
    with pytest.raises(ValueError, match=r"teacher_levels asks for output 5 "
                       r"of the teacher's 'fpn_t' recorder, which gives 5"):
        check_distiller_shapes(algo)


@pytest.mark.parametrize('loss, ok', [
    (CWD, False),  # needs maps of one size
    (PKD, True),  # MMRazor's PKDLoss resizes the student (resize_stu=True)
    (dict(type='OrthoDistillLoss', resize='student'), True),
    (dict(type='OrthoDistillLoss', resize='none'), False),
])
def test_levels_of_different_strides(loss, ok, demo_distiller):
    # Student P3, P4 (16x16, 8x8) against teacher P4, P5 (8x8, 4x4).
    algo = demo_distiller(levels=(0, 1), teacher_levels=(1, 2), loss=loss,
                          connector=None)
    if ok:
        check_distiller_shapes(algo)
        return
    with pytest.raises(ValueError, match=r'size \(16, 16\) with a teacher '
                       r'map of size \(8, 8\).*teacher_levels'):
        check_distiller_shapes(algo)


def test_four_level_student_under_five_level_teacher_trains(demo_distiller):
    """The distillation gradient reaches the student through each pair,
    and each loss compares the levels it names (checked by value)."""
    algo = demo_distiller(student_outs=4, levels=(0, 1, 2, 3),
                          teacher_levels=(0, 1, 2, 3),
                          loss=dict(type='OrthoDistillLoss', norm='none',
                                    distance='l2', loss_weight=1.0),
                          connector=None)
    check_distiller_shapes(algo)
    data = algo.data_preprocessor(make_det_batch(2, (128, 128), seed=0),
                                  True)
    losses = algo.loss(data['inputs'], data['data_samples'])
    names = sorted(k for k in losses if k.startswith('distill.'))
    assert names == [f'distill.loss_fpn{i}' for i in range(4)]
    with torch.no_grad():
        s = algo.student.extract_feat(data['inputs'])
        t = algo.teacher.extract_feat(data['inputs'])
    assert len(s) == 4 and len(t) == 5
    for i in range(4):
        # distance 'l2' is d^2, norm 'none', reduction 'mean'.
        want = ((s[i] - t[i]) ** 2).mean()
        got = losses[f'distill.loss_fpn{i}'].detach()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=0)
    total = sum(v for k, v in losses.items() if k.startswith('distill.'))
    total.backward()
    grads = [p.grad for p in algo.student.neck.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
