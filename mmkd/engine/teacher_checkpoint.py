"""Distillation checkpoints without a second copy of the frozen teacher.

MMEngine saves ``model.state_dict()``, so every checkpoint of a MMRazor
distiller also holds its teacher: for RetinaNet R50 -> R18 (with SGD
momentum) 47% of the file is a teacher that never changes and that the
distiller loads from ``teacher_ckpt`` anyway when it is built.
:class:`DropFrozenTeacherHook` leaves it out and puts it back on load, so
that ``--resume`` and ``load_from`` still see a complete state dict. The same
holds for the copy an ``EMAHook`` keeps (RTMDet's configs have one): its
``ema_state_dict`` holds the whole distiller, teacher included.
"""
import hashlib
from typing import Dict, List, Optional

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
    model = _unwrap(model)
    if not isinstance(model, SingleTeacherDistill) or model.teacher_trainable:
        return None
    teacher = model.teacher
    if any(p.requires_grad for p in teacher.parameters()):
        return None
    if not model.teacher_norm_eval and any(
            isinstance(m, _BatchNorm) for m in teacher.modules()):
        return None
    return teacher


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


def load_deferred_teacher(model: nn.Module) -> None:
    """Load the teacher of mmkd's strict distillers now if it is not yet
    (:class:`mmkd.models.StrictTeacherMixin` defers it to first use)."""
    load = getattr(_unwrap(model), 'load_teacher', None)
    if callable(load):
        load()


def ema_teachers(runner) -> List[nn.Module]:
    """The teacher inside each EMA copy of the model (``EMAHook``)."""
    found = []
    for hook in getattr(runner, 'hooks', []):
        ema = getattr(getattr(hook, 'ema_model', None), 'module', None)
        if isinstance(getattr(ema, 'teacher', None), nn.Module):
            found.append(ema.teacher)
    return found


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
    ``checkpoint['state_dict']`` (and ``module.teacher.*`` from an
    ``EMAHook``'s ``ema_state_dict``) when the model is a MMRazor
    ``SingleTeacherDistill`` (mmkd's strict distillers included) whose teacher
    is frozen (:func:`frozen_teacher`), and records in
    ``checkpoint['meta']['teacher_dropped']`` how many keys went, the
    teacher's ``model.teacher_ckpt`` and a sha256 of its tensors.

    ``after_load_checkpoint`` (MMEngine calls it before the state dict is
    loaded into the model) puts the live teacher's tensors back, into the
    EMA copy too. The live teacher comes from ``teacher_ckpt``, so a resumed
    run continues exactly; to make sure it is the same teacher the
    fingerprint is compared (for a teacher that mmkd's distillers have not
    loaded yet, in ``before_train``).

    ``before_train`` loads a deferred teacher before the first step
    (evaluation alone never loads it) and gives every EMA copy the loaded
    teacher (the copy is made in ``before_run``, before that). An EMAHook
    must load leniently (``strict_load=False``, its default and RTMDet's):
    it loads its state before this hook gives the teacher back.

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
        # (record, teacher) of a checkpoint loaded while the teacher was
        # still deferred: compared once training loads the teacher.
        self._unverified = None

    def _verify(self, runner, record: dict, teacher: nn.Module) -> None:
        if not self.verify_teacher or \
                state_fingerprint(teacher.state_dict()) == record['sha256']:
            return
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

    def before_train(self, runner) -> None:
        if frozen_teacher(runner.model) is None:
            return
        load_deferred_teacher(runner.model)
        if self._unverified is not None:
            self._verify(runner, *self._unverified)
            self._unverified = None
        self._sync_ema(runner, _unwrap(runner.model).teacher.state_dict())

    @staticmethod
    def _sync_ema(runner, live: Dict[str, torch.Tensor]) -> None:
        for teacher in ema_teachers(runner):
            teacher.load_state_dict(live)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        teacher = frozen_teacher(runner.model)
        if teacher is None:
            return
        state = checkpoint['state_dict']
        dropped = [state.pop(k) for k in
                   [k for k in state if k.startswith(TEACHER_PREFIX)]]
        ema_state = checkpoint.get('ema_state_dict') or {}
        for key in [k for k in ema_state
                    if k.startswith('module.' + TEACHER_PREFIX)]:
            del ema_state[key]
        if not dropped:
            return
        model_cfg = (getattr(runner, 'cfg', None) or {}).get('model') or {}
        # The live teacher's fingerprint: with an EMAHook (which runs first
        # and swaps in its averages) the state dict holds the EMA copy's.
        checkpoint.setdefault('meta', {})[META_KEY] = dict(
            num_keys=len(dropped),
            teacher_ckpt=model_cfg.get('teacher_ckpt'),
            sha256=state_fingerprint(teacher.state_dict()))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        record = (checkpoint.get('meta') or {}).get(META_KEY)
        if not record:
            return
        model = _unwrap(runner.model)
        teacher = getattr(model, 'teacher', None)
        if teacher is None:
            return  # e.g. the student alone: it needs no teacher keys
        # A deferred teacher (mmkd's strict distillers) is not loaded here:
        # evaluating the student (MMDetection's tools/test.py) never needs
        # it. Training loads it in before_train and compares it then.
        if getattr(model, 'teacher_loaded', True):
            self._verify(runner, record, teacher)
        else:
            self._unverified = (record, teacher)
        live = teacher.state_dict()
        state = checkpoint['state_dict']
        for key, value in live.items():
            state.setdefault(TEACHER_PREFIX + key, value)
        if 'ema_state_dict' in checkpoint:
            for key, value in live.items():
                checkpoint['ema_state_dict'].setdefault(
                    'module.' + TEACHER_PREFIX + key, value)
            self._sync_ema(runner, live)


__all__ = ['DropFrozenTeacherHook', 'ema_teachers', 'frozen_teacher',
           'load_deferred_teacher', 'state_fingerprint']
