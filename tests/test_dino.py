"""DINO distillation: the DETR recorders, the query pairing rule (the
teacher's queries through the student's decoder), the loss against a formula
written here, and the DINO configs training at demo size with distillation
gradients reaching the student's decoder."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope
from torch import nn

from mmkd.engine import check_distiller_shapes
from mmkd.models import DetrDecoderQueriesRecorder, DetrEncoderLevelsRecorder
from mmkd.models.algorithms.dino_teacher_distill import group_attention_mask
from mmkd_lab.data import make_det_batch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs', 'demo', 'dino')
# The full recipe; the tokens-only config is its subset (built offline in
# tests/test_configs.py, its terms checked there).
COCO = osp.join(ROOT, 'configs', 'vkd', 'vkd_dino_swin-l_r50_coco.py')


# DinoTeacherDistill's own arguments; the fixture's other keywords go to the
# distiller.
ALGORITHM_KEYS = ('query_input', 'probe', 'num_points', 'num_general')


def _build(path, offline_model_cfg, num_classes=None, **distiller):
    cfg = Config.fromfile(path)
    model = offline_model_cfg(cfg.model)
    for key in ALGORITHM_KEYS:
        if key in distiller:
            model[key] = distiller.pop(key)
    model.distiller.update(distiller)
    if num_classes:
        for detector in (model.architecture, model.teacher):
            detector.bbox_head.num_classes = num_classes
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        algo = MODELS.build(model)
    algo.init_weights()
    return algo.train()


@pytest.fixture
def dino(offline_model_cfg):
    """``dino(name='vkd_dino_shapes.py', **kwargs)``: a demo DINO
    distiller with a random teacher, in train mode; ``kwargs`` update the
    distiller, or the algorithm for ``ALGORITHM_KEYS``."""
    def build(name='vkd_dino_shapes.py', **distiller):
        return _build(osp.join(DEMO, name), offline_model_cfg, **distiller)
    return build


def _batch(algo, seed=0, n=2, size=(128, 128)):
    data = algo.data_preprocessor(make_det_batch(n, size, seed=seed), True)
    return data['inputs'], data['data_samples']


class _Calls:
    """Every call of a module: keyword arguments and output."""

    def __init__(self, module):
        self.calls = []
        self.handle = module.register_forward_hook(self._hook,
                                                   with_kwargs=True)

    def _hook(self, module, args, kwargs, out):
        self.calls.append((kwargs, out))


def _loss(algo, seed=0, size=(128, 128)):
    torch.manual_seed(seed)  # DINO's denoising queries are random
    inputs, samples = _batch(algo, seed, size=size)
    return algo.loss(inputs, samples)


# --- recorders ---------------------------------------------------------------
class _Echo(nn.Module):
    def forward(self, query, **kwargs):
        return query * 1.0


def test_encoder_levels_lays_tokens_back_on_their_grids():
    maps = [torch.randn(2, 8, 4, 6), torch.randn(2, 8, 2, 3),
            torch.randn(2, 8, 1, 1)]
    # DETR flattening (mmdet's pre_transformer): (B, C, H, W) -> (B, HW, C),
    # scales concatenated in order.
    tokens = torch.cat([m.flatten(2).transpose(1, 2) for m in maps], 1)
    parent = nn.Module()
    parent.encoder = _Echo()
    recorder = DetrEncoderLevelsRecorder('encoder')
    recorder.initialize(parent)
    with recorder:
        parent.encoder(query=tokens, spatial_shapes=torch.tensor(
            [[4, 6], [2, 3], [1, 1]]))
    for i, m in enumerate(maps):
        assert torch.equal(recorder.get_record_data(0, i), m)
    with pytest.raises(IndexError, match='record_idx=1'):
        recorder.get_record_data(1, 0)


def test_decoder_queries_drop_denoising_queries():
    layers, batch, dn, n, c = 3, 2, 4, 5, 8
    states = torch.randn(layers, batch, dn + n, c)

    class Decoder(nn.Module):
        def forward(self, query, self_attn_mask=None, **kwargs):
            return states, None

    # DINO's rule (CdnQueryGenerator.generate_dn_mask): True = blocked; a
    # matching query may not see a denoising one.
    mask = torch.zeros(dn + n, dn + n, dtype=torch.bool)
    mask[dn:, :dn] = True
    mask[:2, 2:dn] = mask[2:dn, :2] = True  # two denoising groups
    parent = nn.Module()
    parent.decoder = Decoder()
    recorder = DetrDecoderQueriesRecorder('decoder')
    recorder.initialize(parent)
    with recorder:
        parent.decoder(query=None, self_attn_mask=mask)
        parent.decoder(query=None)  # no denoising (eval, or the probe)
    for layer in range(layers):
        want = states[layer, :, dn:].permute(0, 2, 1)[..., None]
        assert torch.equal(recorder.get_record_data(0, layer), want)
        want = states[layer].permute(0, 2, 1)[..., None]
        assert torch.equal(recorder.get_record_data(1, layer), want)


# --- the pairing rule --------------------------------------------------------
def test_group_attention_mask_separates_the_group():
    own = torch.tensor([[False, True, False],
                        [True, False, False],
                        [True, True, False]])  # a DINO-like dn mask
    mask = group_attention_mask(own, own=3, group=2, device='cpu')
    want = torch.ones(5, 5, dtype=torch.bool)  # True = blocked
    want[:3, :3] = own
    want[3:, 3:] = False  # the group sees itself whole, as the teacher does
    assert torch.equal(mask, want)
    no_dn = group_attention_mask(None, own=2, group=1, device='cpu')
    assert no_dn.tolist() == [[False, False, True], [False, False, True],
                              [True, True, False]]


def test_distillation_points_ride_in_the_students_decoder_call(dino):
    """The teacher's queries (content query and reference point, as the
    teacher's decoder received them) are a further group of the student's
    single decoder call, on the student's memory, masked from its
    denoising and matching queries; the student's head sees its own queries
    only."""
    algo = dino()
    n = algo.student.num_queries
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    head_args = []
    algo.student.bbox_head.register_forward_hook(
        lambda module, args, out: head_args.append(args))
    losses = _loss(algo)
    # The teacher once, in eval mode: no denoising queries.
    assert len(teacher.calls) == 1
    t_kwargs = teacher.calls[0][0]
    assert t_kwargs['self_attn_mask'] is None
    assert t_kwargs['query'].shape[1] == n
    # The student once: [denoising | matching | the teacher's queries].
    assert len(student.calls) == 1
    call = student.calls[0][0]
    total = call['query'].shape[1]
    own = total - n
    assert own > n  # denoising queries in front of its own
    assert torch.equal(call['query'][:, own:], t_kwargs['query'])
    assert torch.equal(call['reference_points'][:, own:],
                       t_kwargs['reference_points'])
    refs = t_kwargs['reference_points']
    assert not torch.equal(refs[0], refs[1])  # proposals of each image
    mask = call['self_attn_mask']
    assert mask[:own, own:].all() and mask[own:, :own].all()
    assert not mask[own:, own:].any()
    # The student's own dn mask is kept in front.
    assert mask[own - 1, :own].sum() > 0
    # The head gets the student's own queries (and boxes) only.
    states, references = student.calls[0][1]
    hidden, head_refs = head_args[0]
    assert torch.equal(hidden, states[:, :, :own])
    assert len(head_refs) == len(references)
    for got, full in zip(head_refs, references):
        assert torch.equal(got, full[:, :own])
    # Records: 0 = its own matching queries, 1 = the group (pooled layers).
    recorder = algo.distiller.student_recorders.get_recorder('query_s')
    layers = algo.student.decoder.num_layers
    pooled_own = torch.cat([states[i][:, own - n:own] for i in range(layers)],
                           1)
    pooled_group = torch.cat([states[i][:, own:] for i in range(layers)], 1)
    torch.testing.assert_close(
        recorder.get_record_data(0, 0)[..., 0].transpose(1, 2), pooled_own)
    torch.testing.assert_close(
        recorder.get_record_data(1, 0)[..., 0].transpose(1, 2), pooled_group)
    assert recorder.group_size == 0  # reset after the call
    assert {k for k in losses if k.startswith('distill.loss_query')} == {
        'distill.loss_query'}


def test_the_group_leaves_the_students_own_loss(dino):
    """DINO's student losses with the distillation group in its decoder call
    equal those of the student alone (same batch, same denoising draw)."""
    algo = dino()
    inputs, samples = _batch(algo)
    torch.manual_seed(3)
    with_group = algo.loss(inputs, samples)
    torch.manual_seed(3)
    alone = algo.student.loss(inputs, samples)
    for key, value in alone.items():
        torch.testing.assert_close(with_group[f'student.{key}'], value,
                                   rtol=1e-4, atol=1e-5)


def test_probe_sees_the_students_padding(dino):
    """Images of different sizes in one batch: the distillation group rides
    in the student's own call, so it gets the student's padding mask, valid
    ratios and scales; so does a second pass (``probe='second_pass'``)."""
    for probe in ('group', 'second_pass'):
        algo = dino(probe=probe)
        raw = make_det_batch(2, (128, 128), seed=0)
        raw['inputs'][1] = raw['inputs'][1][:, :96].contiguous()  # 96x128
        sample = raw['data_samples'][1]
        sample.set_metainfo(dict(img_shape=(96, 128), ori_shape=(96, 128)))
        sample.gt_instances = sample.gt_instances[
            sample.gt_instances.bboxes[:, 3] <= 96]
        data = algo.data_preprocessor(raw, True)
        student = _Calls(algo.student.decoder)
        torch.manual_seed(0)
        algo.loss(data['inputs'], data['data_samples'])
        own = student.calls[0][0]
        assert own['key_padding_mask'] is not None
        assert own['key_padding_mask'][1].any()  # the padded image
        assert not own['key_padding_mask'][0].any()
        assert (own['valid_ratios'][1] < 1).any()
        assert len(student.calls) == (1 if probe == 'group' else 2)
        probe_call = student.calls[-1][0]
        for key in ('key_padding_mask', 'valid_ratios', 'spatial_shapes',
                    'level_start_index', 'value'):
            assert torch.equal(probe_call[key], own[key]), key


def _standardise(x):
    """(B, N, C) -> each channel standardised over all B*N tokens."""
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(0)
    var = ((flat - mean)**2).mean(0)
    return (x - mean) / torch.sqrt(var + 1e-5)


def _group_states(call, n):
    """Decoder outputs (L, B, K, C) of the distillation group of a call."""
    return call[1][0][:, :, -n:]


def _query_run(algo):
    """One training loss of ``algo``, with the student's decoder outputs on
    the distillation points and the teacher's, each (L, B, N, C)."""
    n = algo.student.num_queries
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    losses = _loss(algo)
    return (losses, _group_states(student.calls[0], n),
            teacher.calls[0][1][0])


