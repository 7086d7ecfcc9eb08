from .amp import AutocastOptimWrapper
from .teacher_checkpoint import DropFrozenTeacherHook
from .guards import (FiniteLossHook, NonFiniteLossError, check_distiller_shapes,
                     check_finite)

__all__ = ['AutocastOptimWrapper', 'DropFrozenTeacherHook', 'FiniteLossHook',
           'NonFiniteLossError', 'check_distiller_shapes', 'check_finite']
