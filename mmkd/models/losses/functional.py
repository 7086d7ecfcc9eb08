"""Pure functions behind :class:`OrthoDistillLoss`: normalisations, distances
and reductions. Tensor in, tensor out; no state, no registry.

Feature layout: ``(B, C, H, W)`` maps or ``(N, C)`` vectors (treated as
``(N, C, 1, 1)``). Every normalisation returns a tensor of the input's shape.
"""
from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor


def _as_map(x: Tensor) -> Tensor:
    if x.dim() == 2:
        return x[:, :, None, None]
    if x.dim() != 4:
        raise ValueError(
            'expected features of shape (B, C, H, W) or (N, C), got '
            f'{tuple(x.shape)}')
    return x


def _standardise(x: Tensor, dims, eps: float) -> Tensor:
    # Biased variance: the statistics describe this batch, not a population.
    var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + eps)


# The three standardisations run as PyTorch's fused kernels (one pass forward,
# one backward, instead of five element-wise ops each way); the formula above
# is the fallback for one value per statistic, which the kernels refuse.


def batch_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Each channel standardised over all B*H*W positions (VkD, detection)."""
    m = _as_map(x)
    if m.shape[0] * m.shape[2] * m.shape[3] == 1:
        return _standardise(m, (0, 2, 3), eps).reshape(x.shape)
    return F.batch_norm(m, None, None, training=True,
                        eps=eps).reshape(x.shape)


def instance_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Each channel of each image standardised over H*W (SRD, detection)."""
    m = _as_map(x)
    if m.shape[2] * m.shape[3] == 1:
        return _standardise(m, (2, 3), eps).reshape(x.shape)
    return F.instance_norm(m, eps=eps).reshape(x.shape)


def layer_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Each position standardised over its C channels (VkD, classification)."""
    m = _as_map(x)
    out = F.layer_norm(m.movedim(1, -1), (m.shape[1], ), eps=eps)
    return out.movedim(-1, 1).reshape(x.shape)


def whiten(x: Tensor, eps: float = 1e-5) -> Tensor:
    """ZCA whitening over channels (VkD, generation).

    With the positions as columns ``X`` (C x N, centred per channel) and
    ``cov = X X^T / N = U diag(l) U^T``, returns
    ``U diag(1 / sqrt(l + eps)) U^T X``: unit covariance, closest to ``X``.
    """
    m = _as_map(x)
    b, c, h, w = m.shape
    cols = m.permute(1, 0, 2, 3).reshape(c, b * h * w)
    cols = cols - cols.mean(dim=1, keepdim=True)
    cov = cols @ cols.T / cols.shape[1]
    evals, evecs = torch.linalg.eigh(cov)
    zca = evecs @ torch.diag(torch.rsqrt(evals.clamp_min(0) + eps)) @ evecs.T
    out = (zca @ cols).reshape(c, b, h, w).permute(1, 0, 2, 3)
    return out.reshape(x.shape)


def no_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    return x


NORMS: Dict[str, Callable[[Tensor, float], Tensor]] = {
    'batch': batch_norm,
    'instance': instance_norm,
    'layer': layer_norm,
    'whiten': whiten,
    'none': no_norm,
}


# Distances take both sides and return the element-wise distance
# (``reduction='none'``) or its mean (``'mean'``, one fused kernel).


def smooth_l1(preds_S: Tensor, preds_T: Tensor, beta: float = 1.0,
              reduction: str = 'none') -> Tensor:
    """Huber-style in ``d = S - T``: ``0.5 d^2 / beta`` where ``|d| < beta``,
    else ``|d| - beta/2``; ``beta = 0`` is L1."""
    return F.smooth_l1_loss(preds_S, preds_T, beta=beta, reduction=reduction)


def l2(preds_S: Tensor, preds_T: Tensor, beta: float = 1.0,
       reduction: str = 'none') -> Tensor:
    """``d^2``."""
    return F.mse_loss(preds_S, preds_T, reduction=reduction)


def l1(preds_S: Tensor, preds_T: Tensor, beta: float = 1.0,
       reduction: str = 'none') -> Tensor:
    """``|d|``."""
    return F.l1_loss(preds_S, preds_T, reduction=reduction)


DISTANCES: Dict[str, Callable[..., Tensor]] = {
    'smooth_l1': smooth_l1,
    'l2': l2,
    'l1': l1,
}


def reduce_mean(dist: Tensor, alpha: float = 4.0) -> Tensor:
    return dist.mean()


def reduce_logsum(dist: Tensor, alpha: float = 4.0) -> Tensor:
    """SRD's soft maximum ``log(sum_i d_i ** alpha)`` over every element.

    Computed as a log-sum-exp of ``alpha * log(d)`` so that ``alpha = 4`` on
    large maps cannot overflow float32; a zero ``d`` contributes (almost)
    nothing instead of ``log(0)``.
    """
    logs = alpha * torch.log(dist.abs().clamp_min(1e-12))
    return torch.logsumexp(logs.flatten(), dim=0)


REDUCTIONS: Dict[str, Callable[[Tensor, float], Tensor]] = {
    'mean': reduce_mean,
    'logsum': reduce_logsum,
}


RESIZE_MODES = ('student', 'teacher', 'none')


def weighted_mean(d: Tensor, weight: Tensor) -> Tensor:
    """``sum_p w_p mean_c d_cp / sum_p w_p``: elementwise distances ``d``
    (B, C, H, W) averaged over channels, then over positions with one weight
    per position ``weight`` (B, 1, H, W); equal weights give ``d.mean()``."""
    per_position = d.mean(dim=1, keepdim=True)
    return (weight * per_position).sum() / weight.sum().clamp_min(1e-12)


def match_spatial(preds_S: Tensor, preds_T: Tensor, resize: str) -> tuple:
    """Bring both maps to one spatial size (bilinear), or refuse with both
    shapes."""
    if preds_S.shape[2:] == preds_T.shape[2:]:
        return preds_S, preds_T
    if preds_S.dim() != 4 or preds_T.dim() != 4 or resize == 'none':
        raise ValueError(
            f'student features {tuple(preds_S.shape)} and teacher features '
            f'{tuple(preds_T.shape)} differ in spatial size; set '
            "OrthoDistillLoss resize='student' (or 'teacher') to interpolate, "
            'or record levels with matching strides')
    if resize == 'student':
        return F.interpolate(preds_S, size=preds_T.shape[2:], mode='bilinear',
                             align_corners=False), preds_T
    return preds_S, F.interpolate(preds_T, size=preds_S.shape[2:],
                                  mode='bilinear', align_corners=False)


def check_choice(key: str, value: str, allowed) -> str:
    """Raise a ValueError naming the config key, the value and the choices."""
    if value not in allowed:
        raise ValueError(f'{key}={value!r} is not supported; choose one of '
                         f'{sorted(allowed)}')
    return value
