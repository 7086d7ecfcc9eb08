"""The benchmark's ``*_bf16`` variants: MMRazor's ``FpnTeacherDistill``
with the frozen teacher in reduced precision.

An instrument of the benchmark, not a library module: no config uses it and
it is not registered (``mmkd_lab.benchmark`` builds it by its class). On the
2-core CPU where it was measured a bf16 teacher was slower than float32
(docs/benchmarks.md); its speed on a GPU has not been measured. A config
that wants it would need it in ``mmkd.models`` and registered again.
"""
from typing import List, Optional

import torch
from mmengine.structures import BaseDataElement
from mmrazor.models.utils import add_prefix

from mmkd.models import StrictFpnTeacherDistill

TEACHER_DTYPES = {'float32': None, 'bfloat16': torch.bfloat16,
                  'float16': torch.float16}


class ReducedPrecisionTeacherDistill(StrictFpnTeacherDistill):
    """MMRazor's ``FpnTeacherDistill`` (the teacher runs backbone + neck
    only) with the frozen teacher optionally in reduced precision.

    With ``teacher_dtype='bfloat16'`` (CPU or CUDA) or ``'float16'`` (CUDA)
    the teacher's backbone and neck run under ``torch.autocast`` and its
    recorded features are cast back to float32 before any connector or loss
    sees them. The student, its loss and the distillation losses are
    untouched. Everything else is ``FpnTeacherDistill``'s.

    ``tools/benchmark.py`` builds it for every distillation method (float32
    by default) and for the ``*_bf16`` variants.

    Args:
        teacher_dtype (str): ``'float32'`` (default, same as
            ``FpnTeacherDistill``), ``'bfloat16'`` or ``'float16'``.
        **kwargs: ``FpnTeacherDistill`` / ``SingleTeacherDistill`` arguments.
    """

    def __init__(self, teacher_dtype: str = 'float32', **kwargs) -> None:
        if teacher_dtype not in TEACHER_DTYPES:
            raise ValueError(
                'ReducedPrecisionTeacherDistill teacher_dtype='
                f'{teacher_dtype!r} is not supported; choose one of '
                f'{sorted(TEACHER_DTYPES)}')
        super().__init__(**kwargs)
        self.teacher_dtype = teacher_dtype

    def _teacher_features(self, batch_inputs: torch.Tensor) -> None:
        dtype = TEACHER_DTYPES[self.teacher_dtype]
        grad = torch.enable_grad() if self.teacher_trainable else \
            torch.no_grad()
        with self.distiller.teacher_recorders, self.distiller.deliveries, \
                grad, torch.autocast(batch_inputs.device.type, dtype=dtype,
                                     enabled=dtype is not None):
            self.teacher.extract_feat(batch_inputs)
        if dtype is not None:
            recorders = self.distiller.teacher_recorders.recorders
            for recorder in recorders.values():
                # In place: ``data_buffer`` is the recorder's own list.
                buffer = recorder.data_buffer
                buffer[:] = [_to_float(r) for r in buffer]

    def loss(self, batch_inputs: torch.Tensor,
             data_samples: Optional[List[BaseDataElement]] = None) -> dict:
        losses = dict()
        self.distiller.set_deliveries_override(False)
        self._teacher_features(batch_inputs)
        self.distiller.set_deliveries_override(True)
        with self.distiller.student_recorders, self.distiller.deliveries:
            student_losses = self.student(
                batch_inputs, data_samples, mode='loss')
        losses.update(add_prefix(student_losses, 'student'))
        if not self.distillation_stopped:
            losses.update(add_prefix(
                self.distiller.compute_distill_losses(), 'distill'))
        return losses


def _to_float(record):
    if isinstance(record, torch.Tensor):
        return record.float()
    if isinstance(record, (list, tuple)):
        return type(record)(_to_float(r) for r in record)
    return record
