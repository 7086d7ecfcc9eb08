"""Recorders that present a DETR-family transformer's tokens as maps.

MMRazor's connectors and losses, and mmkd's, take ``(B, C, H, W)`` maps.
These two recorders (registered in ``mmrazor.registry.TASK_UTILS``; MMRazor
adds "Recorder" to the type a config names) hook a
DETR encoder or decoder (keyword arguments included, which MMRazor's own
``ModuleOutputs`` recorder cannot see) and return, for ``data_idx=i``:

- ``DetrEncoderLevels`` (on ``encoder``): the encoder's output tokens of
  scale ``i`` laid back on that scale's grid, ``(B, C, H_i, W_i)``, using the
  ``spatial_shapes`` the detector passed to the encoder. Works for every
  encoder mmdet calls with ``spatial_shapes`` (DINO, Deformable DETR).
- ``DetrDecoderQueries`` (on ``decoder``): the output of decoder layer
  ``i`` for the matching queries, ``(B, C, N, 1)`` (query ``n`` at row
  ``n``), or with ``layers=...`` the given layers pooled into one map
  (VkD's single query term). Denoising queries are never returned: DINO
  puts them first and passes a ``self_attn_mask`` in which a matching query
  may not attend to them, so their count is read from that mask. A
  distillation query group appended after the matching queries
  (``DinoTeacherDistill``) is returned as a record of its own.

With ``(B, C, N, 1)`` maps, ``OrthoDistillLoss(norm='batch')`` standardises
each channel over all B*N tokens, which is VkD's batch standardisation of
tokens, and a ``ProjectorConnector`` (a 1x1 map) is a per-token linear map.
"""
from typing import Any, List, Optional, Sequence

import torch
from mmrazor.models.task_modules.recorder import ModuleOutputsRecorder
from mmrazor.registry import TASK_UTILS
from torch import nn


class _KwargsRecorder(ModuleOutputsRecorder):
    """A module-output recorder whose hook also sees keyword arguments."""

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        modules = dict(model.named_modules()) if model is not None else {}
        if self.source not in modules:
            raise ValueError(
                f'{type(self).__name__}: the model has no module '
                f'{self.source!r} (a DETR-family detector has "encoder" and '
                '"decoder")')
        modules[self.source].register_forward_hook(
            self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, outputs) -> None:
        if self.recording:
            self.data_buffer.append(self.record(args, kwargs, outputs))

    def record(self, args, kwargs, outputs) -> Any:
        raise NotImplementedError

    def get_record_data(self, record_idx: int = 0,
                        data_idx: Optional[int] = None) -> Any:
        if record_idx >= len(self.data_buffer):
            raise IndexError(
                f'{type(self).__name__} on {self.source!r} holds '
                f'{len(self.data_buffer)} records, record_idx={record_idx} '
                'asked: the module did not run that many times in this step')
        items: List[torch.Tensor] = self.data_buffer[record_idx]
        return items if data_idx is None else items[data_idx]


@TASK_UTILS.register_module()
class DetrEncoderLevelsRecorder(_KwargsRecorder):
    """Encoder output tokens, one ``(B, C, H, W)`` map per scale."""

    def record(self, args, kwargs, outputs) -> List[torch.Tensor]:
        memory = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        shapes = kwargs.get('spatial_shapes')
        if shapes is None:
            raise ValueError(
                f'DetrEncoderLevels on {self.source!r}: the module was not '
                'called with spatial_shapes=...; it records the encoder of a '
                'multi-scale DETR (DINO, Deformable DETR)')
        sizes = [int(h) * int(w) for h, w in shapes.tolist()]
        if sum(sizes) != memory.shape[1]:
            raise ValueError(
                f'DetrEncoderLevels: {memory.shape[1]} tokens but '
                f'spatial_shapes {shapes.tolist()} give {sum(sizes)}')
        maps = []
        for part, (h, w) in zip(memory.split(sizes, dim=1), shapes.tolist()):
            maps.append(part.transpose(1, 2).reshape(
                memory.shape[0], memory.shape[2], int(h), int(w)))
        return maps


def denoising_count(self_attn_mask: Optional[torch.Tensor],
                    trailing: int = 0) -> int:
    """The number of denoising queries in front of the matching ones.

    DINO's mask (``CdnQueryGenerator.generate_dn_mask``) is True where
    attention is blocked; a matching query is blocked from exactly the
    denoising queries and from a trailing group of ``trailing`` queries
    (:class:`mmkd.models.DinoTeacherDistill`'s distillation queries, which
    sit after the matching ones and are masked from them). The last
    matching query is row ``-trailing - 1``."""
    if self_attn_mask is None:
        return 0
    return int(self_attn_mask[-trailing - 1].sum()) - trailing


