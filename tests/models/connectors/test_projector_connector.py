import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.models.architectures.connectors.base_connector import (
    BaseConnector,
)
from mmrazor.registry import MODELS

from mmkd.models import ProjectorConnector

MAPS = [None, 'matrix_exp', 'cayley', 'householder']
SIZES = [(4, 8), (6, 6), (8, 4)]  # in < out, in == out, in > out


def orthogonality_error(w):
    """max |W^T W - I| (tall) or |W W^T - I| (wide), in float64."""
    w = w.detach().double()
    out_c, in_c = w.shape
    gram = w.T @ w if out_c >= in_c else w @ w.T
    return (gram - torch.eye(gram.shape[0], dtype=w.dtype)).abs().max().item()


@pytest.mark.parametrize('orthogonal_map', MAPS)
@pytest.mark.parametrize('in_c, out_c', SIZES)
def test_orthogonal_after_optimizer_steps(in_c, out_c, orthogonal_map):
    torch.manual_seed(0)
    proj = ProjectorConnector(in_c, out_c, orthogonal_map=orthogonal_map)
    assert orthogonality_error(proj.proj.weight) < 1e-4
    opt = torch.optim.SGD(proj.parameters(), lr=0.5, momentum=0.9)
    x = torch.randn(4, in_c, 3, 3)
    target = torch.randn(4, out_c, 3, 3)
    before = proj.proj.weight.detach().clone()
    for _ in range(5):
        opt.zero_grad()
        ((proj(x) - target)**2).mean().backward()
        opt.step()
    w = proj.proj.weight
    assert not torch.allclose(w, before), 'the projector did not train'
    assert orthogonality_error(w) < 1e-4


def test_default_map_is_cayley():
    # The cheapest map measured (docs/benchmarks.md); PyTorch's own
    # default for a non-square W is a Householder product.
    proj = ProjectorConnector(4, 8)
    assert proj.orthogonal_map == 'cayley'
    assert 'map=cayley' in repr(proj)
    assert ProjectorConnector(4, 8, orthogonal=False).orthogonal_map is None


def test_orthogonal_preserves_norms_when_widening():
    proj = ProjectorConnector(4, 8)
    x = torch.randn(3, 4, 2, 2)
    y = proj(x)
    # Orthonormal columns: |W x| = |x| at every position.
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1), rtol=1e-5,
                               atol=1e-5)


def test_output_is_per_position_linear_map():
    proj = ProjectorConnector(3, 5, orthogonal=False)
    x = torch.randn(2, 3, 4, 4)
    w, b = proj.proj.weight, proj.proj.bias
    want = torch.einsum('oc,bchw->bohw', w, x) + b[None, :, None, None]
    torch.testing.assert_close(proj(x), want)
    vec = torch.randn(6, 3)
    torch.testing.assert_close(proj(vec), vec @ w.T + b)


def test_bias_rules():
    assert ProjectorConnector(3, 5, orthogonal=False).proj.bias is not None
    assert ProjectorConnector(3, 5, orthogonal=False,
                              bias=False).proj.bias is None
    assert ProjectorConnector(3, 5).proj.bias is None
    with pytest.raises(ValueError, match='bias=True'):
        ProjectorConnector(3, 5, orthogonal=True, bias=True)


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=0, out_channels=4), 'in_channels=0'),
    (dict(in_channels=4, out_channels=4, orthogonal_map='qr'),
     r"orthogonal_map='qr'.*matrix_exp.*cayley.*householder"),
    (dict(in_channels=4, out_channels=4, orthogonal=False,
          orthogonal_map='cayley'), 'needs orthogonal=True'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProjectorConnector(**kwargs)


def test_wrong_input_channels_names_shapes():
    proj = ProjectorConnector(4, 8)
    with pytest.raises(ValueError, match=r'in_channels=4.*\(2, 6, 3, 3\)'):
        proj(torch.randn(2, 6, 3, 3))


@pytest.mark.parametrize('resize_to, size', [((5, 7), (5, 7)),
                                             (4, (4, 4))])
@pytest.mark.parametrize('orthogonal', [True, False])
def test_resize_to(resize_to, size, orthogonal, bilinear_resize):
    # Documented order: project (1x1, W and bias), then interpolate the
    # output bilinearly (half-pixel centres) to resize_to. Bilinear weights
    # sum to 1, so the other order agrees up to rounding; `nearest`,
    # `align_corners=True` or another size do not.
    torch.manual_seed(0)
    proj = ProjectorConnector(4, 8, orthogonal=orthogonal,
                              resize_to=resize_to)
    x = torch.randn(2, 4, 3, 6)
    got = proj(x)
    assert got.shape == (2, 8) + size
    w = proj.proj.weight.detach()
    projected = torch.einsum('oc,bchw->bohw', w, x)
    if proj.proj.bias is not None:
        projected = projected + proj.proj.bias.detach()[None, :, None, None]
    want = bilinear_resize(projected, size)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gradient_reaches_input_and_weights():
    proj = ProjectorConnector(4, 6)
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    proj(x).pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    grads = [p.grad for p in proj.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_registered_as_mmrazor_connector():
    # A Runner elsewhere may have made 'mmdet' the default scope: configs
    # reach mmkd's modules from the mmrazor scope (`_scope_='mmrazor'`).
    with DefaultScope.overwrite_default_scope('mmrazor'):
        conn = MODELS.build(dict(type='ProjectorConnector', in_channels=4,
                                 out_channels=8, orthogonal_map='cayley'))
    assert isinstance(conn, ProjectorConnector)
    assert isinstance(conn, BaseConnector)


@pytest.mark.parametrize('orthogonal', [True, False])
@pytest.mark.parametrize('in_c, out_c', SIZES)
def test_identity_init_maps_channel_i_to_channel_i(orthogonal, in_c, out_c):
    proj = ProjectorConnector(in_c, out_c, orthogonal=orthogonal,
                              init='identity')
    proj.init_weights()  # MMEngine's init pass must not undo it
    x = torch.randn(2, in_c, 3, 3)
    want = torch.zeros(2, out_c, 3, 3)
    k = min(in_c, out_c)
    want[:, :k] = x[:, :k]
    torch.testing.assert_close(proj(x), want)
    if orthogonal:  # still on the manifold after a step
        opt = torch.optim.SGD(proj.parameters(), lr=0.5)
        proj(x).square().mean().backward()
        opt.step()
        assert orthogonality_error(proj.proj.weight) < 1e-4


def test_unknown_init_lists_choices():
    with pytest.raises(ValueError, match=r"init='eye'.*'random', 'identity'"):
        ProjectorConnector(4, 4, init='eye')
