from .amp import AutocastOptimWrapper
from .atomic_checkpoint import AtomicCheckpointHook
from .guards import (
                     FiniteLossHook,
                     NonFiniteLossError,
                     check_distiller_shapes,
                     check_finite,
)
from .loss_ratio import DistillLossRatioHook, distill_ratio
from .teacher_check import TeacherCheckError, check_teacher_quality
from .teacher_checkpoint import DropFrozenTeacherHook

__all__ = ['AtomicCheckpointHook', 'AutocastOptimWrapper',
           'DistillLossRatioHook', 'DropFrozenTeacherHook', 'FiniteLossHook',
           'NonFiniteLossError', 'TeacherCheckError', 'check_distiller_shapes',
           'check_finite', 'check_teacher_quality', 'distill_ratio']