@TASK_UTILS.register_module()
class DetrDecoderQueriesRecorder(_KwargsRecorder):
    """Decoder layer outputs of the matching queries as ``(B, C, N, 1)``.

    Args:
        source (str): the decoder module, ``'decoder'``.
        layers (Sequence[int], optional): pool these decoder layers into ONE
            map ``(B, C, len(layers) * N, 1)`` (layer ``layers[0]``'s queries
            first), so that one connector and one loss with batch
            statistics over layers x queries cover them all (VkD's single
            query term). Defaults to None: one map per decoder layer,
            ``data_idx`` = layer index.

    A call that carries a distillation group (``group_size`` > 0, set by
    :class:`mmkd.models.DinoTeacherDistill` around the student's forward)
    gives two records: the matching queries, then the group.
    """

    def __init__(self, source: str, layers: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        super().__init__(source, **kwargs)
        self.layers = None if layers is None else [int(i) for i in layers]
        # Queries appended after the matching ones in the current call.
        self.group_size = 0

    def _hook(self, module, args, kwargs, outputs) -> None:
        if not self.recording:
            return
        states = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        if states.dim() == 3:  # return_intermediate=False: the last layer
            states = states[None]
        group = self.group_size
        skip = denoising_count(kwargs.get('self_attn_mask'), group)
        end = states.shape[2] - group
        self.data_buffer.append(self._maps(states[:, :, skip:end]))
        if group:
            self.data_buffer.append(self._maps(states[:, :, end:]))

    def _maps(self, states: torch.Tensor) -> List[torch.Tensor]:
        """(L, B, N, C) -> one (B, C, N, 1) map per layer, or the pooled
        layers as one (B, C, len(layers) * N, 1) map."""
        if self.layers is None:
            return [s.transpose(1, 2).unsqueeze(-1) for s in states]
        if max(self.layers) >= states.shape[0]:
            raise ValueError(
                f'DetrDecoderQueries on {self.source!r}: layers='
                f'{self.layers} but the decoder gives {states.shape[0]} '
                'layers; set the DetrDistiller queries levels (student) or '
                f'teacher_levels (teacher) to indices below {states.shape[0]}')
        pooled = torch.cat([states[i] for i in self.layers], dim=1)
        return [pooled.transpose(1, 2).unsqueeze(-1)]


@TASK_UTILS.register_module()
class DetrQueryScoresRecorder(DetrDecoderQueriesRecorder):
    """One weight per query: the detector's top class score, max over
    classes of ``sigmoid(cls_branches[l](h_l))`` for decoder layer
    ``score_layer``'s output ``h_l`` (the score DINO's head gives that
    layer's prediction), laid out like :class:`DetrDecoderQueriesRecorder`'s
    map for the same ``layers``: ``(B, 1, N, 1)`` per layer, or the pooled
    ``(B, 1, len(layers) * N, 1)`` with query ``n``'s score repeated for
    every layer. Recorded on the teacher, it is the per-query weight of
    KD-DETR's distillation points (most of them are background), given to
    ``OrthoDistillLoss(weight=...)``.

    Args:
        source (str): the decoder module, ``'decoder'``.
        layers (Sequence[int], optional): as for ``DetrDecoderQueries``.
        score_layer (int): the decoder layer whose prediction gives the
            score. Defaults to -1, the last (the detector's output).
    """

    def __init__(self, source: str, layers: Optional[Sequence[int]] = None,
                 score_layer: int = -1, **kwargs) -> None:
        super().__init__(source, layers=layers, **kwargs)
        self.score_layer = int(score_layer)
        self._cls_branches = None

    def prepare_from_model(self, model: Optional[nn.Module] = None) -> None:
        branches = getattr(getattr(model, 'bbox_head', None),
                           'cls_branches', None)
        if branches is None:
            raise ValueError(
                'DetrQueryScores: the model has no bbox_head.cls_branches '
                '(one classifier per decoder layer, as DINO and Deformable '
                'DETR with box refinement have); leave the query weights out '
                '(DetrDistiller queries weights=None)')
        super().prepare_from_model(model)
        # A list, not an attribute module: the recorder holds no parameters.
        self._cls_branches = [branches]

    def _maps(self, states: torch.Tensor) -> List[torch.Tensor]:
        if self.layers is not None and max(self.layers) >= states.shape[0]:
            return super()._maps(states)  # its error names the keys
        branches = self._cls_branches[0]
        layer = self.score_layer % states.shape[0]
        with torch.no_grad():
            scores = branches[layer](states[layer]).sigmoid().amax(-1)
        # (B, N) -> the queries recorder's layout, one channel.
        per_layer = scores[:, None, :, None]
        if self.layers is None:
            return [per_layer] * states.shape[0]
        return [per_layer.repeat(1, 1, len(self.layers), 1)]
