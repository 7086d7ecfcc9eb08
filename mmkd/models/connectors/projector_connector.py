from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmrazor.models.architectures.connectors.base_connector import (
    BaseConnector,
)
from mmrazor.registry import MODELS
from torch import Tensor, nn
from torch.nn.utils import parametrizations

ORTHOGONAL_MAPS = ('matrix_exp', 'cayley', 'householder')
DEFAULT_MAP = 'cayley'
INITS = ('random', 'identity')


@MODELS.register_module()
class ProjectorConnector(BaseConnector):
    r"""Per-position linear projector from student to teacher channels.

    ``y[b, :, h, w] = W x[b, :, h, w] (+ bias)`` with ``W`` of shape
    ``(out_channels, in_channels)``: a 1x1 convolution on (B, Cs, H, W) maps,
    a linear map on (N, Cs) vectors.

    - ``orthogonal=True`` (VkD, Miles, Elezi & Deng, CVPR 2024): ``W`` lies on
      the Stiefel manifold through
      :func:`torch.nn.utils.parametrizations.orthogonal` --
      ``W^T W = I`` when ``out >= in`` (orthonormal columns), ``W W^T = I``
      otherwise (orthonormal rows). The constraint is part of the
      parametrisation, so it holds after every optimizer step. No bias.
    - ``orthogonal=False`` (SRD, Miles & Mikolajczyk, AAAI 2024): a plain
      linear map, with bias unless ``bias=False``.

    The projector is a training device: exporting the student drops it.

    Args:
        in_channels (int): student channels Cs.
        out_channels (int): teacher channels Ct.
        orthogonal (bool): constrain ``W`` to be orthogonal. Defaults to True.
        orthogonal_map (str, optional): ``'cayley'``, ``'matrix_exp'`` or
            ``'householder'``; None means ``'cayley'``, the cheapest of the
            three (evaluation + backward on a CPU, ``python
            tools/benchmark.py --maps``: 64x64 ``W`` 1.0 ms against 2.7 ms
            for matrix_exp and 6.8 ms for householder; 256x256 3.5 ms
            against 30 and 52 ms). PyTorch's own default is matrix_exp for
            a square ``W``, householder otherwise. householder also trained
            much worse on the built-in data (VkD no better than the student
            alone, 2 seeds; docs/beyond_retinanet.md). Defaults to None.
        init (str): ``'random'`` (an orthogonal ``W`` starts at a random
            orthogonal matrix, a linear one at ``nn.Linear``'s init) or
            ``'identity'`` (``W`` starts at the ``out x in`` identity, the
            bias at 0: student channel i -> teacher channel i, orthonormal
            for any shape). Defaults to ``'random'``.
        resize_to (int | tuple[int, int], optional): interpolate the output
            map to this fixed (H, W). Mismatched FPN sizes are normally left
            to ``OrthoDistillLoss(resize=...)``. Defaults to None.
        init_cfg (dict, optional): MMEngine init config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 orthogonal: bool = True,
                 orthogonal_map: Optional[str] = None,
                 bias: Optional[bool] = None,
                 init: str = 'random',
                 resize_to: Optional[Union[int, Sequence[int]]] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        for key, value in (('in_channels', in_channels),
                           ('out_channels', out_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'ProjectorConnector {key}={value!r}: '
                                 'expected a positive channel count')
        if orthogonal_map is not None and \
                orthogonal_map not in ORTHOGONAL_MAPS:
            raise ValueError(
                f'ProjectorConnector orthogonal_map={orthogonal_map!r} is not '
                f'supported; choose one of {list(ORTHOGONAL_MAPS)} or None '
                f'({DEFAULT_MAP!r})')
        if init not in INITS:
            raise ValueError(f'ProjectorConnector init={init!r} is not '
                             f'supported; choose one of {list(INITS)}')
        if orthogonal and bias:
            raise ValueError(
                'ProjectorConnector orthogonal=True with bias=True: the VkD '
                'projector is a pure orthogonal map; set bias=None or '
                'orthogonal=False')
        if not orthogonal and orthogonal_map is not None:
            raise ValueError(
                f'ProjectorConnector orthogonal_map={orthogonal_map!r} needs '
                'orthogonal=True')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.orthogonal = orthogonal
        self.orthogonal_map = None
        self.resize_to = resize_to
        use_bias = (not orthogonal) if bias is None else bias
        self.proj = nn.Linear(in_channels, out_channels, bias=use_bias)
        self.init = init
        if init == 'identity':
            with torch.no_grad():
                self.proj.weight.copy_(torch.eye(out_channels, in_channels))
                if self.proj.bias is not None:
                    self.proj.bias.zero_()
        if orthogonal:
            self.orthogonal_map = orthogonal_map or DEFAULT_MAP
            parametrizations.orthogonal(
                self.proj, 'weight', orthogonal_map=self.orthogonal_map)

    def forward_train(self, feature: Tensor) -> Tensor:
        """(B, Cs, H, W) -> (B, Ct, H, W), or (N, Cs) -> (N, Ct)."""
        if feature.dim() not in (2, 4) or feature.shape[1] != self.in_channels:
            raise ValueError(
                f'ProjectorConnector(in_channels={self.in_channels}) got '
                f'features of shape {tuple(feature.shape)}; set in_channels '
                'to the recorded student channels (dim 1)')
        # Read the (parametrised) weight once: each read of an orthogonal W
        # evaluates the map (a solve for cayley) and adds it to the graph.
        weight = self.proj.weight
        bias = self.proj.bias
        if feature.dim() == 2:
            return F.linear(feature, weight, bias)
        out = F.conv2d(feature, weight[:, :, None, None], bias)
        if self.resize_to is not None:
            out = F.interpolate(out, size=self.resize_to, mode='bilinear',
                                align_corners=False)
        return out

    def extra_repr(self) -> str:
        return (f'{self.in_channels} -> {self.out_channels}, '
                f'orthogonal={self.orthogonal}, map={self.orthogonal_map}')
