import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.registry import MODELS

from mmkd.models import OrthoDistillLoss


def np_vkd(s, t, beta=1.0, eps=1e-5):
    """VkD detection loss: batch-standardised smooth-L1, mean."""
    def bn(x):
        m = x.mean(axis=(0, 2, 3), keepdims=True)
        v = ((x - m)**2).mean(axis=(0, 2, 3), keepdims=True)
        return (x - m) / np.sqrt(v + eps)
    d = np.abs(bn(s) - bn(t))
    return np.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta).mean()


def np_srd(s, t, alpha=4.0, eps=1e-5):
    """SRD detection loss: instance-standardised, log(sum |d|^alpha)."""
    def inorm(x):
        m = x.mean(axis=(2, 3), keepdims=True)
        v = ((x - m)**2).mean(axis=(2, 3), keepdims=True)
        return (x - m) / np.sqrt(v + eps)
    return np.log(np.sum(np.abs(inorm(s) - inorm(t))**alpha))


def np_bilinear(x, out_h, out_w):
    """Bilinear resize of (B, C, H, W), half-pixel centres (PyTorch's
    ``align_corners=False``): output pixel i samples the input at
    ``(i + 0.5) * in / out - 0.5``, clamped at 0, between its two
    neighbours (the last one repeated at the border)."""
    def weights(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for i in range(n_out):
            src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
            i0 = int(np.floor(src))
            i1, lam = min(i0 + 1, n_in - 1), src - i0
            m[i, i0] += 1 - lam
            m[i, i1] += lam
        return m
    wh, ww = weights(x.shape[2], out_h), weights(x.shape[3], out_w)
    return np.einsum('ih,bchw,jw->bcij', wh, x, ww)


def np_smooth_l1(d, beta=1.0):
    d = np.abs(d)
    return np.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta)


def test_vkd_recipe_matches_formula():
    g = np.random.default_rng(0)
    s, t = g.normal(size=(2, 8, 5, 5)), g.normal(1, 2, size=(2, 8, 5, 5))
    loss = OrthoDistillLoss(norm='batch', distance='smooth_l1',
                            loss_weight=2.0)
    got = loss(torch.from_numpy(s), torch.from_numpy(t))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(2.0 * np_vkd(s, t), rel=1e-5)


def test_srd_recipe_matches_formula():
    g = np.random.default_rng(1)
    s, t = g.normal(size=(2, 8, 5, 5)), g.normal(size=(2, 8, 5, 5))
    loss = OrthoDistillLoss(norm='instance', distance='l1',
                            reduction='logsum', alpha=4.0)
    got = loss(torch.from_numpy(s), torch.from_numpy(t))
    assert got.item() == pytest.approx(np_srd(s, t), rel=1e-5)


@pytest.mark.parametrize('kwargs, match', [
    (dict(norm='bn'), r"norm='bn'.*batch.*instance.*layer.*none.*whiten"),
    (dict(distance='cos'), r"distance='cos'.*l1.*l2.*smooth_l1"),
    (dict(reduction='sum'), r"reduction='sum'.*logsum.*mean"),
    (dict(resize='both'), r"resize='both'.*none.*student.*teacher"),
    (dict(beta=-1.0), r"beta=-1.0.*>= 0"),
])
def test_unknown_option_lists_allowed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OrthoDistillLoss(**kwargs)


def test_channel_mismatch_names_shapes():
    loss = OrthoDistillLoss()
    with pytest.raises(ValueError, match=r'\(2, 4, 3, 3\).*\(2, 8, 3, 3\)'):
        loss(torch.randn(2, 4, 3, 3), torch.randn(2, 8, 3, 3))


