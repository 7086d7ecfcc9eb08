"""Distillation for DINO: tokens (neck maps, encoder output) and queries.

The query pairing rule (docs/detr.md): DETR queries are unordered, so the
student's own queries cannot be compared with the teacher's by index.
Following KD-DETR's "consistent distillation points" (CVPR 2024; its DINO
port in the TPRD repository, and D3ETR, do the same), the
TEACHER's queries are the distillation points: query ``n`` is the content
query the teacher's decoder receives as its ``n``-th query (DINO's learned
``query_embedding``) with the teacher's ``n``-th reference point (the box of
its ``n``-th two-stage proposal), both detached. They go through the
teacher's decoder (its own pass) and the STUDENT's decoder, on each model's
own encoder memory, so output ``n`` of both decoders answers the same query
about the same image: the outputs pair by index at every layer.

In the student they run as a further query group of the student's own
decoder call (``probe='group'``), after its denoising and matching queries
and masked from them both ways, as DINO masks its denoising groups: one
decoder call, and what the student's head and loss see is unchanged.
``probe='second_pass'`` runs them in a second decoder call instead (the
same outputs; kept to measure against).

``query_input='student_content'`` is mmkd's own variant (not from a paper):
the student's ``n``-th content query at the teacher's ``n``-th box.
``num_points=K`` keeps the teacher's K best-ranked queries (its two-stage
selection is sorted by score) in both decoders; ``num_general=G`` adds G
random points (KD-DETR's "general" points) to both.
"""
import math
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS

from ..recorders import DetrDecoderQueriesRecorder, DetrEncoderLevelsRecorder
from .strict_teacher import StrictSingleTeacherDistill

# How far the teacher has to run, by the recorders the distiller uses.
_NECK, _ENCODER, _DECODER = 1, 2, 3
QUERY_INPUTS = ('teacher', 'student_content')
PROBES = ('group', 'second_pass')


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


def group_attention_mask(own_mask: Optional[torch.Tensor], own: int,
                         group: int,
                         device: torch.device) -> torch.Tensor:
    """Self-attention mask for a decoder call of ``own`` queries (with their
    mask ``own_mask``, DINO's ``dn_mask`` or None) followed by a group of
    ``group`` queries. True = blocked, DINO's convention: the group and the
    others never see each other; inside the group every query sees every
    other, as the teacher's queries do in the teacher's decoder."""
    mask = torch.zeros(own + group, own + group, dtype=torch.bool,
                       device=device)
    if own_mask is not None:
        mask[:own, :own] = own_mask
    mask[:own, own:] = True
    mask[own:, :own] = True
    return mask


@contextmanager
def _instance_override(model, method: str, replacement):
    """``model.method = replacement`` for the block (instance level: other
    models of the class are untouched); a user's own instance-level override
    is put back on exit."""
    own = model.__dict__.get(method)
    setattr(model, method, replacement)
    try:
        yield
    finally:
        if own is None:
            delattr(model, method)
        else:
            setattr(model, method, own)


@contextmanager
def _decoder_inputs(model):
    """Collect what ``model``'s own pass gives its decoder besides queries:
    ``pre_transformer``'s decoder inputs (memory mask, spatial shapes, level
    start index, valid ratios) and ``forward_encoder``'s memory."""
    store: Dict = {}

    def capture(method, pick):
        original = getattr(model, method)

        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)
            store.update(pick(out))
            return out
        return _instance_override(model, method, wrapped)

    with capture('pre_transformer', lambda out: out[1]), \
            capture('forward_encoder', lambda out: out):
        yield store


