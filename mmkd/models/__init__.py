"""Registered mmkd modules (leaves: configs reach them through
``mmrazor.registry.MODELS`` by name)."""
from .algorithms import FastFpnTeacherDistill
from .connectors import ProjectorConnector
from .losses import OrthoDistillLoss

__all__ = ['FastFpnTeacherDistill', 'ProjectorConnector', 'OrthoDistillLoss']
