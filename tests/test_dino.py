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

from mmkd.data import make_det_batch
from mmkd.engine import check_distiller_shapes
from mmkd.models import DetrDecoderQueriesRecorder, DetrEncoderLevelsRecorder

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'configs', 'demo', 'dino')
# The full recipe; the tokens-only config is its subset (built offline in
# tests/test_configs.py, its terms checked there).
COCO = osp.join(ROOT, 'configs', 'vkd', 'vkd_dino_swin-l_r50_coco.py')


def _build(path, offline_model_cfg, num_classes=None, **distiller):
    cfg = Config.fromfile(path)
    model = offline_model_cfg(cfg.model)
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
    """``dino(name='vkd_dino_shapes.py', **distiller)``: a demo DINO
    distiller with a random teacher, in train mode."""
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
def test_probe_runs_the_teachers_queries_through_the_students_decoder(dino):
    algo = dino()
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    losses = _loss(algo)
    # The teacher once, in eval mode: no denoising queries.
    assert len(teacher.calls) == 1
    t_kwargs, t_out = teacher.calls[0]
    assert t_kwargs['self_attn_mask'] is None
    # The student twice: its own pass with denoising queries, then the probe.
    assert len(student.calls) == 2
    own, probe = student.calls[0][0], student.calls[1][0]
    assert own['self_attn_mask'] is not None
    assert own['query'].shape[1] > algo.student.num_queries
    assert probe['self_attn_mask'] is None
    # Probe query n = the student's content query n at the teacher's
    # reference point n (its two-stage proposal n, image by image).
    assert torch.equal(probe['reference_points'],
                       t_kwargs['reference_points'])
    refs = t_kwargs['reference_points']
    assert refs.shape[1] == algo.teacher.num_queries
    assert not torch.equal(refs[0], refs[1])  # proposals of each image
    assert torch.equal(
        probe['query'],
        algo.student.query_embedding.weight[None].expand(2, -1, -1))
    # The student's memory, not the teacher's.
    assert probe['value'].shape == own['value'].shape
    assert torch.equal(probe['value'], own['value'])
    # The recorder keeps the matching queries of the student's own pass
    # (record 0, denoising queries dropped by DINO's own mask).
    own_record = algo.distiller.student_recorders.get_recorder(
        'query_s').get_record_data(0, 0)
    assert own_record.shape[2] == algo.student.num_queries
    torch.testing.assert_close(
        own_record[..., 0].transpose(1, 2),
        student.calls[0][1][0][0][:, -algo.student.num_queries:])
    layers = algo.student.decoder.num_layers
    assert {k for k in losses if k.startswith('distill.loss_query')} == {
        f'distill.loss_query{i}' for i in range(layers)}


def test_probe_sees_the_students_padding(dino):
    """Images of different sizes in one batch: the probe's decoder call
    gets the student's own padding mask, valid ratios and scales."""
    algo = dino()
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
    own, probe = student.calls[0][0], student.calls[1][0]
    assert own['key_padding_mask'] is not None
    assert own['key_padding_mask'][1].any()  # the padded image
    assert not own['key_padding_mask'][0].any()
    assert (own['valid_ratios'][1] < 1).any()
    for key in ('key_padding_mask', 'valid_ratios', 'spatial_shapes',
                'level_start_index'):
        assert torch.equal(probe[key], own[key]), key


def _standardise(x):
    """(B, N, C) -> each channel standardised over all B*N tokens."""
    flat = x.reshape(-1, x.shape[-1])
    mean = flat.mean(0)
    var = ((flat - mean)**2).mean(0)
    return (x - mean) / torch.sqrt(var + 1e-5)


