from .dino_teacher_distill import DinoTeacherDistill
from .reduced_precision_teacher_distill import (
    ReducedPrecisionTeacherDistill,
)

__all__ = ['DinoTeacherDistill', 'ReducedPrecisionTeacherDistill']