def test_query_loss_is_vkd_on_pooled_layers(dino):
    """loss_query = 4.0 * mean smooth-L1 between the batch-standardised
    projected student outputs on the distillation points and the teacher's,
    every decoder layer pooled (statistics over layers x queries x batch),
    query n with query n."""
    algo = dino()
    losses, s, t = _query_run(algo)
    w = algo.distiller.connectors['query_student'].proj.weight
    pooled_s = torch.cat(list(s), 1) @ w.T  # (B, L*N, C)
    pooled_t = torch.cat(list(t), 1)
    want = 4.0 * F.smooth_l1_loss(_standardise(pooled_s),
                                  _standardise(pooled_t), beta=1.0)
    torch.testing.assert_close(losses['distill.loss_query'], want,
                               rtol=1e-4, atol=1e-6)
    # Not the mean of per-layer terms (those standardise each layer alone).
    per_layer = sum(F.smooth_l1_loss(_standardise(s[i] @ w.T),
                                     _standardise(t[i]))
                    for i in range(len(s))) * 4.0 / len(s)
    assert abs(float(per_layer) - float(want)) > 1e-4


def test_query_weights_are_the_teachers_top_class_scores(dino):
    """``weights='teacher_score'``: each distillation point's term weighted
    by the teacher's top class score on it (KD-DETR), max over classes of
    the sigmoid of the teacher's last decoder layer's classifier, the same
    weight for the point in every pooled layer; a weighted mean over points
    of the per-point mean smooth-L1, statistics unweighted."""
    algo = dino(queries=dict(levels=(0, 1, 2), weights='teacher_score'))
    losses, s, t = _query_run(algo)
    layers = t.shape[0]
    w = algo.distiller.connectors['query_student'].proj.weight
    head = algo.teacher.bbox_head
    score = torch.sigmoid(head.cls_branches[layers - 1](t[-1])).max(-1)[0]
    weight = score.repeat(1, layers)  # (B, L*N): layer-major, as pooled
    d = F.smooth_l1_loss(_standardise(torch.cat(list(s), 1) @ w.T),
                         _standardise(torch.cat(list(t), 1)),
                         beta=1.0, reduction='none').mean(-1)
    want = 4.0 * (weight * d).sum() / weight.sum()
    torch.testing.assert_close(losses['distill.loss_query'], want,
                               rtol=1e-4, atol=1e-6)
    assert abs(float(want) - 4.0 * float(d.mean())) > 1e-5  # not unweighted
    with pytest.raises(ValueError, match='pool=True or weights=None'):
        dino(queries=dict(levels=(0, 1, 2), pool=False,
                          weights='teacher_score'))
    with pytest.raises(ValueError, match="'teacher_score'"):
        dino(queries=dict(levels=(0, 1, 2), weights='scores'))


