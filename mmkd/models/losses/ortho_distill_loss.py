from typing import Optional

import torch
from mmrazor.registry import MODELS
from torch import Tensor, nn

from .functional import (
    DISTANCES,
    NORMS,
    REDUCTIONS,
    RESIZE_MODES,
    check_choice,
    match_spatial,
    weighted_mean,
)


@MODELS.register_module()
class OrthoDistillLoss(nn.Module):
    r"""Feature distance after a task-specific normalisation of both sides.

    The loss of SRD ("Understanding the Role of the Projector in Knowledge
    Distillation", Miles & Mikolajczyk, AAAI 2024, arXiv 2303.11098) and VkD
    ("VkD: Improving Knowledge Distillation using Orthogonal Projections",
    Miles, Elezi & Deng, CVPR 2024, arXiv 2403.06213):

    .. math::
        d = \mathrm{dist}(N(P s) - N(\mathrm{sg}(t))), \qquad
        L = w \cdot \mathrm{reduce}(d)

    with ``P s`` the projected student (a :class:`ProjectorConnector` output),
    ``sg`` stop-gradient and ``N`` the same normalisation on both sides.
    Computed in float32 whatever the input dtype (AMP-safe).

    Recipes (``configs/_base_/recipes/``): VkD =
    ``norm='batch', distance='smooth_l1'`` (VkD's detection normalisation);
    SRD = ``norm='instance', distance='l1', reduction='logsum', alpha=4``,
    i.e. ``log(sum |d|^4)``. Without ``distance='l1'`` the log-sum would run
    over smooth-L1 values (about ``|d|^8`` for small d), which is not SRD.
    SRD's released code is classification only; the per-image normalisation
    over H*W and the equal weighting of distillation and task losses for
    detection are the author's statements (SRD repository, issue 2).

    Args:
        norm (str): ``'batch'`` (each channel over B*H*W), ``'instance'``
            (each channel of each image over H*W), ``'layer'`` (each position
            over C), ``'whiten'`` (ZCA over channels) or ``'none'``.
            Defaults to ``'batch'``.
        distance (str): elementwise ``'smooth_l1'``, ``'l2'`` or ``'l1'``.
            Defaults to ``'smooth_l1'``.
        reduction (str): ``'mean'`` or ``'logsum'`` = ``log(sum d**alpha)``.
            Defaults to ``'mean'``.
        alpha (float): exponent of ``'logsum'``. Defaults to 4.0.
        beta (float): smooth-L1 threshold, >= 0 (0 is L1). Defaults to 1.0.
        eps (float): added to variances so a constant channel stays finite.
            Defaults to 1e-5.
        loss_weight (float): multiplier of the loss. Defaults to 1.0.
        resize (str): when spatial sizes differ, interpolate the
            ``'student'`` map to the teacher's, the ``'teacher'`` map to the
            student's, or ``'none'`` (raise). Defaults to ``'student'``.

    Shapes: ``preds_S`` and ``preds_T`` are (B, C, H, W) or (N, C) with the
    same C; the result is a float32 scalar.
    """

    def __init__(self,
                 norm: str = 'batch',
                 distance: str = 'smooth_l1',
                 reduction: str = 'mean',
                 alpha: float = 4.0,
                 beta: float = 1.0,
                 eps: float = 1e-5,
                 loss_weight: float = 1.0,
                 resize: str = 'student') -> None:
        super().__init__()
        self.norm = check_choice('OrthoDistillLoss norm', norm, NORMS)
        self.distance = check_choice('OrthoDistillLoss distance', distance,
                                     DISTANCES)
        self.reduction = check_choice('OrthoDistillLoss reduction', reduction,
                                      REDUCTIONS)
        self.resize = check_choice('OrthoDistillLoss resize', resize,
                                   RESIZE_MODES)
        self.alpha = float(alpha)
        self.beta = float(beta)
        if self.beta < 0:
            raise ValueError(f'OrthoDistillLoss beta={beta!r}: the smooth-L1 '
                             'threshold must be >= 0 (0 means L1)')
        self.eps = float(eps)
        self.loss_weight = float(loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor,
                weight: Optional[Tensor] = None) -> Tensor:
        """preds_S: projected student features; preds_T: teacher features;
        weight (optional): one non-negative weight per position of the
        teacher's map, ``(B, 1, H, W)`` (or ``(B, H, W)``). With a weight the
        mean over positions becomes a weighted mean,
        ``sum_p w_p mean_c d_cp / sum_p w_p`` (the plain mean when every
        ``w_p`` is equal); the normalisation's statistics stay unweighted.
        Used for DETR queries weighted by the teacher's class score."""
        if preds_S.shape[:2] != preds_T.shape[:2]:
            raise ValueError(
                f'OrthoDistillLoss got student {tuple(preds_S.shape)} and '
                f'teacher {tuple(preds_T.shape)}: batch and channels must '
                'match; set the ProjectorConnector out_channels to the '
                'teacher channels')
        # Autocast would run the statistics in half precision; the loss is
        # small against the task loss and must not underflow or overflow.
        with torch.autocast(device_type=preds_S.device.type, enabled=False):
            preds_S, preds_T = match_spatial(preds_S.float(),
                                             preds_T.detach().float(),
                                             self.resize)
            norm = NORMS[self.norm]
            distance = DISTANCES[self.distance]
            preds_S, preds_T = norm(preds_S, self.eps), norm(preds_T, self.eps)
            if weight is not None:
                loss = self._weighted_mean(
                    distance(preds_S, preds_T, self.beta, 'none'), weight)
            elif self.reduction == 'mean':  # one fused kernel each way
                loss = distance(preds_S, preds_T, self.beta, 'mean')
            else:
                loss = REDUCTIONS[self.reduction](
                    distance(preds_S, preds_T, self.beta, 'none'), self.alpha)
        return self.loss_weight * loss

    def _weighted_mean(self, d: Tensor, weight: Tensor) -> Tensor:
        if self.reduction != 'mean':
            raise ValueError(
                f'OrthoDistillLoss reduction={self.reduction!r} takes no '
                "per-position weight; use reduction='mean' or leave the "
                'weights out (DetrDistiller queries weights=None)')
        w = weight.detach().float()
        if w.dim() == d.dim() - 1:
            w = w.unsqueeze(1)
        if d.dim() != 4 or w.shape != (d.shape[0], 1) + d.shape[2:]:
            raise ValueError(
                f'OrthoDistillLoss weight {tuple(weight.shape)} does not fit '
                f'features {tuple(d.shape)}: give one weight per position, '
                f'({d.shape[0]}, 1) + {tuple(d.shape[2:])}')
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ValueError('OrthoDistillLoss weight: weights must be '
                             'finite and >= 0')
        return weighted_mean(d, w)

    def extra_repr(self) -> str:
        return (f'norm={self.norm!r}, distance={self.distance!r}, '
                f'reduction={self.reduction!r}, '
                f'loss_weight={self.loss_weight}')
