"""The benchmark runs (tiny setting) and its ratios come from what it
measured; the reduced-precision teacher hands float32 features on."""
import math
import time
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import DefaultScope
from torch.nn.utils import parametrizations

from mmkd.models.connectors.projector_connector import ORTHOGONAL_MAPS
from mmkd_lab import benchmark
from mmkd_lab.benchmark import (
    build_method,
    format_maps,
    run_benchmark,
    setting_models,
    summarise,
    time_orthogonal_maps,
)
from mmkd_lab.data import make_det_batch


def test_ratios_are_computed_from_measurements():
    times = {'student': [0.10, 0.30, 0.20], 'teacher_fwd': [0.05, 0.05, 0.07],
             'vkd': [0.40, 0.26, 0.27], 'teacher_fwd_bf16': [0.04, 0.03]}
    shares = {'student': [], 'teacher_fwd': [], 'vkd': [0.01, 0.02, 0.03],
              'teacher_fwd_bf16': []}
    peak = {m: None for m in times}
    peak['vkd'] = 3 * 2**20  # bytes
    out = summarise(times, shares, peak)
    # By hand: medians 0.20 (student) + 0.05 (teacher_fwd) = 0.25;
    # vkd 0.27 / 0.25 = 1.08 of the floor, distillation 0.02 / 0.27.
    assert out['floor']['step_s'] == pytest.approx(0.25)
    assert out['vkd']['step_s'] == 0.27 and out['vkd']['repeats'] == 3
    assert out['vkd']['over_floor'] == pytest.approx(1.08)
    assert out['vkd']['distill_share'] == pytest.approx(0.0740740741)
    assert out['vkd']['peak_mb'] == 3.0
    assert out['teacher_fwd_bf16']['step_s'] == pytest.approx(0.035)
    for method in ('student', 'teacher_fwd', 'teacher_fwd_bf16'):
        assert 'over_floor' not in out[method], method
        assert 'distill_share' not in out[method], method
        assert out[method]['peak_mb'] is None


# Seconds each step takes on a fake clock (on top of the real step, which
# still runs), and the part of it spent in the distiller's connectors and
# losses; binary fractions, so that every sum and difference is exact.
FAKE_STEP_S = {'student': 0.25, 'teacher_fwd': 0.125,
               'teacher_fwd_bf16': 0.0625, 'vkd': 0.5, 'pkd': 0.75}
FAKE_DISTILL_S = {'vkd': 0.125, 'pkd': 0.25}


def test_benchmark_runs_tiny_setting(monkeypatch):
    """The real tiny benchmark on a fake clock: every step (and every
    connectors+losses computation) advances it by a known time, so each
    number in the summary is known by hand."""
    clock = [0.0]
    calls = {m: 0 for m in FAKE_STEP_S}
    make_step = benchmark.make_step

    def fake_make_step(method, model, data):
        step = make_step(method, model, data)
        if hasattr(model, 'distiller'):
            compute = model.distiller.compute_distill_losses

            def timed_compute():
                losses = compute()
                clock[0] += FAKE_DISTILL_S[method]
                return losses
            model.distiller.compute_distill_losses = timed_compute

        def timed_step():
            step()
            calls[method] += 1
            clock[0] += FAKE_STEP_S[method]
        return timed_step

    monkeypatch.setattr(benchmark, 'make_step', fake_make_step)
    monkeypatch.setattr(benchmark, 'time',
                        SimpleNamespace(perf_counter=lambda: clock[0]))
    out = run_benchmark('demo', size=(64, 64), batch_size=1,
                        methods=('student', 'teacher_fwd', 'vkd', 'pkd',
                                 'teacher_fwd_bf16'),
                        warmup=1, repeats=2, device='cpu')
    # 1 warm-up round + 2 timed ones, each method once per round.
    assert calls == {m: 3 for m in FAKE_STEP_S}
    assert set(out) == set(FAKE_STEP_S) | {'floor'}
    assert all(out[m]['repeats'] == 2 for m in FAKE_STEP_S)
    # A distiller's step runs its connectors and losses once: 0.5 + 0.125.
    assert out['vkd']['step_s'] == 0.625
    assert out['pkd']['step_s'] == 1.0
    assert out['student']['step_s'] == 0.25
    assert out['teacher_fwd_bf16']['step_s'] == 0.0625
    assert out['floor']['step_s'] == 0.375  # 0.25 + 0.125
    assert out['vkd']['over_floor'] == pytest.approx(5 / 3)  # .625 / .375
    assert out['pkd']['over_floor'] == pytest.approx(8 / 3)  # 1 / .375
    assert out['vkd']['distill_share'] == pytest.approx(0.2)  # .125 / .625
    assert out['pkd']['distill_share'] == pytest.approx(0.25)  # .25 / 1
    assert 'over_floor' not in out['teacher_fwd_bf16']
    assert all(out[m]['peak_mb'] is None for m in FAKE_STEP_S)  # CPU