def test_np_bilinear_is_what_it_says():
    # The reference itself, on cases worked out by hand: halving averages
    # 2x2 blocks; doubling 1D [0, 1] gives [0, .25, .75, 1].
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(np_bilinear(x, 2, 2)[0, 0],
                               [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_allclose(
        np_bilinear(np.array([[[[0.0, 1.0]]]]), 1, 4)[0, 0, 0],
        [0.0, 0.25, 0.75, 1.0])


@pytest.mark.parametrize('resize', ['student', 'teacher'])
def test_spatial_mismatch_resizes_the_named_side(resize):
    g = np.random.default_rng(2)
    # Non-integer ratios (7x5 -> 3x4 and back), so that bilinear differs
    # from nearest and from average pooling.
    s, t = g.normal(size=(2, 4, 7, 5)), g.normal(1, 2, size=(2, 4, 3, 4))
    got = OrthoDistillLoss(resize=resize)(torch.from_numpy(s),
                                          torch.from_numpy(t))
    if resize == 'student':
        want = np_vkd(np_bilinear(s, 3, 4), t)
    else:
        want = np_vkd(s, np_bilinear(t, 7, 5))
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_spatial_mismatch_refuses_without_resize():
    s, t = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match=r'\(2, 4, 6, 6\).*\(2, 4, 3, 3\)'):
        OrthoDistillLoss(resize='none')(s, t)


def test_resize_student_equals_loss_on_interpolated_student(
        bilinear_resize):
    s, t = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 5, 3)
    s_small = bilinear_resize(s, (5, 3))
    loss = OrthoDistillLoss(norm='none', distance='l2')
    assert loss(s, t).item() == pytest.approx(
        ((s_small - t)**2).mean().item(), rel=1e-6)


def test_gradient_reaches_student_never_teacher():
    s = torch.randn(2, 4, 3, 3, requires_grad=True)
    t = torch.randn(2, 4, 3, 3, requires_grad=True)
    for norm in ('batch', 'instance', 'layer', 'whiten', 'none'):
        s.grad = None
        OrthoDistillLoss(norm=norm)(s, t).backward()
        assert s.grad is not None and s.grad.abs().sum() > 0
        assert t.grad is None


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('reduction', ['mean', 'logsum'])
def test_half_inputs_give_finite_float32(dtype, reduction):
    s = (torch.randn(2, 8, 6, 6) * 50).to(dtype)
    t = (torch.randn(2, 8, 6, 6) * 50).to(dtype)
    got = OrthoDistillLoss(reduction=reduction)(s, t)
    assert got.dtype == torch.float32 and torch.isfinite(got)
    ref = OrthoDistillLoss(reduction=reduction)(s.float(), t.float())
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


def np_whiten(x, eps=1e-5):
    b, c, h, w = x.shape
    cols = x.transpose(1, 0, 2, 3).reshape(c, -1)
    cols = cols - cols.mean(axis=1, keepdims=True)
    lam, u = np.linalg.eigh(cols @ cols.T / cols.shape[1])
    z = u @ np.diag(1 / np.sqrt(np.maximum(lam, 0) + eps)) @ u.T @ cols
    return z.reshape(c, b, h, w).transpose(1, 0, 2, 3)


def test_half_inputs_under_autocast():
    # Whitening multiplies matrices, which CPU autocast would run in bf16.
    g = np.random.default_rng(3)
    s, t = g.normal(size=(2, 4, 5, 5)), g.normal(size=(2, 4, 5, 5))
    s32, t32 = torch.from_numpy(s).float(), torch.from_numpy(t).float()
    loss = OrthoDistillLoss(norm='whiten')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = loss(s32, t32)
    assert got.dtype == torch.float32
    # Autocast is switched off inside: the very float32 computation.
    assert torch.equal(got, loss(s32, t32))
    # ... and the formula in float64 (bf16 matmuls would be ~1e-2 off).
    want = np_smooth_l1(np_whiten(s) - np_whiten(t)).mean()
    assert got.item() == pytest.approx(want, rel=1e-5)


def np_layer(x, eps=1e-5):  # per position over C
    m = x.mean(axis=1, keepdims=True)
    return (x - m) / np.sqrt(((x - m)**2).mean(axis=1, keepdims=True) + eps)


