from .guards import (FiniteLossHook, NonFiniteLossError, check_distiller_shapes,
                     check_finite)

__all__ = ['FiniteLossHook', 'NonFiniteLossError', 'check_distiller_shapes',
           'check_finite']
