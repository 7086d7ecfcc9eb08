from .fast_fpn_teacher_distill import FastFpnTeacherDistill

__all__ = ['FastFpnTeacherDistill']
