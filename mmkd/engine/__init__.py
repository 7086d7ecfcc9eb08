from .amp import AutocastOptimWrapper
from .guards import (FiniteLossHook, NonFiniteLossError, check_distiller_shapes,
                     check_finite)

__all__ = ['AutocastOptimWrapper', 'FiniteLossHook', 'NonFiniteLossError', 'check_distiller_shapes',
           'check_finite']