# log(sum |d| ** 4) over the 4 elements of d = 0, each |d| floored at 1e-12
# by reduce_logsum: log(4) + 4 log(1e-12).
LOGSUM_OF_4_ZEROS = np.log(4.0) + 4 * np.log(1e-12)


@pytest.mark.parametrize('reduction', ['mean', 'logsum'])
@pytest.mark.parametrize('norm', ['batch', 'instance', 'layer', 'whiten',
                                  'none'])
def test_batch_of_one_single_pixel(norm, reduction):
    g = np.random.default_rng(4)
    s, t = g.normal(size=(1, 4, 1, 1)), g.normal(2, 3, size=(1, 4, 1, 1))
    got = OrthoDistillLoss(norm=norm, reduction=reduction)(
        torch.from_numpy(s), torch.from_numpy(t))
    assert got.dtype == torch.float32
    if norm in ('batch', 'instance', 'whiten'):
        # One value per statistic: both sides standardise to exactly 0, so
        # d = 0 everywhere.
        if reduction == 'mean':
            assert got.item() == 0.0
        else:
            assert got.item() == pytest.approx(LOGSUM_OF_4_ZEROS, rel=1e-6)
        return
    # layer: over the 4 channels, well defined; none: the raw difference.
    n = np_layer if norm == 'layer' else (lambda x: x)
    d = np_smooth_l1(n(s) - n(t))
    want = d.mean() if reduction == 'mean' else np.log(np.sum(d**4))
    assert abs(want) > 0.1  # not a degenerate case
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_registered_and_built_from_config():
    with DefaultScope.overwrite_default_scope('mmrazor'):
        loss = MODELS.build(dict(type='OrthoDistillLoss', norm='instance'))
    assert isinstance(loss, OrthoDistillLoss) and loss.norm == 'instance'


def test_per_position_weight_is_a_weighted_mean():
    """sum_p w_p mean_c d_cp / sum_p w_p, statistics unweighted; equal
    weights give the plain loss."""
    g = np.random.default_rng(1)
    s, t = g.normal(size=(2, 8, 6, 1)), g.normal(1, 2, size=(2, 8, 6, 1))
    w = g.uniform(0, 1, size=(2, 1, 6, 1))

    def bn(x):
        m = x.mean(axis=(0, 2, 3), keepdims=True)
        v = ((x - m)**2).mean(axis=(0, 2, 3), keepdims=True)
        return (x - m) / np.sqrt(v + 1e-5)
    per_position = np_smooth_l1(bn(s) - bn(t)).mean(axis=1, keepdims=True)
    want = 3.0 * (w * per_position).sum() / w.sum()
    loss = OrthoDistillLoss(loss_weight=3.0)
    got = loss(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(w))
    assert got.item() == pytest.approx(want, rel=1e-5)
    # (B, H, W) weights are the same; equal weights are the plain mean.
    got = loss(torch.from_numpy(s), torch.from_numpy(t),
               torch.from_numpy(w[:, 0]))
    assert got.item() == pytest.approx(want, rel=1e-5)
    equal = loss(torch.from_numpy(s), torch.from_numpy(t),
                 torch.full((2, 1, 6, 1), 0.3, dtype=torch.float64))
    assert equal.item() == pytest.approx(3.0 * np_vkd(s, t), rel=1e-5)


@pytest.mark.parametrize('weight, kwargs, match', [
    (torch.ones(2, 1, 5, 1), {}, r'weight \(2, 1, 5, 1\) does not fit'),
    (-torch.ones(2, 1, 6, 1), {}, 'finite and >= 0'),
    (torch.full((2, 1, 6, 1), float('nan')), {}, 'finite and >= 0'),
    (torch.ones(2, 1, 6, 1), dict(reduction='logsum'),
     "reduction='logsum' takes no per-position weight"),
])
def test_bad_weights_are_refused(weight, kwargs, match):
    s, t = torch.randn(2, 8, 6, 1), torch.randn(2, 8, 6, 1)
    with pytest.raises(ValueError, match=match):
        OrthoDistillLoss(**kwargs)(s, t, weight)
