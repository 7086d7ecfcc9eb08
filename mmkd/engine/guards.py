"""Guards that stop a bad run early with a message a user can act on.

- :class:`FiniteLossHook`: every loss term is checked before the backward
  pass; a NaN/Inf stops training with the iteration and the term's name, so
  no step is taken on it. A checkpoint whose weights are not finite (an
  exploding step with a finite loss) is refused before it is written.
- :func:`check_distiller_shapes`: one tiny forward of both models before the
  first step, checking every connector and loss against the recorded
  features (channels, spatial sizes) and naming the config key to fix.
  Maps paired across strides (sizes that differ by more than rounding) are
  refused even for a loss that could interpolate them, unless the
  distiller was built with ``resize_across_strides=True``.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or Inf."""


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def check_finite(losses: Dict[str, torch.Tensor], iteration: int) -> None:
    """Raise :class:`NonFiniteLossError` naming every non-finite term."""
    bad = []
    for name, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, torch.Tensor) and not torch.isfinite(v).all():
                bad.append(f'{name}={v.detach().float().mean().item()}')
                break
    if bad:
        hint = ''
        if any(b.startswith('distill.') for b in bad):
            hint = (' A distillation term: check the teacher checkpoint and '
                    'the loss_weight of the distill losses; ')
        raise NonFiniteLossError(
            f'non-finite loss at iteration {iteration}: {", ".join(bad)}.'
            f'{hint} No optimizer step was taken on it and no checkpoint was '
            'written after it; lower the learning rate, add '
            'optim_wrapper.clip_grad, or resume from the last checkpoint '
            '(tools/train.py CONFIG --resume).')


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Check every loss term for NaN/Inf before backward (see module doc)."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        if getattr(model.parse_losses, '_mmkd_finite', False):
            return
        parse_losses = model.parse_losses

        def checked_parse_losses(losses):
            check_finite(losses, runner.iter + 1)
            return parse_losses(losses)

        checked_parse_losses._mmkd_finite = True
        model.parse_losses = checked_parse_losses

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """A finite loss can still give an exploding step: never write
        non-finite weights over the last good checkpoint."""
        bad = [k for k, v in checkpoint.get('state_dict', {}).items()
               if isinstance(v, torch.Tensor) and v.is_floating_point()
               and not torch.isfinite(v).all()]
        if bad:
            raise NonFiniteLossError(
                f'non-finite weights after iteration {runner.iter + 1} '
                f'({len(bad)} tensors, e.g. {bad[0]}): the checkpoint was '
                'not written and the last one on disk is intact. Lower the '
                'learning rate or add optim_wrapper.clip_grad, then resume '
                'from the last checkpoint (tools/train.py CONFIG --resume).')


def _probe_input(model, size: Tuple[int, int]) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.zeros(1, 3, *size, device=device)


def _probe_sample(size: Tuple[int, int]):
    from mmdet.structures import DetDataSample
    return DetDataSample(metainfo=dict(
        img_shape=size, pad_shape=size, batch_input_shape=size))


def check_distiller_shapes(model, size: Tuple[int, int] = (128, 128)) -> None:
    """Run both models' ``extract_feat`` once on a zero image (or the
    algorithm's ``probe_features``, which runs DETR transformers too) and
    check each distill loss's inputs. No-op for a model that is not a
    teacher-student distiller. Raises ``ValueError`` naming the config key
    to fix. A model's ``probe_size`` (DINO: enough tokens for its queries)
    overrides ``size``."""
    model = _unwrap(model)
    size = getattr(model, 'probe_size', None) or size
    distiller = getattr(model, 'distiller', None)
    teacher = getattr(model, 'teacher', None)
    if distiller is None or teacher is None or not hasattr(
            distiller, 'loss_forward_mappings'):
        return
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = _probe_input(model, size)
            features = getattr(model, 'probe_features', None)
            if features is not None:
                # DinoTeacherDistill: encoders, decoders and the query probe.
                features(x, [_probe_sample(size)])
            else:
                with distiller.teacher_recorders, \
                        distiller.student_recorders:
                    teacher.extract_feat(x)
                    model.student.extract_feat(x)
            mappings = distiller.loss_forward_mappings.items()
            # Indices past a model's outputs first: they explain a size
            # mismatch of another term of the same pairing too.
            for loss_name, mapping in mappings:
                for record in mapping.values():
                    _recorded(distiller, loss_name, record)
            for loss_name, mapping in mappings:
                _check_mapping(distiller, loss_name, mapping)
    finally:
        model.train(was_training)
        for manager in (distiller.teacher_recorders,
                        distiller.student_recorders):
            for recorder in manager.recorders.values():
                recorder.reset_data_buffer()