def test_per_layer_terms_remain_an_option(dino):
    algo = dino(queries=dict(levels=(0, 1, 2), pool=False))
    losses = _loss(algo)
    assert {k for k in losses if k.startswith('distill.loss_query')} == {
        f'distill.loss_query{i}' for i in range(3)}


def _identity_pair(offline_model_cfg, **model):
    """Student = a copy of the demo teacher (weights included) except the
    parts the published rule replaces by the teacher's: its learned content
    queries and its two-stage selection branches (so its own queries are
    NOT the teacher's). Query term only, identity projector; the student's
    backbone BN in eval mode like the teacher's (DINO's COCO backbones
    freeze BN too)."""
    cfg = Config.fromfile(osp.join(DEMO, 'vkd_dino_shapes.py'))
    cfg = offline_model_cfg(cfg.model)
    cfg.architecture = copy.deepcopy(cfg.teacher)
    cfg.distiller.update(
        neck=None, encoder=None,
        queries=dict(levels=(0, 1, 2)),
        connector=dict(type='ProjectorConnector', orthogonal=True,
                       init='identity'))
    cfg.update(model)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        algo = MODELS.build(cfg)
    algo.init_weights()
    algo.student.load_state_dict(algo.teacher.state_dict())
    with torch.no_grad():
        selection = algo.student.decoder.num_layers  # the two-stage branch
        for branch in (algo.student.bbox_head.cls_branches[selection],
                       algo.student.bbox_head.reg_branches[selection]):
            for p in branch.parameters():
                p.add_(torch.randn_like(p))
        algo.student.query_embedding.weight.normal_()
    algo.train()
    algo.student.backbone.eval()
    w = algo.distiller.connectors['query_student'].proj.weight
    torch.testing.assert_close(w, torch.eye(256), rtol=0, atol=1e-5)
    return algo


