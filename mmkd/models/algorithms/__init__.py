from .reduced_precision_teacher_distill import (
    ReducedPrecisionTeacherDistill,
)

__all__ = ['ReducedPrecisionTeacherDistill']
