"""Registered mmkd modules (leaves: configs reach them through
``mmrazor.registry.MODELS`` / ``TASK_UTILS`` by name)."""
from .algorithms import DinoTeacherDistill, ReducedPrecisionTeacherDistill
from .connectors import ProjectorConnector
from .losses import OrthoDistillLoss
from .recorders import DetrDecoderQueriesRecorder, DetrEncoderLevelsRecorder

__all__ = ['DinoTeacherDistill', 'ReducedPrecisionTeacherDistill',
           'ProjectorConnector', 'OrthoDistillLoss',
           'DetrDecoderQueriesRecorder', 'DetrEncoderLevelsRecorder']