@pytest.mark.parametrize('num_points, num_general', [(None, 0), (10, 0),
                                                     (10, 6)])
def test_identity_student_reproduces_the_teachers_queries(offline_model_cfg,
                                                           num_points,
                                                           num_general):
    """The property the pairing exists for: a student that is a copy of the
    teacher's decoder and encoder gives, on the distillation points, the
    teacher's decoder outputs at every layer, and the query loss is ~0 --
    although its own content queries and its own two-stage selection differ
    (its own matching outputs are far from the teacher's)."""
    algo = _identity_pair(offline_model_cfg, num_points=num_points,
                          num_general=num_general)
    n = (num_points or algo.teacher.num_queries) + num_general
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    losses = _loss(algo)
    s = _group_states(student.calls[0], n)
    t = teacher.calls[0][1][0]
    assert s.shape == t.shape and t.shape[2] == n
    for layer in range(algo.student.decoder.num_layers):
        torch.testing.assert_close(s[layer], t[layer], rtol=1e-4, atol=1e-4)
    assert float(losses['distill.loss_query']) < 1e-6
    # The equality is not trivial: the student's own matching queries (its
    # own content queries at its own boxes) give other outputs.
    own = student.calls[0][1][0][:, :, -n - algo.student.num_queries:-n]
    assert (own[-1][:, :n] - t[-1]).abs().max() > 0.1


