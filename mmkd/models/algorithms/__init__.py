from .dino_teacher_distill import DinoTeacherDistill
from .reduced_precision_teacher_distill import (
    ReducedPrecisionTeacherDistill,
)
from .strict_teacher import (
    StrictFpnTeacherDistill,
    StrictSingleTeacherDistill,
    StrictTeacherMixin,
)

__all__ = ['DinoTeacherDistill', 'ReducedPrecisionTeacherDistill',
           'StrictFpnTeacherDistill', 'StrictSingleTeacherDistill',
           'StrictTeacherMixin']
