"""Distillation for DINO: tokens (neck maps, encoder output) and queries.

The query pairing rule (docs/detr.md): DETR queries are unordered, so the
student's own queries cannot be compared with the teacher's by index. mmkd
passes the TEACHER's queries through the STUDENT's decoder (a second,
"probe" pass on the student's own encoder memory): query ``n`` of the probe
starts from the teacher's ``n``-th two-stage proposal (its box, the
teacher's reference point, detached) with the student's ``n``-th content
query, exactly as the teacher's query ``n`` starts from the same box with
the teacher's ``n``-th content query. Outputs then line up by index, which is
VkD's own pairing (ViDT's queries are learned embeddings in both models).
The student's own matching queries and all denoising queries never enter the
query loss; DINO's two-stage selection is handled by taking the teacher's
selection (``pre_decoder``) as the shared query set. The student's detection
loss is untouched: the probe only adds distillation terms.
"""
import math
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS

from ..recorders import DetrDecoderQueriesRecorder, DetrEncoderLevelsRecorder
from .strict_teacher import StrictSingleTeacherDistill

# How far the teacher has to run, by the recorders the distiller uses.
_NECK, _ENCODER, _DECODER = 1, 2, 3


def _depth(manager) -> int:
    """How far a model must run for its recorders: by recorder type, and by
    source for any other recorder (e.g. ``ModuleOutputs`` on ``encoder``)."""
    depth = _NECK
    for recorder in manager.recorders.values():
        source = str(getattr(recorder, 'source', ''))
        if isinstance(recorder, DetrDecoderQueriesRecorder) or \
                source.startswith(('decoder', 'query_embedding')):
            depth = max(depth, _DECODER)
        elif isinstance(recorder, DetrEncoderLevelsRecorder) or \
                source.startswith('encoder'):
            depth = max(depth, _ENCODER)
    return depth


@contextmanager
def _decoder_inputs(model):
    """Collect what ``model``'s own pass gives its decoder besides queries:
    ``pre_transformer``'s decoder inputs (memory mask, spatial shapes, level
    start index, valid ratios) and ``forward_encoder``'s memory. Instance-
    level wraps, removed on exit: other models of the class are untouched.
    """
    store: Dict = {}
    originals, own = {}, {}
    picks = dict(pre_transformer=lambda out: out[1],
                 forward_encoder=lambda out: out)
    for method, pick in picks.items():
        originals[method] = getattr(model, method)
        own[method] = model.__dict__.get(method)

        def wrapped(*args, _original=originals[method], _pick=pick,
                    **kwargs):
            out = _original(*args, **kwargs)
            store.update(_pick(out))
            return out

        setattr(model, method, wrapped)
    try:
        yield store
    finally:
        for method in picks:
            if own[method] is None:
                delattr(model, method)
            else:  # an instance-level override of the user's: put it back
                setattr(model, method, own[method])