def test_general_points_are_random_and_shared_by_both_decoders(dino):
    """``num_general=G``: after the teacher's K points, G points with
    N(0, 1) content and sigmoid(N(0, 1)) boxes, the same for every image,
    new at every step, and the same in both decoders."""
    algo = dino(num_points=10, num_general=40)
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    _loss(algo, seed=0)
    _loss(algo, seed=1)
    calls = [c[0] for c in teacher.calls]
    for call, s_call in zip(calls, (c[0] for c in student.calls)):
        query, refs = call['query'], call['reference_points']
        assert query.shape[1] == refs.shape[1] == 50
        general, boxes = query[:, 10:], refs[:, 10:]
        assert torch.equal(general[0], general[1])  # one draw per batch
        assert torch.equal(boxes[0], boxes[1])
        assert 0 < float(boxes.min()) and float(boxes.max()) < 1
        assert abs(float(general.std()) - 1) < 0.1  # N(0, 1) content
        assert abs(float(general.mean())) < 0.1
        torch.testing.assert_close(s_call['query'][:, -50:], query)
        torch.testing.assert_close(s_call['reference_points'][:, -50:], refs)
    assert not torch.equal(calls[0]['query'][:, 10:],
                           calls[1]['query'][:, 10:])


def test_student_content_variant_differs_from_the_teachers_queries(
        offline_model_cfg):
    """mmkd's variant (the student's content query at the teacher's box):
    on the identity pair it does not reproduce the teacher, since the
    student's content queries are its own."""
    algo = _identity_pair(offline_model_cfg, query_input='student_content')
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    losses = _loss(algo)
    n = algo.teacher.num_queries
    call = student.calls[0][0]
    assert torch.equal(
        call['query'][:, -n:],
        algo.student.query_embedding.weight[None].expand(2, -1, -1))
    assert torch.equal(call['reference_points'][:, -n:],
                       teacher.calls[0][0]['reference_points'])
    assert float(losses['distill.loss_query']) > 1e-3


def test_second_pass_gives_the_groups_terms(dino):
    """``probe='second_pass'`` (a second decoder call) and the group give
    the same distillation terms and the same student loss."""
    runs = []
    for probe in ('group', 'second_pass'):
        algo = dino(probe=probe)
        decoder = _Calls(algo.student.decoder)
        runs.append(_loss(algo))
        assert len(decoder.calls) == (1 if probe == 'group' else 2)
    for key in runs[0]:
        torch.testing.assert_close(runs[1][key], runs[0][key], rtol=1e-4,
                                   atol=1e-5)


def test_num_points_keeps_the_teachers_best_ranked_queries(dino):
    """``num_points=K``: the teacher's first K queries of its two-stage
    selection (sorted by score) in both decoders."""
    algo = dino(num_points=10)
    selection = []
    original = algo.teacher.pre_decoder

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        selection.append(out[0])
        return out

    algo.teacher.pre_decoder = spy
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    _loss(algo)
    t_call = teacher.calls[0][0]
    assert torch.equal(t_call['reference_points'],
                       selection[0]['reference_points'][:, :10])
    assert torch.equal(t_call['query'], selection[0]['query'][:, :10])
    s_call = student.calls[0][0]
    assert torch.equal(s_call['reference_points'][:, -10:],
                       t_call['reference_points'])
    record = algo.distiller.student_recorders.get_recorder(
        'query_s').get_record_data(1, 0)
    assert record.shape[2] == 10 * algo.student.decoder.num_layers


