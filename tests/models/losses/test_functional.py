"""Normalisations, distances and reductions against formulas written out here
with numpy in float64 (independent of mmkd's torch code)."""
import numpy as np
import pytest
import torch

from mmkd.models.losses import functional as Fn

EPS = 1e-5


def np_standardise(x, axes):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean)**2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS)


def np_batch(x):  # per channel over (B, H, W)
    return np_standardise(x, (0, 2, 3))


def np_instance(x):  # per (b, c) over (H, W)
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[b, c]
            out[b, c] = (v - v.mean()) / np.sqrt(v.var() + EPS)
    return out


def np_layer(x):  # per (b, h, w) over C
    out = np.empty_like(x)
    B, C, H, W = x.shape
    for b in range(B):
        for h in range(H):
            for w in range(W):
                v = x[b, :, h, w]
                out[b, :, h, w] = (v - v.mean()) / np.sqrt(v.var() + EPS)
    return out


def np_whiten(x):
    B, C, H, W = x.shape
    X = x.transpose(1, 0, 2, 3).reshape(C, -1)
    X = X - X.mean(axis=1, keepdims=True)
    cov = X @ X.T / X.shape[1]
    lam, U = np.linalg.eigh(cov)
    Z = U @ np.diag(1.0 / np.sqrt(np.maximum(lam, 0) + EPS)) @ U.T @ X
    return Z.reshape(C, B, H, W).transpose(1, 0, 2, 3)


SHAPES = [(3, 4, 5, 6), (1, 4, 5, 6), (2, 3, 1, 1), (1, 3, 1, 1)]
# 'none' is not in here: it is tested for exact identity on its own below.
REFERENCE = {
    'batch': np_batch,
    'instance': np_instance,
    'layer': np_layer,
    'whiten': np_whiten,
}


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('name', sorted(REFERENCE))
def test_norm_matches_formula(name, shape):
    x = np.random.default_rng(1).normal(2.0, 3.0, size=shape)
    got = Fn.NORMS[name](torch.from_numpy(x), EPS).numpy()
    assert got.shape == x.shape
    # The references are finite, so a NaN or inf in `got` fails here too.
    np.testing.assert_allclose(got, REFERENCE[name](x), rtol=1e-6, atol=1e-6,
                               equal_nan=False)


@pytest.mark.parametrize('shape', SHAPES)
def test_none_returns_the_input_values_exactly(shape):
    x = np.random.default_rng(1).normal(2.0, 3.0, size=shape)
    got = Fn.NORMS['none'](torch.from_numpy(x.copy()), EPS)
    assert got.dtype == torch.float64
    # Bit for bit the numpy input: no scaling, no centring, no eps.
    assert np.array_equal(got.numpy(), x)
    # ... which is a property of 'none' alone: on the same data every other
    # normalisation moves the values (each differs from the input by far
    # more than rounding).
    for name in sorted(REFERENCE):
        other = Fn.NORMS[name](torch.from_numpy(x.copy()), EPS).numpy()
        assert np.abs(other - x).max() > 0.1, name


# (norm, shape) where every statistic is taken over exactly one value: the
# value minus its own mean is exactly 0, so the output is exactly 0 (not NaN
# from 0 / 0, not the input).
ONE_VALUE_PER_STATISTIC = [
    ('batch', (1, 3, 1, 1)),     # per channel over B*H*W = 1
    ('instance', (2, 3, 1, 1)),  # per (b, c) over H*W = 1
    ('instance', (1, 3, 1, 1)),
    ('layer', (2, 1, 3, 4)),     # per position over C = 1
    ('whiten', (1, 3, 1, 1)),    # channel means over B*H*W = 1
]


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('name, shape', ONE_VALUE_PER_STATISTIC)
def test_one_value_per_statistic_standardises_to_exactly_zero(
        name, shape, dtype):
    x = torch.from_numpy(
        np.random.default_rng(7).normal(2.0, 3.0, size=shape)).to(dtype)
    got = Fn.NORMS[name](x, EPS)
    assert got.dtype == dtype and got.shape == x.shape
    assert torch.equal(got, torch.zeros_like(x))


@pytest.mark.parametrize('name', sorted(REFERENCE) + ['none'])
def test_norm_of_a_constant_channel(name):
    x = np.random.default_rng(8).normal(size=(2, 4, 3, 3))
    x[:, 1] = 7.0
    out = Fn.NORMS[name](torch.from_numpy(x), EPS).numpy()
    # The float64 formulas above, constant channel included (none: x).
    want = REFERENCE[name](x) if name in REFERENCE else x
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6,
                               equal_nan=False)
    if name in ('batch', 'instance'):
        # A constant channel standardises to exactly zero, not to NaN.
        assert np.all(out[:, 1] == 0)
    if name == 'whiten':
        # Uncorrelated with the others and of variance 0: its row of the
        # ZCA matrix is (rounding aside) e_1, times a centred column of 0.
        np.testing.assert_allclose(out[:, 1], 0, atol=1e-9)


def test_whiten_has_identity_covariance():
    x = torch.randn(4, 6, 8, 8, dtype=torch.float64) * 3
    x[:, 1] += 0.8 * x[:, 0]  # correlated channels
    z = Fn.whiten(x, 1e-9).permute(1, 0, 2, 3).reshape(6, -1)
    cov = z @ z.T / z.shape[1]
    torch.testing.assert_close(cov, torch.eye(6, dtype=torch.float64),
                               atol=1e-5, rtol=0)


