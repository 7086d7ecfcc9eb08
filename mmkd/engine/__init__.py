from .amp import AutocastOptimWrapper
from .guards import (
                     FiniteLossHook,
                     NonFiniteLossError,
                     check_distiller_shapes,
                     check_finite,
)
from .teacher_checkpoint import DropFrozenTeacherHook

__all__ = ['AutocastOptimWrapper', 'DropFrozenTeacherHook', 'FiniteLossHook',
           'NonFiniteLossError', 'check_distiller_shapes', 'check_finite']