@MODELS.register_module()
class DinoTeacherDistill(StrictSingleTeacherDistill):
    """A frozen DINO teacher, a DINO student, VkD-style token and query
    distillation (see the module docstring for the query pairing).

    The teacher runs in eval mode (no denoising queries, no dropout), without
    gradients, and only as far as the distiller's recorders need: backbone +
    neck for neck maps, + encoder for ``DetrEncoderLevels``, + two-stage
    selection and decoder for ``DetrDecoderQueries``. Its head's forward and
    loss never run (the two-stage selection and the decoder's box
    refinement use the head's branches, as in DINO itself). With query
    terms, the student's decoder runs a second time on the teacher's
    queries inside the student's recorders: its ``DetrDecoderQueries``
    record 1 is that probe (record 0 is the student's own pass), which is
    what the query losses read (``mmkd.distill.detr_distiller_cfg`` maps
    them so).

    Args: those of MMRazor's ``SingleTeacherDistill``; the teacher and the
    student must be DINO (or subclasses) for query terms; token terms need
    only a ``forward_encoder`` (Deformable DETR works too).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.teacher_trainable:
            raise ValueError(
                'DinoTeacherDistill: teacher_trainable=True is not supported '
                '(the teacher runs in eval mode, without denoising queries, '
                'and its loss is never computed); remove it')
        self.teacher.eval()
        self._teacher_depth = _depth(self.distiller.teacher_recorders)
        self._student_depth = _depth(self.distiller.student_recorders)
        self._probe = self._student_depth == _DECODER
        if self._probe:
            t_queries = getattr(self.teacher, 'num_queries', None)
            s_queries = getattr(self.student, 'num_queries', None)
            from mmdet.models.detectors import DINO
            if not (isinstance(self.student, DINO)
                    and isinstance(self.teacher, DINO)):
                raise TypeError(
                    'DinoTeacherDistill: query distillation (DetrDecoder'
                    'Queries recorders) needs a DINO teacher and student; got '
                    f'{type(self.teacher).__name__} -> '
                    f'{type(self.student).__name__}. Drop the query terms '
                    '(distiller queries=None) to distil tokens only')
            if t_queries != s_queries:
                raise ValueError(
                    f'DinoTeacherDistill pairs queries by index: the teacher '
                    f'has {t_queries} matching queries, the student '
                    f'{s_queries}; set model.architecture.num_queries='
                    f'{t_queries}')

    def train(self, mode: bool = True):
        """The frozen teacher always runs in eval mode: no denoising queries
        (DINO adds them when ``training``), no dropout, BN statistics fixed.
        """
        super().train(mode)
        self.teacher.eval()
        return self

    def _run_teacher(self, batch_inputs: torch.Tensor,
                     data_samples) -> Optional[torch.Tensor]:
        """Teacher to the depth the recorders need; returns the teacher's
        query reference points (B, N, 4), sigmoid space) for the probe."""
        teacher = self.teacher
        if teacher.training:  # e.g. a caller's teacher.train()
            raise RuntimeError(
                'DinoTeacherDistill: the teacher must run in eval mode (DINO '
                'adds denoising queries in training); call model.train() on '
                'the distiller, not on its teacher')
        feats = teacher.extract_feat(batch_inputs)
        if self._teacher_depth == _NECK:
            return None
        enc_in, dec_in = teacher.pre_transformer(feats, data_samples)
        enc_out = teacher.forward_encoder(**enc_in)
        if self._teacher_depth == _ENCODER:
            return None
        # DINO's forward_transformer, step by step, to keep the queries.
        queries, _ = teacher.pre_decoder(
            **enc_out, batch_data_samples=data_samples)
        dec_in.update(queries)
        teacher.forward_decoder(**dec_in)
        return queries['reference_points']

    def probe(self, encoder_out: Dict, reference_points: torch.Tensor):
        """The student's decoder on the teacher's queries (see module doc):
        the student's content queries with the teacher's reference points,
        the student's encoder memory, no denoising queries."""
        student = self.student
        batch = reference_points.shape[0]
        query = student.query_embedding.weight[None].expand(batch, -1, -1)
        keys = ('memory', 'memory_mask', 'spatial_shapes',
                'level_start_index', 'valid_ratios')
        return student.forward_decoder(
            query=query, reference_points=reference_points.detach(),
            dn_mask=None, **{k: encoder_out[k] for k in keys})

    def loss(self, batch_inputs: torch.Tensor,
             data_samples: Optional[List[BaseDataElement]] = None) -> dict:
        """The student's loss (unless ``calculate_student_loss=False``) and,
        until distillation is stopped (MMRazor's ``StopDistillHook``), the
        distillation terms; once stopped, neither the teacher nor the probe
        runs."""
        losses = dict()
        if self.distillation_stopped:
            if self.calculate_student_loss:
                losses.update(add_prefix(self.student(
                    batch_inputs, data_samples, mode='loss'), 'student'))
            return losses
        self.distiller.set_deliveries_override(False)
        with self.distiller.teacher_recorders, self.distiller.deliveries, \
                torch.no_grad():
            t_refs = self._run_teacher(batch_inputs, data_samples)
        self.distiller.set_deliveries_override(True)
        grad = torch.enable_grad() if self.student_trainable else \
            torch.no_grad()
        with self.distiller.student_recorders, self.distiller.deliveries, \
                grad:
            capture = _decoder_inputs(self.student) if self._probe \
                else nullcontext()
            with capture as enc:
                student_losses = self.student(
                    batch_inputs, data_samples, mode='loss')
            if self._probe:
                self.probe(enc, t_refs)
        if self.calculate_student_loss:
            losses.update(add_prefix(student_losses, 'student'))
        losses.update(add_prefix(
            self.distiller.compute_distill_losses(), 'distill'))
        return losses

    @property
    def probe_size(self) -> Tuple[int, int]:
        """A square input on which DINO's two-stage selection finds its
        queries (at least ``num_queries`` tokens at stride 8): 128 for the
        demo's 100 queries, 256 for COCO's 900."""
        queries = max(getattr(m, 'num_queries', 0) or 0
                      for m in (self.student, self.teacher))
        side = 64 * math.ceil(8 * math.ceil(math.sqrt(queries)) / 64)
        return max(128, side), max(128, side)

    def probe_features(self, batch_inputs: torch.Tensor,
                       data_samples) -> None:
        """Both models once, without ground truth, inside the caller's
        recorder contexts (mmkd's pre-training shape check): the teacher to
        its depth, the student's transformer in eval mode and the probe."""
        with self.distiller.teacher_recorders:
            t_refs = self._run_teacher(batch_inputs, data_samples)
        with self.distiller.student_recorders:
            feats = self.student.extract_feat(batch_inputs)
            with _decoder_inputs(self.student) as enc:
                if self._student_depth > _NECK:
                    self.student.forward_transformer(feats, data_samples)
            if self._probe:
                self.probe(enc, t_refs)
