"""Registered mmkd modules (leaves: configs reach them through
``mmrazor.registry.MODELS`` / ``TASK_UTILS`` by name)."""
from .algorithms import (
    DinoTeacherDistill,
    StrictFpnTeacherDistill,
    StrictSingleTeacherDistill,
)
from .connectors import ProjectorConnector
from .distillers import CheckedDistiller, DistillerConfigError
from .losses import OrthoDistillLoss
from .recorders import (
    DetrDecoderQueriesRecorder,
    DetrEncoderLevelsRecorder,
    DetrQueryScoresRecorder,
)

__all__ = ['CheckedDistiller', 'DistillerConfigError', 'DinoTeacherDistill',
           'StrictFpnTeacherDistill', 'StrictSingleTeacherDistill',
           'ProjectorConnector', 'OrthoDistillLoss',
           'DetrDecoderQueriesRecorder', 'DetrEncoderLevelsRecorder',
           'DetrQueryScoresRecorder']
