"""Teacher and student necks of different level counts and strides:
FpnDistiller's ``teacher_levels`` pairs them, and the pairing is checked
before the first step with the key to fix (mmkd/distill.py,
mmkd/engine/guards.py): maps paired across strides are refused unless the
distiller asks for it (``resize_across_strides=True``)."""
import pytest
import torch

from mmkd.distill import fpn_distiller_cfg
from mmkd.engine import check_distiller_shapes
from mmkd.engine.guards import differ_by_stride
from mmkd_lab.data import make_det_batch

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


@pytest.mark.parametrize('loss', [
    PKD,  # MMRazor's PKDLoss resizes the student (resize_stu=True)
    dict(type='OrthoDistillLoss', resize='student'),
])
def test_levels_paired_across_strides_need_an_explicit_request(
        loss, demo_distiller):
    """Student P3, P4 (16x16, 8x8) against teacher P4, P5 (8x8, 4x4): a
    loss that resizes would train on it silently (a wrong teacher_levels
    is the usual cause), so the check refuses it, naming the term, both
    sizes and both fixes, unless the distiller asks for it."""
    algo = demo_distiller(levels=(0, 1), teacher_levels=(1, 2), loss=loss,
                          connector=None)
    with pytest.raises(ValueError) as info:
        check_distiller_shapes(algo)
    message = str(info.value)
    for part in ("'loss_fpn0'", 'size (16, 16)', 'size (8, 8)',
                 'differ by a stride', 'teacher_levels',
                 'resize_across_strides=True'):
        assert part in message, part
    asked = demo_distiller(levels=(0, 1), teacher_levels=(1, 2), loss=loss,
                           connector=None, resize_across_strides=True)
    check_distiller_shapes(asked)


@pytest.mark.parametrize('loss', [
    CWD, dict(type='OrthoDistillLoss', resize='none')])
def test_levels_of_different_sizes_need_a_loss_that_resizes(
        loss, demo_distiller):
    algo = demo_distiller(levels=(0, 1), teacher_levels=(1, 2), loss=loss,
                          connector=None, resize_across_strides=True)
    with pytest.raises(ValueError, match=r'size \(16, 16\) with a teacher '
                       r'map of size \(8, 8\).*cannot resize.*teacher_levels'):
        check_distiller_shapes(algo)


@pytest.mark.parametrize('size_s, size_t, by_stride', [
    ((16, 16), (8, 8), True),  # one stride apart
    ((25, 25), (13, 13), True),  # odd input: ceil(25 / 2)
    ((25, 25), (26, 26), False),  # the same stride, rounded otherwise
    ((13, 20), (13, 21), False),
    ((4, 4), (4, 4), False),
    ((40, 40), (40, 20), True),  # one side is enough
])
def test_differ_by_stride(size_s, size_t, by_stride):
    assert differ_by_stride(size_s, size_t) is by_stride


def test_sizes_that_differ_by_rounding_pass(demo_distiller, monkeypatch):
    """Maps of one stride whose sizes differ by one position (padding
    rounded otherwise in the two models) pass for a loss that resizes."""
    algo = demo_distiller(levels=(0, ), loss=PKD, connector=None)
    extract = algo.teacher.extract_feat

    def padded(x):
        feats = extract(x)
        return (torch.nn.functional.pad(feats[0], (0, 1, 0, 1)),
                *feats[1:])

    monkeypatch.setattr(algo.teacher, 'extract_feat', padded)
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
