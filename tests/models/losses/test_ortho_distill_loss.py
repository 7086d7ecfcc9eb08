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


def test_spatial_mismatch_resizes_or_refuses():
    s, t = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 3, 3)
    assert torch.isfinite(OrthoDistillLoss(resize='student')(s, t))
    assert torch.isfinite(OrthoDistillLoss(resize='teacher')(s, t))
    with pytest.raises(ValueError, match=r'\(2, 4, 6, 6\).*\(2, 4, 3, 3\)'):
        OrthoDistillLoss(resize='none')(s, t)


def test_resize_student_equals_loss_on_interpolated_student():
    s, t = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 4, 4)
    s_small = torch.nn.functional.interpolate(s, size=(4, 4),
                                              mode='bilinear',
                                              align_corners=False)
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


def test_half_inputs_under_autocast():
    s, t = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = OrthoDistillLoss(norm='whiten')(s, t)
    assert got.dtype == torch.float32 and torch.isfinite(got)


def test_batch_of_one_single_pixel_is_finite():
    s, t = torch.randn(1, 4, 1, 1), torch.randn(1, 4, 1, 1)
    for norm in ('batch', 'instance', 'layer', 'whiten', 'none'):
        for reduction in ('mean', 'logsum'):
            got = OrthoDistillLoss(norm=norm, reduction=reduction)(s, t)
            assert torch.isfinite(got), (norm, reduction)


def test_registered_and_built_from_config():
    with DefaultScope.overwrite_default_scope('mmrazor'):
        loss = MODELS.build(dict(type='OrthoDistillLoss', norm='instance'))
    assert isinstance(loss, OrthoDistillLoss) and loss.norm == 'instance'