def test_permuting_the_students_own_queries_leaves_the_loss(dino):
    """The student's own matching queries (its two-stage selection) do not
    enter the query loss: permuting them changes no distillation term,
    while pairing those own queries by index with the teacher's would."""
    algo = dino()
    n = algo.student.num_queries
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    original = algo.student.pre_decoder

    def permuted(*args, **kwargs):
        dec_in, head_in = original(*args, **kwargs)
        for key in ('query', 'reference_points'):  # the matching part
            x = dec_in[key]
            dec_in[key] = torch.cat([x[:, :-n], x[:, -n:][:, perm]], 1)
        return dec_in, head_in

    runs = []
    for patch in (False, True):
        if patch:
            algo.student.pre_decoder = permuted
        student, teacher = _Calls(algo.student.decoder), _Calls(
            algo.teacher.decoder)
        losses = _loss(algo)
        student.handle.remove()
        teacher.handle.remove()
        # The index pairing this rule avoids: the student's own queries
        # (last layer, matching part, before the group) against the
        # teacher's.
        own = student.calls[0][1][0][-1][:, -2 * n:-n]
        naive = F.smooth_l1_loss(_standardise(own),
                                 _standardise(teacher.calls[0][1][0][-1]))
        runs.append((losses, naive, own))
    (before, naive0, own0), (after, naive1, own1) = runs
    # The permutation took effect on the student's own pass ...
    torch.testing.assert_close(own1, own0[:, perm], rtol=1e-4, atol=1e-5)
    assert abs(float(naive1) - float(naive0)) > 1e-4
    # ... and changed no distillation term.
    distill = [k for k in before if k.startswith('distill.')]
    assert any('query' in k for k in distill)
    for key in distill:
        torch.testing.assert_close(after[key], before[key], rtol=1e-5,
                                   atol=1e-6)


def _tensors(record) -> list:
    if torch.is_tensor(record):
        return [record]
    if isinstance(record, dict):
        record = list(record.values())
    if isinstance(record, (list, tuple)):
        return [t for r in record for t in _tensors(r)]
    return []


def test_teacher_forward_is_the_teacher_pass_of_the_loss(dino):
    """``teacher_forward`` (public: what the benchmark times as the floor's
    teacher) records the teacher's maps without gradients and returns its
    decoder's queries, detached; the loss runs exactly it."""
    algo = dino()
    inputs, samples = _batch(algo)
    t_dec = _Calls(algo.teacher.decoder)
    points = algo.teacher_forward(inputs, samples)
    assert len(t_dec.calls) == 1
    assert torch.equal(points['query'], t_dec.calls[0][0]['query'])
    assert not points['query'].requires_grad
    recorded = [_tensors(r.data_buffer) for r in
                algo.distiller.teacher_recorders.recorders.values()]
    assert recorded and all(recorded)
    assert not any(t.requires_grad for ts in recorded for t in ts)
    passes = []

    def counted(*args):
        passes.append(algo.__class__.teacher_forward(algo, *args))
        return passes[-1]
    algo.teacher_forward = counted
    _loss(algo)
    assert len(passes) == 1 and len(t_dec.calls) == 2
    # The same (eval-mode) teacher on the same batch: the same points.
    torch.testing.assert_close(passes[0]['query'], points['query'])


# --- how far each model runs; gradients --------------------------------------
@pytest.mark.parametrize('name, teacher_encoder, teacher_decoder, probes', [
    ('vkd_dino_shapes.py', 1, 1, True),
    ('vkd-tokens_dino_shapes.py', 1, 0, False),
    ('pkd_dino_shapes.py', 0, 0, False),
])
def test_teacher_runs_only_as_far_as_the_terms_need(dino, name,
                                                    teacher_encoder,
                                                    teacher_decoder, probes):
    algo = dino(name)
    t_enc, t_dec = _Calls(algo.teacher.encoder), _Calls(algo.teacher.decoder)
    t_head = _Calls(algo.teacher.bbox_head)
    s_dec = _Calls(algo.student.decoder)
    _loss(algo)
    assert len(t_enc.calls) == teacher_encoder
    assert len(t_dec.calls) == teacher_decoder
    assert not t_head.calls
    # One student decoder call: [denoising | matching | group], the group
    # (the teacher's queries) only with query terms.
    assert len(s_dec.calls) == 1
    call = s_dec.calls[0][0]
    total, mask = call['query'].shape[1], call['self_attn_mask']
    group = algo.teacher.num_queries if probes else 0
    dn = int(mask[total - group - 1].sum()) - group  # last matching row
    assert dn > 0
    assert total == dn + algo.student.num_queries + group


def _distill_grads(algo):
    algo.zero_grad()
    losses = _loss(algo)
    sum(v for k, v in losses.items() if k.startswith('distill.')).backward()
    return {name: p.grad for name, p in algo.student.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0}


