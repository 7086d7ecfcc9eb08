from .amp import AutocastOptimWrapper
from .atomic_checkpoint import AtomicCheckpointHook
from .guards import (
                     FiniteLossHook,
                     NonFiniteLossError,
                     check_distiller_shapes,
                     check_finite,
)
from .teacher_checkpoint import DropFrozenTeacherHook

__all__ = ['AtomicCheckpointHook', 'AutocastOptimWrapper',
           'DropFrozenTeacherHook', 'FiniteLossHook', 'NonFiniteLossError',
           'check_distiller_shapes', 'check_finite']
