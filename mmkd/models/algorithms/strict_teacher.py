"""MMRazor's single-teacher distillers with a teacher checkpoint that must fit.

MMRazor 1.0.0 loads ``teacher_ckpt`` with ``strict=False``: a checkpoint of
another architecture silently leaves a random teacher, and distillation
"gives no gain". These subclasses load it with
:func:`mmkd.checkpoint.load_state_strict` (weights only, every key and shape
checked) and leave MMRazor's own classes as they are.

The teacher is loaded when it is first needed, not when the model is built:
evaluating the student (MMDetection's ``tools/test.py`` on a distill config)
builds the whole distiller but never runs the teacher, so it neither reads
nor downloads the teacher checkpoint. Training loads it before the first
step: :class:`mmkd.engine.DropFrozenTeacherHook` calls :meth:`load_teacher`
in ``before_train`` (and then compares a resumed checkpoint's teacher
fingerprint), and a ``mode='loss'`` forward calls it in any case.

The teacher may be named by its MMDetection config, as MMRazor's configs do
(``teacher=dict(cfg_path='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
pretrained=False)``). mmkd resolves the reference itself
(:func:`mmkd.config_files.detector_config`): keys given beside ``cfg_path``
(``--cfg-options model.teacher.bbox_head.num_classes=3``) are merged into
that config's model, where MMEngine's builder would ignore the ones the
config sets. That config's ImageNet init (a ``Pretrained`` ``init_cfg``) is
never applied to the teacher: its weights come from ``teacher_ckpt``, and
without one (tests, timing) it stays random, with no download.
"""
from typing import Optional

from mmrazor.models.algorithms.distill.configurable import (
    fpn_teacher_distill,
    single_teacher_distill,
)
from mmrazor.registry import MODELS

from mmkd.config_files import detector_config


def _loads_weights(init_cfg) -> bool:
    """Whether an ``init_cfg`` (a dict or a list of them) loads weights."""
    inits = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(i, dict) and i.get('type') == 'Pretrained'
               for i in inits)


class StrictTeacherMixin:
    """Strict, deferred teacher loading for a ``SingleTeacherDistill``.

    Args:
        teacher_ckpt (str, optional): the teacher's checkpoint (path or URL),
            loaded strictly by :meth:`load_teacher`. Defaults to None (the
            teacher keeps its initial weights, e.g. in tests).
    """

    def __init__(self, *args, teacher_ckpt: Optional[str] = None,
                 **kwargs) -> None:
        teacher = kwargs.get('teacher')
        if isinstance(teacher, dict) and 'cfg_path' in teacher:
            # A teacher named by its config: its model, with the keys given
            # beside cfg_path merged in (or refused, naming the fix).
            kwargs['teacher'] = detector_config(teacher, 'model.teacher')
        super().__init__(*args, teacher_ckpt=None, **kwargs)
        self.teacher_ckpt = teacher_ckpt
        self.teacher_loaded = not teacher_ckpt
        for module in self.teacher.modules():
            if _loads_weights(getattr(module, 'init_cfg', None)):
                module.init_cfg = None
        if teacher_ckpt:
            # Its weights come from teacher_ckpt: init_weights() must leave
            # it alone.
            self.teacher._is_init = True

    def load_teacher(self) -> None:
        """Load ``teacher_ckpt`` into the teacher once (strict, weights only).

        Raises:
            mmkd.checkpoint.CheckpointError: the file is missing, unreadable
                or does not fit the teacher, naming ``model.teacher_ckpt``.
        """
        if self.teacher_loaded:
            return
        from mmkd.checkpoint import load_state_strict
        load_state_strict(self.teacher, self.teacher_ckpt,
                          'model.teacher_ckpt')
        self.teacher_loaded = True

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        # Here rather than in loss(): subclasses replace loss() whole.
        if mode == 'loss':
            self.load_teacher()
        return super().forward(inputs, data_samples, mode)


@MODELS.register_module()
class StrictSingleTeacherDistill(StrictTeacherMixin,
                                 single_teacher_distill.SingleTeacherDistill):
    """MMRazor's ``SingleTeacherDistill`` (the whole teacher runs) with
    strict, deferred teacher loading (:class:`StrictTeacherMixin`)."""


@MODELS.register_module()
class StrictFpnTeacherDistill(StrictTeacherMixin,
                              fpn_teacher_distill.FpnTeacherDistill):
    """MMRazor's ``FpnTeacherDistill`` (the teacher runs backbone + neck
    only) with strict, deferred teacher loading
    (:class:`StrictTeacherMixin`)."""


__all__ = ['StrictTeacherMixin', 'StrictSingleTeacherDistill',
           'StrictFpnTeacherDistill']