def test_query_terms_send_gradients_into_the_students_decoder(dino):
    with_queries = _distill_grads(dino())
    assert any(k.startswith('decoder.layers.') for k in with_queries)
    assert any(k.startswith('encoder.') for k in with_queries)
    # The teacher's content queries are the input: the student's own
    # content queries get no distillation gradient; in mmkd's variant they
    # are the input and do.
    assert 'query_embedding.weight' not in with_queries
    variant = _distill_grads(dino(query_input='student_content'))
    assert 'query_embedding.weight' in variant
    tokens_only = _distill_grads(dino('vkd-tokens_dino_shapes.py'))
    assert any(k.startswith('encoder.') for k in tokens_only)
    assert not any(k.startswith(('decoder.', 'query_embedding'))
                   for k in tokens_only)


# --- checks and errors -------------------------------------------------------
def test_pairing_needs_equal_query_counts(offline_model_cfg):
    cfg = Config.fromfile(osp.join(DEMO, 'vkd_dino_shapes.py'))
    model = offline_model_cfg(cfg.model)
    model.architecture.num_queries = 50
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(ValueError, match='architecture.num_queries=100'):
        MODELS.build(model)


@pytest.mark.parametrize('key, value, match', [
    ('query_input', 'student', r"model.query_input='student'; choose one "
     r"of 'teacher', 'student_content'"),
    ('probe', 'twice', r"model.probe='twice'; choose one of 'group', "
     r"'second_pass'"),
    ('num_points', 0, r'model.num_points=0; give an int in 1..100'),
    ('num_points', 101, r'model.num_points=101'),
    ('num_general', -1, r'model.num_general=-1; give an int >= 0'),
])
def test_algorithm_options_are_checked(offline_model_cfg, key, value,
                                       match):
    cfg = Config.fromfile(osp.join(DEMO, 'vkd_dino_shapes.py'))
    model = offline_model_cfg(cfg.model)
    model[key] = value
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(ValueError, match=match):
        MODELS.build(model)


def test_teacher_queries_need_equal_widths(dino):
    algo = dino()
    algo.teacher.embed_dims = 128  # as a narrower teacher would have
    with pytest.raises(ValueError, match=r"model.query_input='teacher'.*"
                       r"128-dim.*256-dim.*'student_content'"):
        algo._check_query_pair()
    algo.query_input = 'student_content'
    algo._check_query_pair()


def test_pooled_queries_need_one_teacher_layer_per_layer():
    with pytest.raises(ValueError, match=r'queries levels=\[0, 1, 2\] and '
                       r'teacher_levels=\[0, 1\] pool 3 student layers'):
        MODELS.build(dict(
            type='mmrazor.DetrDistiller', student_channels=8,
            teacher_channels=8, loss=dict(type='L1Loss'),
            queries=dict(levels=(0, 1, 2), teacher_levels=(0, 1))))


def test_detr_distiller_needs_a_term():
    with pytest.raises(ValueError, match='at least one of neck='):
        MODELS.build(dict(type='mmrazor.DetrDistiller', student_channels=8,
                          teacher_channels=8, loss=dict(type='L1Loss')))


def test_shape_check_runs_the_transformers(dino):
    check_distiller_shapes(dino())  # the demo pair is consistent
    algo = dino(encoder=dict(levels=(0, 1, 2, 3),
                             teacher_levels=(0, 1, 2, 5)))
    with pytest.raises(ValueError, match='teacher_levels') as info:
        check_distiller_shapes(algo)
    assert 'loss_enc3' in str(info.value)


def test_shape_check_refuses_scales_paired_across_strides(dino):
    """The demo's teacher_levels shifted by one scale (student stride 8
    with the teacher's 16, ...): OrthoDistillLoss would interpolate, so it
    would train silently; the check refuses it unless asked for."""
    shifted = dict(levels=(0, 1, 2, 3), teacher_levels=(1, 2, 3, 4))
    for group, term in (('neck', 'loss_neck0'), ('encoder', 'loss_enc0')):
        algo = dino(**{group: shifted})
        with pytest.raises(ValueError, match='differ by a stride') as info:
            check_distiller_shapes(algo)
        message = str(info.value)
        assert term in message and '(16, 16)' in message
        assert 'teacher_levels' in message
        assert 'resize_across_strides=True' in message
    check_distiller_shapes(dino(neck=shifted, encoder=None,
                                resize_across_strides=True))


