from .dino_teacher_distill import DinoTeacherDistill
from .strict_teacher import (
    StrictFpnTeacherDistill,
    StrictSingleTeacherDistill,
    StrictTeacherMixin,
)

__all__ = ['DinoTeacherDistill', 'StrictFpnTeacherDistill',
           'StrictSingleTeacherDistill', 'StrictTeacherMixin']