@contextmanager
def _query_group(model, query: torch.Tensor, reference_points: torch.Tensor,
                 recorders: Sequence[DetrDecoderQueriesRecorder]):
    """During the block, ``model``'s decoder call carries ``query`` /
    ``reference_points`` (B, K, C) / (B, K, 4) as a further group after its
    own queries (:func:`group_attention_mask`); the outputs given back to
    the detector are its own queries' only, and ``recorders`` record the
    group as a record of its own."""
    original = model.forward_decoder
    group = query.shape[1]

    def forward_decoder(query: torch.Tensor, reference_points: torch.Tensor,
                        dn_mask: Optional[torch.Tensor] = None, **kwargs):
        own = query.shape[1]
        out = original(
            query=torch.cat([query, group_query], 1),
            reference_points=torch.cat([reference_points, group_refs], 1),
            dn_mask=group_attention_mask(dn_mask, own, group, query.device),
            **kwargs)
        out['hidden_states'] = out['hidden_states'][..., :own, :]
        out['references'] = [r[:, :own] for r in out['references']]
        return out

    group_query, group_refs = query, reference_points
    for recorder in recorders:
        recorder.group_size = group
    try:
        with _instance_override(model, 'forward_decoder', forward_decoder):
            yield
    finally:
        for recorder in recorders:
            recorder.group_size = 0


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
    terms, the student's ``DetrDecoderQueries`` record 1 holds the
    student's decoder outputs on the distillation points (record 0: its own
    matching queries), which is what the query losses read
    (``mmkd.distill.detr_distiller_cfg`` maps them so).

    Args:
        query_input (str): the distillation points' content query:
            ``'teacher'`` (KD-DETR: the teacher's content query, with the
            teacher's reference point) or ``'student_content'`` (mmkd's
            variant: the student's content query at the teacher's reference
            point). Defaults to ``'teacher'``.
        probe (str): ``'group'`` (a further query group in the student's own
            decoder call) or ``'second_pass'`` (a second call of the
            student's decoder). Same outputs. Defaults to ``'group'``.
        num_points (int, optional): distil the teacher's ``num_points``
            best-ranked queries only (both decoders run on those). Defaults
            to None: all of its queries.
        num_general (int): add this many *general* distillation points
            (KD-DETR's random points) after the teacher's: content queries
            drawn from N(0, 1) and reference boxes ``sigmoid(N(0, 1))``,
            fresh every step, the same for every image of the batch, run
            through both decoders like the teacher's points. Needs
            ``query_input='teacher'``. Defaults to 0.
        **kwargs: those of MMRazor's ``SingleTeacherDistill`` (and mmkd's
            strict ``teacher_ckpt``). Query terms need a DINO teacher and
            student; token terms need only a ``forward_encoder``
            (Deformable DETR works too).
    """

    def __init__(self, query_input: str = 'teacher', probe: str = 'group',
                 num_points: Optional[int] = None, num_general: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        for key, value, choices in (('query_input', query_input,
                                     QUERY_INPUTS), ('probe', probe, PROBES)):
            if value not in choices:
                raise ValueError(
                    f'DinoTeacherDistill: model.{key}={value!r}; choose one '
                    f'of {", ".join(repr(c) for c in choices)}')
        if self.teacher_trainable:
            raise ValueError(
                'DinoTeacherDistill: teacher_trainable=True is not supported '
                '(the teacher runs in eval mode, without denoising queries, '
                'and its loss is never computed); remove it')
        self.query_input, self.probe_mode = query_input, probe
        self.num_points = num_points
        self.num_general = num_general
        self.teacher.eval()
        self._teacher_depth = _depth(self.distiller.teacher_recorders)
        self._student_depth = _depth(self.distiller.student_recorders)
        self._probe = self._student_depth == _DECODER
        self._group_recorders = [
            r for r in self.distiller.student_recorders.recorders.values()
            if isinstance(r, DetrDecoderQueriesRecorder)]
        if self._probe:
            self._check_query_pair()

    def _check_query_pair(self) -> None:
        from mmdet.models.detectors import DINO
        teacher, student = self.teacher, self.student
        if not (isinstance(student, DINO) and isinstance(teacher, DINO)):
            raise TypeError(
                'DinoTeacherDistill: query distillation (DetrDecoderQueries '
                'recorders) needs a DINO teacher and student; got '
                f'{type(teacher).__name__} -> {type(student).__name__}. Drop '
                'the query terms (distiller queries=None) to distil tokens '
                'only')
        if teacher.num_queries != student.num_queries:
            raise ValueError(
                f'DinoTeacherDistill pairs queries by index: the teacher '
                f'has {teacher.num_queries} matching queries, the student '
                f'{student.num_queries}; set model.architecture.num_queries='
                f'{teacher.num_queries}')
        n = self.num_points
        if n is not None and not (isinstance(n, int)
                                  and 0 < n <= teacher.num_queries):
            raise ValueError(
                f'DinoTeacherDistill: model.num_points={n!r}; give an int in '
                f'1..{teacher.num_queries} (the teacher\'s num_queries) or '
                'None for all of them')
        g = self.num_general
        if not isinstance(g, int) or isinstance(g, bool) or g < 0:
            raise ValueError(
                f'DinoTeacherDistill: model.num_general={g!r}; give an int '
                '>= 0 (0: the teacher\'s points only)')
        if g and self.query_input != 'teacher':
            raise ValueError(
                'DinoTeacherDistill: model.num_general needs model.'
                "query_input='teacher' (a general point has no index, so "
                "there is no student content query to take); set "
                'num_general=0 or query_input=\'teacher\'')
        if self.query_input == 'teacher' and \
                teacher.embed_dims != student.embed_dims:
            # mmdet's DINO ties embed_dims to its 128 sine features (256), so
            # this is rare; a learned map would be a further, unpublished
            # part, so it is refused rather than added silently.
            raise ValueError(
                "DinoTeacherDistill: model.query_input='teacher' feeds the "
                f"teacher's content queries ({teacher.embed_dims}-dim) to the "
                f"student's decoder ({student.embed_dims}-dim); give both "
                "models the same embed_dims or set model.query_input="
                "'student_content'")

    def train(self, mode: bool = True):
        """The frozen teacher always runs in eval mode: no denoising queries
        (DINO adds them when ``training``), no dropout, BN statistics fixed.
        """
        super().train(mode)
        self.teacher.eval()
        return self

    def _run_teacher(self, batch_inputs: torch.Tensor,
                     data_samples) -> Optional[Dict[str, torch.Tensor]]:
        """Teacher to the depth the recorders need; returns the distillation
        points when the teacher's decoder runs: ``query`` (B, K, C), the
        teacher's decoder's content queries, and ``reference_points``
        (B, K, 4), sigmoid space), both detached."""
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
        # The two-stage selection is sorted by score: the first K are the
        # teacher's K best-ranked queries.
        k = self.num_points or queries['query'].shape[1]
        points = {key: queries[key][:, :k].detach()
                  for key in ('query', 'reference_points')}
        if self.num_general:
            points = self._add_general_points(points)
        dec_in.update(queries, **points)
        teacher.forward_decoder(**dec_in)
        return points

    def _add_general_points(self, points: Dict[str, torch.Tensor]
                            ) -> Dict[str, torch.Tensor]:
        """KD-DETR's general points after the teacher's: random content
        queries N(0, 1) and boxes sigmoid(N(0, 1)) (centre and size around
        half the image), one draw per step for the whole batch."""
        query, refs = points['query'], points['reference_points']
        b, g = query.shape[0], self.num_general
        content = torch.randn(g, query.shape[2], device=query.device,
                              dtype=query.dtype)
        boxes = torch.randn(g, refs.shape[2], device=refs.device,
                            dtype=refs.dtype).sigmoid()
        return dict(
            query=torch.cat([query, content.expand(b, -1, -1)], 1),
            reference_points=torch.cat([refs, boxes.expand(b, -1, -1)], 1))

    def teacher_forward(self, batch_inputs: torch.Tensor, data_samples
                        ) -> Optional[Dict[str, torch.Tensor]]:
        """The teacher's part of a training step, as :meth:`loss` runs it:
        no gradients, into the distiller's teacher recorders (and
        deliveries), only as deep as the recorders need (backbone + neck,
        + encoder, + two-stage selection and decoder).

        Args:
            batch_inputs (Tensor): the preprocessed images, (B, 3, H, W).
            data_samples (list[DetDataSample]): their samples (image
                shapes; ground truth is not read).

        Returns:
            dict or None: the distillation points when the teacher's decoder
            runs: ``query`` (B, K, C), the teacher's decoder's content
            queries, and ``reference_points`` (B, K, 4, sigmoid space), both
            detached; None otherwise.
        """
        self.distiller.set_deliveries_override(False)
        try:
            with self.distiller.teacher_recorders, \
                    self.distiller.deliveries, torch.no_grad():
                return self._run_teacher(batch_inputs, data_samples)
        finally:
            self.distiller.set_deliveries_override(True)

    def _probe_queries(self, points: Dict[str, torch.Tensor]):
        """(content queries, reference points) the student's decoder gets
        for the distillation points."""
        refs = points['reference_points']
        if self.query_input == 'teacher':
            return points['query'], refs
        own = self.student.query_embedding.weight[:refs.shape[1]]
        return own[None].expand(refs.shape[0], -1, -1), refs

    def probe(self, encoder_out: Dict, points: Dict[str, torch.Tensor]):
        """``probe='second_pass'``: the student's decoder once more, on the
        distillation points, with the student's encoder memory and no
        denoising queries."""
        query, refs = self._probe_queries(points)
        keys = ('memory', 'memory_mask', 'spatial_shapes',
                'level_start_index', 'valid_ratios')
        return self.student.forward_decoder(
            query=query, reference_points=refs, dn_mask=None,
            **{k: encoder_out[k] for k in keys})

    @contextmanager
    def _student_pass(self, points: Optional[Dict[str, torch.Tensor]]):
        """Around the student's own forward: the distillation group in its
        decoder call, or the capture of its decoder inputs for a second
        pass (run on exit), or nothing without query terms."""
        if not self._probe:
            yield
        elif self.probe_mode == 'group':
            with _query_group(self.student, *self._probe_queries(points),
                              self._group_recorders):
                yield
        else:
            with _decoder_inputs(self.student) as enc:
                yield
            self.probe(enc, points)

    def loss(self, batch_inputs: torch.Tensor,
             data_samples: Optional[List[BaseDataElement]] = None) -> dict:
        """The student's loss (unless ``calculate_student_loss=False``) and,
        until distillation is stopped (MMRazor's ``StopDistillHook``), the
        distillation terms; once stopped, neither the teacher nor the
        distillation points run."""
        losses = dict()
        if self.distillation_stopped:
            if self.calculate_student_loss:
                losses.update(add_prefix(self.student(
                    batch_inputs, data_samples, mode='loss'), 'student'))
            return losses
        points = self.teacher_forward(batch_inputs, data_samples)
        grad = torch.enable_grad() if self.student_trainable else \
            torch.no_grad()
        with self.distiller.student_recorders, self.distiller.deliveries, \
                grad:
            with self._student_pass(points):
                student_losses = self.student(
                    batch_inputs, data_samples, mode='loss')
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
        its depth, the student's transformer in eval mode with the
        distillation points as in training."""
        with self.distiller.teacher_recorders:
            points = self._run_teacher(batch_inputs, data_samples)
        with self.distiller.student_recorders:
            feats = self.student.extract_feat(batch_inputs)
            if self._student_depth > _NECK:
                with self._student_pass(points):
                    self.student.forward_transformer(feats, data_samples)


__all__ = ['DinoTeacherDistill', 'group_attention_mask']
