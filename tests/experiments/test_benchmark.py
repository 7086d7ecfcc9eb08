"""The benchmark runs (tiny setting) and its ratios come from what it
measured; the reduced-precision teacher hands float32 features on."""
import pytest
import torch
from mmengine.registry import DefaultScope

from mmkd.data import make_det_batch
from mmkd.experiments.benchmark import (
    build_method,
    format_maps,
    run_benchmark,
    setting_models,
    summarise,
    time_orthogonal_maps,
)


def test_ratios_are_computed_from_measurements():
    times = {'student': [0.10, 0.30, 0.20], 'teacher_fwd': [0.05, 0.05, 0.07],
             'vkd': [0.40, 0.26, 0.27]}
    shares = {'student': [], 'teacher_fwd': [], 'vkd': [0.01, 0.02, 0.03]}
    peak = {m: None for m in times}
    out = summarise(times, shares, peak)
    floor = 0.20 + 0.05  # medians of student and teacher_fwd
    assert out['floor']['step_s'] == pytest.approx(floor)
    assert out['vkd']['over_floor'] == pytest.approx(0.27 / floor)
    assert out['vkd']['distill_share'] == pytest.approx(0.02 / 0.27)
    assert 'over_floor' not in out['student']


def test_benchmark_runs_tiny_setting():
    out = run_benchmark('demo', size=(64, 64), batch_size=1,
                        methods=('student', 'teacher_fwd', 'vkd', 'pkd',
                                 'teacher_fwd_bf16'),
                        warmup=1, repeats=2, device='cpu')
    floor = out['student']['step_s'] + out['teacher_fwd']['step_s']
    assert 'over_floor' not in out['teacher_fwd_bf16']
    for method in ('vkd', 'pkd'):
        assert out[method]['repeats'] == 2
        assert out[method]['over_floor'] == pytest.approx(
            out[method]['step_s'] / floor)
        assert 0 < out[method]['distill_share'] < 1


@pytest.mark.parametrize('dtype', ['bfloat16'])
def test_reduced_precision_teacher_gives_float32_features(dtype):
    student, teacher, c_s, c_t = setting_models('demo')
    torch.manual_seed(0)
    full = build_method('vkd', student, teacher, c_s, c_t, 'float32')
    torch.manual_seed(0)
    half = build_method('vkd', student, teacher, c_s, c_t, dtype)
    half.load_state_dict(full.state_dict())
    data = full.data_preprocessor(make_det_batch(2, (96, 96)), True)
    feats = {}
    for name, model in (('full', full), ('half', half)):
        model.train()
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        assert all(torch.isfinite(v).all() for k, v in losses.items()
                   if k.startswith('distill'))
        rec = model.distiller.teacher_recorders.recorders['fpn_t']
        feats[name] = rec.get_record_data(0)
    for a, b in zip(feats['full'], feats['half']):
        assert b.dtype == torch.float32
        # bf16 keeps ~3 significant digits: close, not equal.
        assert not torch.equal(a, b)
        torch.testing.assert_close(b, a, rtol=0.1, atol=0.1)


def test_unknown_teacher_dtype():
    student, teacher, c_s, c_t = setting_models('demo')
    with pytest.raises(ValueError, match=r"teacher_dtype='int8'.*bfloat16"):
        with DefaultScope.overwrite_default_scope('mmdet'):
            build_method('vkd', student, teacher, c_s, c_t, 'int8')


def test_orthogonal_map_timing_covers_every_map():
    times = time_orthogonal_maps(3, 5, warmup=1, repeats=2)
    assert set(times) == {'cayley', 'matrix_exp', 'householder'}
    assert all(t > 0 for t in times.values())
    table = format_maps(dict(cayley=0.002, householder=0.006,
                             matrix_exp=0.003), 3, 5)
    # Sorted fastest first; ratios from the given times (6 / 2 = 3).
    rows = [r for r in table.splitlines()
            if r.startswith('| ') and 'ms' not in r]
    assert [r.split(' | ')[0][2:] for r in rows] == [
        'cayley', 'matrix_exp', 'householder']
    assert rows[-1].endswith('| 3.00 |')


def test_fbkd_uses_only_levels_its_pooling_can_take():
    # FBKD max-pools by 8, then sub-samples by 2: a level needs 16x16.
    # 128x128 input: P3 16x16, P4 8x8, P5 4x4 -> P3 only; 64x64: none, so
    # FBKD is left out rather than crashing the benchmark.
    from mmkd.experiments.benchmark import _fbkd_levels
    student, teacher, c_s, c_t = setting_models('demo')
    assert c_s == c_t  # equal channels in the demo pair: FBKD can run
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = build_method('student', student, teacher, c_s, c_t)
    for size, want in (((64, 64), []), ((128, 128), [0]),
                       ((512, 512), [0, 1, 2])):
        data = model.data_preprocessor(make_det_batch(1, size, seed=0), True)
        assert _fbkd_levels(model, data['inputs']) == want, size
    out = run_benchmark('demo', size=(128, 128), batch_size=1,
                        methods=('student', 'teacher_fwd', 'fbkd'),
                        warmup=0, repeats=1, device='cpu')
    assert out['fbkd']['repeats'] == 1
    out = run_benchmark('demo', size=(64, 64), batch_size=1,
                        methods=('student', 'teacher_fwd', 'fbkd'),
                        warmup=0, repeats=1, device='cpu')
    assert 'fbkd' not in out
