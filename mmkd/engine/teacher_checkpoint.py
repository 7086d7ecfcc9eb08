"""Distillation checkpoints without a second copy of the frozen teacher.

MMEngine saves ``model.state_dict()``, so every checkpoint of a MMRazor
distiller also holds its teacher: for RetinaNet R50 -> R18 (with SGD
momentum) 47% of the file is a teacher that never changes and that the
distiller loads from ``teacher_ckpt`` anyway when it is built.
:class:`DropFrozenTeacherHook` leaves it out and puts it back on load, so
that ``--resume`` and ``load_from`` still see a complete state dict.
"""
import hashlib
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint import CheckpointError

TEACHER_PREFIX = 'teacher.'
META_KEY = 'teacher_dropped'


def frozen_teacher(model: nn.Module) -> Optional[nn.Module]:
    """The teacher of a MMRazor single-teacher distiller if nothing of it
    changes during training, else None.

    Frozen means: not ``teacher_trainable``, no parameter requiring grad, and
    batch-norm statistics fixed (``teacher_norm_eval``, or no batch norm).
    """
    from mmrazor.models import SingleTeacherDistill
    if is_model_wrapper(model):
        model = model.module
    if not isinstance(model, SingleTeacherDistill) or model.teacher_trainable:
        return None
    teacher = model.teacher
    if any(p.requires_grad for p in teacher.parameters()):
        return None
    if not model.teacher_norm_eval and any(
            isinstance(m, _BatchNorm) for m in teacher.modules()):
        return None
    return teacher


def state_fingerprint(state: Dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes, in sorted key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key].detach().cpu().contiguous()
        digest.update(f'{key}|{value.dtype}|{tuple(value.shape)}|'.encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@HOOKS.register_module()
class DropFrozenTeacherHook(Hook):
    """Save a distiller's checkpoints without its frozen teacher.

    ``before_save_checkpoint`` removes the ``teacher.*`` keys from
    ``checkpoint['state_dict']`` when the model is a MMRazor
    ``SingleTeacherDistill`` (``FpnTeacherDistill`` included) whose teacher is
    frozen (:func:`frozen_teacher`), and records in
    ``checkpoint['meta']['teacher_dropped']`` how many keys went, the
    teacher's ``model.teacher_ckpt`` and a sha256 of its tensors.

    ``after_load_checkpoint`` (MMEngine calls it before the state dict is
    loaded into the model) puts the live teacher's tensors back. The live
    teacher was loaded from ``teacher_ckpt`` when the distiller was built, so
    a resumed run continues exactly; to make sure it is the same teacher the
    fingerprint is compared first.

    Registered in MMEngine's root ``HOOKS`` registry, so
    ``custom_hooks=[dict(type='DropFrozenTeacherHook')]`` builds in any
    scope. ``tools/train.py`` adds it to every distiller config.

    Args:
        verify_teacher (bool): Refuse a checkpoint whose teacher fingerprint
            differs from the live teacher's: the run would go on with another
            teacher than the one it was saved with. Defaults to True.
            ``tools/test.py`` sets it to False (evaluation uses the student
            alone).
    """
    priority = 'NORMAL'

    def __init__(self, verify_teacher: bool = True) -> None:
        self.verify_teacher = verify_teacher

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if frozen_teacher(runner.model) is None:
            return
        state = checkpoint['state_dict']
        dropped = {k[len(TEACHER_PREFIX):]: state.pop(k)
                   for k in [k for k in state if k.startswith(TEACHER_PREFIX)]}
        if not dropped:
            return
        model_cfg = (getattr(runner, 'cfg', None) or {}).get('model') or {}
        checkpoint.setdefault('meta', {})[META_KEY] = dict(
            num_keys=len(dropped),
            teacher_ckpt=model_cfg.get('teacher_ckpt'),
            sha256=state_fingerprint(dropped))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        record = (checkpoint.get('meta') or {}).get(META_KEY)
        if not record:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        teacher = getattr(model, 'teacher', None)
        if teacher is None:
            return  # e.g. the student alone: it needs no teacher keys
        live = teacher.state_dict()
        if self.verify_teacher and state_fingerprint(live) != record['sha256']:
            model_cfg = (getattr(runner, 'cfg', None) or {}).get('model') or {}
            raise CheckpointError(
                'this checkpoint was saved without its frozen teacher '
                f"(model.teacher_ckpt={record.get('teacher_ckpt')!r}), and "
                'the teacher built now (model.teacher_ckpt='
                f"{model_cfg.get('teacher_ckpt')!r}) has other weights: the "
                'run would go on distilling from another teacher. Pass the '
                'teacher it was trained with (--cfg-options '
                'model.teacher_ckpt=PATH), or, to accept the new teacher, '
                "custom_hooks=[dict(type='DropFrozenTeacherHook', "
                'verify_teacher=False)]')
        state = checkpoint['state_dict']
        for key, value in live.items():
            state.setdefault(TEACHER_PREFIX + key, value)


__all__ = ['DropFrozenTeacherHook', 'frozen_teacher', 'state_fingerprint']