def test_query_loss_is_vkd_on_index_paired_queries(dino):
    """loss_query{l} = 4.0 * mean smooth-L1 between the batch-standardised
    projected probe output of layer l and the teacher's, query n with n."""
    algo = dino()
    student, teacher = _Calls(algo.student.decoder), _Calls(
        algo.teacher.decoder)
    losses = _loss(algo)
    probe_states = student.calls[1][1][0]
    teacher_states = teacher.calls[0][1][0]
    for layer in range(algo.student.decoder.num_layers):
        w = algo.distiller.connectors[f'query{layer}_student'].proj.weight
        projected = probe_states[layer] @ w.reshape(w.shape[0], -1).T
        want = 4.0 * F.smooth_l1_loss(
            _standardise(projected), _standardise(teacher_states[layer]),
            beta=1.0)
        torch.testing.assert_close(losses[f'distill.loss_query{layer}'],
                                   want, rtol=1e-4, atol=1e-6)


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
        # (last layer, matching part) against the teacher's.
        own = student.calls[0][1][0][-1][:, -n:]
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
                                   atol=1e-7)


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
    assert len(s_dec.calls) == 1 + probes


def _distill_grads(algo):
    algo.zero_grad()
    losses = _loss(algo)
    sum(v for k, v in losses.items() if k.startswith('distill.')).backward()
    return {name: p.grad for name, p in algo.student.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0}


def test_query_terms_send_gradients_into_the_students_decoder(dino):
    with_queries = _distill_grads(dino())
    assert any(k.startswith('decoder.layers.') for k in with_queries)
    assert 'query_embedding.weight' in with_queries
    assert any(k.startswith('encoder.') for k in with_queries)
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


def test_detr_distiller_needs_a_term():
    with pytest.raises(ValueError, match='at least one of neck='):
        MODELS.build(dict(type='mmrazor.DetrDistiller', student_channels=8,
                          teacher_channels=8, loss=dict(type='L1Loss')))


def test_shape_check_runs_the_transformers(dino):
    check_distiller_shapes(dino())  # the demo pair is consistent
    algo = dino(encoder=dict(levels=(0, 1, 2, 3),
                             teacher_levels=(1, 2, 3, 5)))
    with pytest.raises(ValueError, match='teacher_levels') as info:
        check_distiller_shapes(algo)
    assert 'loss_enc3' in str(info.value)


# --- the COCO configs at demo size -------------------------------------------
@pytest.mark.slow
def test_coco_config_trains_at_demo_size(offline_model_cfg):
    """The COCO config itself (Swin-L 5-scale teacher, R50 4-scale
    student, 900 queries, 6 decoder layers), 5 classes, random teacher, two
    AdamW steps on 256x256 images (the student's 4 scales must hold at least
    900 tokens for DINO's two-stage selection: 1360 here)."""
    algo = _build(COCO, offline_model_cfg, num_classes=5)
    assert algo.probe_size == (256, 256)
    check_distiller_shapes(algo)  # what mmkd's train tool runs first
    cfg = Config.fromfile(COCO).model.distiller
    terms = {f'distill.loss_{short}{i}'
             for group, short in (('neck', 'neck'), ('encoder', 'enc'),
                                  ('queries', 'query')) if cfg.get(group)
             for i in cfg[group].levels}
    wrapper = OptimWrapper(torch.optim.AdamW(
        [p for p in algo.parameters() if p.requires_grad], lr=1e-4),
        clip_grad=dict(max_norm=0.1))
    decoder = copy.deepcopy(algo.student.decoder.state_dict())
    teacher = copy.deepcopy(algo.teacher.state_dict())
    for step in range(2):
        losses = _loss(algo, seed=step, size=(256, 256))
        assert {k for k in losses if k.startswith('distill.')} == terms
        assert all(torch.isfinite(v).all() for v in losses.values()
                   if isinstance(v, torch.Tensor))
        wrapper.update_params(sum(
            v for k, v in losses.items() if 'loss' in k))
    moved = [k for k, v in algo.student.decoder.state_dict().items()
             if not torch.equal(v, decoder[k])]
    assert moved
    # The distillation terms alone reach every decoder layer's weights.
    algo.zero_grad()
    losses = _loss(algo, seed=2, size=(256, 256))
    sum(v for k, v in losses.items() if k.startswith('distill.')).backward()
    for i in range(algo.student.decoder.num_layers):
        grad = algo.student.decoder.layers[i].ffn.layers[1].weight.grad
        assert grad is not None and grad.abs().sum() > 0, i
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