def _shape(t) -> Optional[tuple]:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else None


def _recorded(distiller, loss_name: str, record: dict):
    """The recorded output a mapping names, or a ValueError naming the
    FpnDistiller key when its index is past the recorded outputs (MMRazor
    would stop on a bare assert)."""
    student = record.get('from_student')
    manager = (distiller.student_recorders if student else
               distiller.teacher_recorders)
    outputs = manager.get_recorder(record['recorder']).get_record_data(
        record.get('record_idx', 0))
    index = record.get('data_idx')
    count = len(outputs) if isinstance(outputs, (list, tuple)) else None
    if index is not None and count is not None and index >= count:
        key = 'levels' if student else 'teacher_levels'
        raise ValueError(
            f'distill loss {loss_name!r}: FpnDistiller {key} asks for '
            f"output {index} of the {'student' if student else 'teacher'}'s "
            f"{record['recorder']!r} recorder, which gives {count} "
            f'(indices 0-{count - 1}): set {key} to indices below {count}' +
            ('' if student else ' (teacher_levels pairs each student level '
             'with a teacher level)'))
    return distiller.get_record(
        **{k: v for k, v in record.items()
           if k not in ('connector', 'connector_idx')})


def _check_mapping(distiller, loss_name: str, mapping: dict) -> None:
    shapes = {}
    for arg, record in mapping.items():
        raw = _recorded(distiller, loss_name, record)
        connector_name = record.get('connector')
        if connector_name is not None:
            connector = distiller.connectors[connector_name]
            expected = getattr(connector, 'in_channels', None)
            if (expected is not None and isinstance(raw, torch.Tensor) and
                    raw.dim() >= 2 and raw.shape[1] != expected):
                raise ValueError(
                    f'distiller connector {connector_name!r} expects '
                    f'{expected} input channels but {arg} of {loss_name!r} '
                    f'(recorder {record.get("recorder")!r}, data_idx '
                    f'{record.get("data_idx")}) has shape {_shape(raw)}: set '
                    'student_channels (FpnDistiller) or in_channels to '
                    f'{raw.shape[1]}')
            raw = connector(raw)
        shapes[arg] = _shape(raw)
    s, t = shapes.get('preds_S'), shapes.get('preds_T')
    if s and t and len(s) >= 2 and len(t) >= 2 and s[1] != t[1]:
        raise ValueError(
            f'distill loss {loss_name!r} gets student {s} and teacher {t}: '
            'channels differ; set teacher_channels (FpnDistiller) or the '
            f'connector out_channels to {t[1]}')
    loss = distiller.distill_losses[loss_name]
    # OrthoDistillLoss(resize=...) and MMRazor's PKDLoss(resize_stu=True)
    # interpolate; the other losses need maps of one size.
    resizes = getattr(loss, 'resize', 'none') != 'none' or getattr(
        loss, 'resize_stu', False)
    if not (s and t and len(s) == 4 and len(t) == 4 and s[2:] != t[2:]):
        return
    if not resizes:
        raise ValueError(
            f'distill loss {loss_name!r} pairs a student map of size {s[2:]} '
            f'with a teacher map of size {t[2:]} (levels of different '
            f'strides) and {type(loss).__name__} cannot resize: pair levels '
            'of the same stride with FpnDistiller teacher_levels, or use '
            "OrthoDistillLoss(resize='student')")
    if differ_by_stride(s[2:], t[2:]) and not getattr(
            distiller, 'resize_across_strides', False):
        # Both losses resize by default, so a wrong teacher_levels would
        # train silently on interpolated maps: only an explicit request
        # lets it through.
        raise ValueError(
            f'distill loss {loss_name!r} pairs a student map of size {s[2:]} '
            f'with a teacher map of size {t[2:]}: they differ by a stride, '
            'not by rounding, so the levels paired are not of the same '
            'stride. Pair levels of the same stride with the distiller\'s '
            'teacher_levels (levels[i] is paired with teacher_levels[i]); '
            'to interpolate across strides on purpose, set '
            'resize_across_strides=True in the distiller (FpnDistiller / '
            'DetrDistiller)')


def differ_by_stride(size_s: Sequence[int], size_t: Sequence[int]) -> bool:
    """Whether two map sizes (H, W) come from different strides rather than
    from rounding: maps of one stride on one input differ by at most one
    position per side (ceil vs floor of an odd size); a factor-2 stride
    halves a side, so on the check's input (>= 128 px) its finer levels
    differ by more than one."""
    return any(abs(int(a) - int(b)) > 1 for a, b in zip(size_s, size_t))