def test_norm_accepts_vectors():
    x = np.random.default_rng(2).normal(size=(7, 5))
    got = Fn.batch_norm(torch.from_numpy(x), EPS).numpy()
    want = (x - x.mean(0)) / np.sqrt(x.var(0) + EPS)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def np_smooth_l1(d, beta):
    out = np.empty_like(d)
    for i, v in np.ndenumerate(d):
        out[i] = 0.5 * v * v / beta if abs(v) < beta else abs(v) - 0.5 * beta
    return out


def _dyadic(d):
    """d on a 2**-20 grid, so that (d + t) - t == d exactly for integer t."""
    return np.round(d * 2**20) / 2**20


def _pair(d):
    """(S, T) with S - T = d exactly; T is not zero so the kernels see two
    inputs."""
    t = np.random.default_rng(9).integers(-3, 4, size=d.shape).astype(float)
    assert np.array_equal((d + t) - t, d)
    return torch.from_numpy(d + t), torch.from_numpy(t)


@pytest.mark.parametrize('beta', [1.0, 0.5])
def test_smooth_l1_matches_formula(beta):
    d = _dyadic(np.random.default_rng(3).normal(0, 2, size=(4, 5)))
    got = Fn.smooth_l1(*_pair(d), beta).numpy()
    np.testing.assert_allclose(got, np_smooth_l1(d, beta), rtol=1e-12)
    mean = Fn.smooth_l1(*_pair(d), beta, 'mean').item()
    assert mean == pytest.approx(np_smooth_l1(d, beta).sum() / d.size)


def test_smooth_l1_beta_zero_is_l1():
    d = _dyadic(np.random.default_rng(3).normal(0, 2, size=(4, 5)))
    np.testing.assert_allclose(Fn.smooth_l1(*_pair(d), 0.0).numpy(),
                               np.abs(d), rtol=1e-9)


def test_l1_l2_match_formula():
    d = _dyadic(np.random.default_rng(4).normal(size=(3, 7)))
    np.testing.assert_allclose(Fn.l1(*_pair(d)).numpy(), np.abs(d),
                               rtol=1e-9)
    np.testing.assert_allclose(Fn.l2(*_pair(d)).numpy(), d**2, rtol=1e-9)
    assert Fn.l2(*_pair(d), reduction='mean').item() == pytest.approx(
        (d**2).sum() / d.size)
    assert Fn.l1(*_pair(d), reduction='mean').item() == pytest.approx(
        np.abs(d).sum() / d.size)


@pytest.mark.parametrize('alpha', [1.0, 2.0, 4.0])
def test_logsum_matches_formula(alpha):
    d = np.abs(np.random.default_rng(5).normal(size=(2, 3, 4, 4)))
    got = Fn.reduce_logsum(torch.from_numpy(d), alpha).item()
    assert got == pytest.approx(np.log(np.sum(d**alpha)), rel=1e-10)


def test_logsum_does_not_overflow_float32():
    d = torch.full((2, 256, 50, 50), 1e3, dtype=torch.float32)
    got = Fn.reduce_logsum(d, 4.0)
    # log(N * 1e12) computed by hand; a naive sum(d**4) is inf in float32.
    assert torch.isfinite(got)
    assert got.item() == pytest.approx(np.log(d.numel()) + 4 * np.log(1e3),
                                       rel=1e-5)


# reduce_logsum clamps |d| to at least 1e-12 before the log, so that a zero
# distance contributes (1e-12) ** alpha instead of log(0) = -inf.
LOGSUM_FLOOR = 1e-12


@pytest.mark.parametrize('dtype, rel', [(torch.float64, 1e-12),
                                        (torch.float32, 1e-6)])
@pytest.mark.parametrize('alpha', [1.0, 4.0])
def test_logsum_of_zeros_is_the_floor_constant(alpha, dtype, rel):
    got = Fn.reduce_logsum(torch.zeros(3, 3, dtype=dtype), alpha)
    assert got.dtype == dtype
    # log(sum_i max(|d_i|, 1e-12) ** alpha) over 9 zeros, by hand:
    # log(9) + alpha * log(1e-12); -108.3268598... for alpha = 4.
    want = np.log(9.0) + alpha * np.log(LOGSUM_FLOOR)
    assert got.item() == pytest.approx(want, rel=rel)
    if alpha == 4.0:
        assert got.item() == pytest.approx(-108.32685988637797, rel=rel)


def test_mean_matches_formula():
    d = np.random.default_rng(6).normal(size=(2, 3, 4))
    assert Fn.reduce_mean(torch.from_numpy(d)).item() == pytest.approx(
        d.sum() / d.size)


def test_check_choice_lists_allowed_values():
    with pytest.raises(ValueError, match=r"norm='bn'.*\['batch'"):
        Fn.check_choice('norm', 'bn', Fn.NORMS)


def test_weighted_mean_matches_formula():
    g = np.random.default_rng(3)
    d, w = g.uniform(size=(2, 3, 4, 5)), g.uniform(size=(2, 1, 4, 5))
    want = sum(w[b, 0, i, j] * d[b, :, i, j].mean() for b in range(2)
               for i in range(4) for j in range(5)) / w.sum()
    got = Fn.weighted_mean(torch.from_numpy(d), torch.from_numpy(w))
    assert got.item() == pytest.approx(want, rel=1e-10)
