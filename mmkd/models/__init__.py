"""Registered mmkd modules (leaves: configs reach them through
``mmrazor.registry.MODELS`` by name)."""
from .algorithms import ReducedPrecisionTeacherDistill
from .connectors import ProjectorConnector
from .losses import OrthoDistillLoss

__all__ = ['ReducedPrecisionTeacherDistill', 'ProjectorConnector',
           'OrthoDistillLoss']
