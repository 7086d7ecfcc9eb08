"""Registered mmkd modules (leaves: configs reach them through
``mmrazor.registry.MODELS`` by name)."""
from .connectors import ProjectorConnector
from .losses import OrthoDistillLoss

__all__ = ['ProjectorConnector', 'OrthoDistillLoss']