# --- the COCO configs at demo size -------------------------------------------
@pytest.mark.slow
def test_coco_config_trains_at_demo_size(offline_model_cfg):
    """The COCO config itself (Swin-L 5-scale teacher, R50 4-scale
    student, 900 queries, 6 decoder layers), 5 classes, random teacher, one
    clipped AdamW step on 256x256 images (the student's 4 scales must hold
    at least 900 tokens for DINO's two-stage selection: 1360 here). One
    forward: the distillation terms' gradients are checked before the
    detection loss is added (a Swin-L pass costs about 40 s here)."""
    algo = _build(COCO, offline_model_cfg, num_classes=5)
    assert algo.probe_size == (256, 256)
    check_distiller_shapes(algo)  # what mmkd's train tool runs first
    cfg = Config.fromfile(COCO).model.distiller
    # VkD's weighting: one query term for the 6 layers pooled.
    terms = {f'distill.loss_{short}{i}'
             for group, short in (('neck', 'neck'), ('encoder', 'enc'))
             for i in cfg[group].levels} | {'distill.loss_query'}
    assert cfg.queries.levels == tuple(range(6))
    wrapper = OptimWrapper(torch.optim.AdamW(
        [p for p in algo.parameters() if p.requires_grad], lr=1e-4),
        clip_grad=dict(max_norm=0.1))
    decoder = copy.deepcopy(algo.student.decoder.state_dict())
    teacher = copy.deepcopy(algo.teacher.state_dict())
    algo.zero_grad()
    losses = _loss(algo, seed=0, size=(256, 256))
    assert {k for k in losses if k.startswith('distill.')} == terms
    assert all(torch.isfinite(v).all() for v in losses.values()
               if isinstance(v, torch.Tensor))
    # The distillation terms alone reach every decoder layer's weights.
    sum(v for k, v in losses.items() if k.startswith('distill.')).backward(
        retain_graph=True)
    for i in range(algo.student.decoder.num_layers):
        grad = algo.student.decoder.layers[i].ffn.layers[1].weight.grad
        assert grad is not None and grad.abs().sum() > 0, i
    # Then the student's own terms, and a step.
    sum(v for k, v in losses.items()
        if 'loss' in k and not k.startswith('distill.')).backward()
    wrapper.step()
    moved = [k for k, v in algo.student.decoder.state_dict().items()
             if not torch.equal(v, decoder[k])]
    assert moved
    for key, value in algo.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key


def test_deformable_detr_tokens_come_for_free(mmdet_model_cfg):
    """Token terms need only a DETR with ``forward_encoder``: mmdet's
    Deformable DETR (R50 -> R50, random teacher) trains on neck maps and
    encoder tokens; asking it for query terms stops with the fix."""
    detector = mmdet_model_cfg(
        'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py')
    distiller = dict(
        type='DetrDistiller', student_channels=256, teacher_channels=256,
        connector=dict(type='ProjectorConnector', orthogonal=True),
        loss=dict(type='OrthoDistillLoss', norm='batch', loss_weight=4.0),
        neck=dict(levels=(0, 1, 2, 3)), encoder=dict(levels=(0, 1, 2, 3)))
    model = dict(_scope_='mmrazor', type='DinoTeacherDistill',
                 architecture=detector, teacher=copy.deepcopy(detector),
                 distiller=distiller)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        algo = MODELS.build(copy.deepcopy(model))
    algo.init_weights()  # mmdet's DETR init: without it NaN can appear
    algo.train()
    grads = _distill_grads(algo)
    losses = _loss(algo)
    assert {k for k in losses if k.startswith('distill.')} == {
        f'distill.loss_{g}{i}' for g in ('neck', 'enc') for i in range(4)}
    assert any(k.startswith('encoder.') for k in grads)
    model['distiller']['queries'] = dict(levels=(0, ))
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(TypeError, match='queries=None'):
        MODELS.build(model)


def test_general_points_need_the_teachers_content(offline_model_cfg):
    cfg = Config.fromfile(osp.join(DEMO, 'vkd-content_dino_shapes.py'))
    model = offline_model_cfg(cfg.model)
    model.num_general = 8
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(ValueError, match="num_general needs model.query_"):
        MODELS.build(model)
