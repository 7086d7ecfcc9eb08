"""mmkd: projector-based knowledge distillation (SRD, VkD) for MMDetection
FPN detectors through MMRazor.

``import mmkd`` first applies :mod:`mmkd.compat` (so that the pinned
OpenMMLab stack imports and loads checkpoints safely on current PyTorch),
then registers :class:`ProjectorConnector`, :class:`OrthoDistillLoss` and the
``FpnDistiller`` builder in ``mmrazor.registry.MODELS``, and
:class:`DropFrozenTeacherHook`, :class:`FiniteLossHook` and
:class:`AutocastOptimWrapper` in MMEngine's root registries.
"""
from . import compat

compat.apply()

from . import distill  # noqa: E402,F401  (registers FpnDistiller)
from .engine import DropFrozenTeacherHook  # noqa: E402
from .models import OrthoDistillLoss, ProjectorConnector  # noqa: E402

__version__ = '0.1.0'
__all__ = ['DropFrozenTeacherHook', 'OrthoDistillLoss', 'ProjectorConnector',
           '__version__']