@pytest.mark.parametrize('dtype', ['bfloat16'])
def test_reduced_precision_teacher_gives_float32_features(dtype):
    student, teacher, c_s, c_t = setting_models('demo')
    torch.manual_seed(0)
    full = build_method('vkd', student, teacher, c_s, c_t, 'float32')
    torch.manual_seed(0)
    half = build_method('vkd', student, teacher, c_s, c_t, dtype)
    half.load_state_dict(full.state_dict())
    data = full.data_preprocessor(make_det_batch(2, (96, 96)), True)
    feats, distill = {}, {}
    for name, model in (('full', full), ('half', half)):
        model.train()
        losses = model(data['inputs'], data['data_samples'], mode='loss')
        distill[name] = {k: v.item() for k, v in losses.items()
                         if k.startswith('distill')}
        rec = model.distiller.teacher_recorders.recorders['fpn_t']
        feats[name] = rec.get_record_data(0)
    # The same teacher, run by hand under bf16 autocast: what the recorder
    # handed on is exactly that, cast to float32.
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        by_hand = half.teacher.extract_feat(data['inputs'])
    assert len(feats['half']) == len(by_hand) == 5
    for a, b, c in zip(feats['full'], feats['half'], by_hand):
        assert b.dtype == torch.float32 and c.dtype == torch.bfloat16
        assert torch.equal(b, c.float())
        # Against float32: bf16 rounds to 8 significant bits (unit roundoff
        # 2**-8 = 0.0039); through the teacher's layers the relative error
        # |b - a| / |a| of each level measured 0.0065 to 0.0092. Bounds: well
        # above float32 or float16 rounding, ~3x below what was measured.
        rel = ((b - a).norm() / a.norm()).item()
        assert 0.002 < rel < 0.03, rel
    # The distillation losses move with the teacher's features: measured
    # relative differences 8e-5 to 2.1e-3 (the 1x1 level): within 4x that.
    assert distill['half'].keys() == distill['full'].keys()
    assert len(distill['full']) == 5
    for key, value in distill['full'].items():
        assert distill['half'][key] == pytest.approx(value, rel=8e-3), key


def test_unknown_teacher_dtype():
    student, teacher, c_s, c_t = setting_models('demo')
    with pytest.raises(ValueError, match=r"teacher_dtype='int8'.*bfloat16"):
        with DefaultScope.overwrite_default_scope('mmdet'):
            build_method('vkd', student, teacher, c_s, c_t, 'int8')


SLOW_S = 0.05


def test_orthogonal_map_timing_covers_every_map(monkeypatch):
    # The real clock, with the Cayley map's evaluation slowed by SLOW_S: the
    # time reported for it includes the sleep. (How the others compare is
    # left alone: on a shared 2-core machine a 3x5 map took 0.6 to 46 ms.)
    evaluate = parametrizations._Orthogonal.forward

    def forward(self, *args):
        if self.orthogonal_map.name == 'cayley':
            time.sleep(SLOW_S)
        return evaluate(self, *args)
    monkeypatch.setattr(parametrizations._Orthogonal, 'forward', forward)
    times = time_orthogonal_maps(3, 5, warmup=1, repeats=2)
    assert set(times) == set(ORTHOGONAL_MAPS) == {
        'cayley', 'matrix_exp', 'householder'}
    for t in times.values():
        assert isinstance(t, float) and math.isfinite(t) and t > 0
    assert times['cayley'] >= SLOW_S


# Fake seconds per map: each evaluation of W advances the clock by EVAL_S,
# each backward through it by the next of BACKWARD_S (1 warm-up round, then
# 3 timed ones; the warm-up's 100 s must not count).
EVAL_S = {'cayley': 0.25, 'matrix_exp': 0.5, 'householder': 0.0625}
BACKWARD_S = {'cayley': [100, 0.125, 1.0, 0.5],
              'matrix_exp': [100, 2.0, 1.0, 1.5],
              'householder': [100, 0.0625, 0.0625, 4.0]}


def test_orthogonal_map_timing_is_the_median_of_each_maps_own_steps(
        monkeypatch):
    clock = [0.0]
    backwards = {m: 0 for m in BACKWARD_S}
    evaluate = parametrizations._Orthogonal.forward

    def forward(self, *args):
        name = self.orthogonal_map.name
        weight = evaluate(self, *args)
        clock[0] += EVAL_S[name]
        if weight.requires_grad:
            def backward(grad):
                clock[0] += BACKWARD_S[name][backwards[name]]
                backwards[name] += 1
            weight.register_hook(backward)
        return weight
    monkeypatch.setattr(parametrizations._Orthogonal, 'forward', forward)
    monkeypatch.setattr(benchmark, 'time',
                        SimpleNamespace(perf_counter=lambda: clock[0]))
    times = time_orthogonal_maps(3, 5, warmup=1, repeats=3)
    assert backwards == {m: 4 for m in BACKWARD_S}
    # Medians of evaluation + backward over the timed rounds, by hand:
    # cayley .375, 1.25, .75; matrix_exp 2.5, 1.5, 2; householder .125,
    # .125, 4.0625.
    assert times == {'cayley': 0.75, 'matrix_exp': 2.0, 'householder': 0.125}
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
    from mmkd_lab.benchmark import _fbkd_levels
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


def test_dino_setting_floor_includes_the_teachers_decoder(monkeypatch):
    """DINO: the floor's teacher pass runs the teacher's decoder (query
    pairing needs its queries), the tokens-only pass stops at the encoder;
    the VkD step carries the distillation points in the student's one
    decoder call (twice for the second-pass variants); each DETR row's
    decomposition adds up to its step."""
    calls = {}
    build = benchmark.build_detr_method

    def counted(method, setting):
        model = build(method, setting)
        student = model if method == 'student' else model.student
        modules = dict(decoder=student.decoder)
        if method != 'student':
            modules.update({'teacher.decoder': model.teacher.decoder,
                            'teacher.encoder': model.teacher.encoder})
        calls[method] = dict.fromkeys(modules, 0)
        for key, module in modules.items():
            def hook(*_, key=key, method=method):
                calls[method][key] += 1
            module.register_forward_hook(hook)
        return model

    monkeypatch.setattr(benchmark, 'build_detr_method', counted)
    out = run_benchmark('dino_demo', size=(128, 128), batch_size=1,
                        warmup=0, repeats=1, device='cpu')
    assert set(out) == set(benchmark.DETR_METHODS) | {'floor',
                                                      'floor_tokens'}
    assert calls['teacher_fwd']['teacher.decoder'] == 1
    assert calls['teacher_fwd_tokens']['teacher.encoder'] == 1
    assert calls['teacher_fwd_tokens']['teacher.decoder'] == 0
    assert calls['vkd']['decoder'] == 1  # the points ride in its own call
    assert calls['vkd_quarter_points']['decoder'] == 1
    assert calls['vkd_quarter_general']['decoder'] == 1
    assert calls['vkd_score_weights']['decoder'] == 1
    assert calls['vkd_second_pass']['decoder'] == 2
    assert calls['vkd_old']['decoder'] == 2
    assert calls['vkd_tokens']['decoder'] == 1
    for method in ('vkd', 'vkd_second_pass', 'vkd_old'):
        row = out[method]
        total = (out['floor']['step_s'] + row['points_s'] +
                 row['distill_share'] * row['step_s'])
        assert total == pytest.approx(row['step_s'])
    table = benchmark.format_table(out, 'dino')
    assert '| vkd_old |' in table and 'distillation points' in table
    assert calls['student']['decoder'] == 1
    assert out['floor']['step_s'] == pytest.approx(
        out['student']['step_s'] + out['teacher_fwd']['step_s'])
    assert out['floor_tokens']['step_s'] == pytest.approx(
        out['student']['step_s'] + out['teacher_fwd_tokens']['step_s'])
    for method, floor in (('vkd', 'floor'), ('vkd_tokens', 'floor_tokens')):
        assert out[method]['over_floor'] == pytest.approx(
            out[method]['step_s'] / out[floor]['step_s'])
        assert 0 < out[method]['distill_share'] < 1


def test_dino_variants_are_built_as_named():
    """The KD-DETR variants: a quarter of the 100 queries (25) plus an
    eighth as many random points (12); every point with the teacher's score
    as its weight (a teacher-side scores recorder fed to the query loss)."""
    sampled = benchmark.build_detr_method('vkd_quarter_general', 'dino_demo')
    assert (sampled.num_points, sampled.num_general) == (25, 12)
    weighted = benchmark.build_detr_method('vkd_score_weights', 'dino_demo')
    assert (weighted.num_points, weighted.num_general) == (None, 0)
    mapping = weighted.distiller.loss_forward_mappings['loss_query']
    assert mapping['weight']['recorder'] == 'query_w'
    recorder = weighted.distiller.teacher_recorders.get_recorder('query_w')
    assert type(recorder).__name__ == 'DetrQueryScoresRecorder'
    plain = benchmark.build_detr_method('vkd', 'dino_demo')
    assert 'weight' not in plain.distiller.loss_forward_mappings['loss_query']
