"""Checkpoint loading that is safe and strict.

Safe: every load goes through MMEngine's ``CheckpointLoader`` with
``weights_only=True`` semantics (see :mod:`mmkd.compat`): tensors, containers
and MMEngine's own bookkeeping load; anything that would run code is refused.

Strict: MMRazor loads ``teacher_ckpt`` with ``strict=False``, so a checkpoint
of another architecture silently leaves a random teacher and distillation
"gives no gain". :func:`load_state_strict` refuses any missing, unexpected or
mis-shaped key and names the first ones.
"""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, List, Optional

import torch
from torch import nn

# Keys a checkpoint from an older torch may lack without changing the model.
TOLERATED_MISSING_SUFFIXES = ('num_batches_tracked', )
SHOWN_KEYS = 8


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, unreadable, mismatched or
    unsafe. The one base of mmkd's checkpoint errors: catch it to catch
    them all."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holds objects that weights-only loading refuses (raised
    by every MMEngine load under :mod:`mmkd.compat`). Also an
    ``UnpicklingError``, as torch's own refusal is."""


def is_remote(filename: str) -> bool:
    return '://' in filename


def _show(keys: List[str]) -> str:
    head = ', '.join(keys[:SHOWN_KEYS])
    more = (f' (+{len(keys) - SHOWN_KEYS} more)'
            if len(keys) > SHOWN_KEYS else '')
    return head + more


def read_checkpoint(filename: str, config_key: str = 'checkpoint',
                    map_location: str = 'cpu') -> Dict:
    """Load a checkpoint dict through MMEngine's (patched, safe) loader."""
    from mmengine.runner.checkpoint import CheckpointLoader
    if not is_remote(filename) and not osp.isfile(filename):
        fix = (f'with --cfg-options {config_key}=PATH' if '.' in config_key
               else f'as {config_key}')  # a config key, or an argument
        raise CheckpointError(
            f'{config_key}={filename!r}: no such file (looked at '
            f'{osp.abspath(filename)}). Check the path, or pass the right one '
            f'{fix}')
    try:
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location)
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f'{config_key}: {exc}') from exc
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise CheckpointError(
            f'{config_key}={filename!r} could not be read: '
            f'{type(exc).__name__}: {exc}') from exc
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'{config_key}={filename!r} holds a {type(checkpoint).__name__}, '
            'not a checkpoint dict')
    return checkpoint


def state_dict_of(checkpoint: Dict) -> Dict[str, torch.Tensor]:
    state = checkpoint.get('state_dict', checkpoint)
    # Checkpoints saved from a (Distributed)DataParallel wrapper.
    return OrderedDict((k[7:] if k.startswith('module.') else k, v)
                       for k, v in state.items())


def mismatch_report(model: nn.Module,
                    state: Dict[str, torch.Tensor]) -> Optional[str]:
    """None when ``state`` fits ``model`` exactly, else a readable report."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and
               not k.endswith(TOLERATED_MISSING_SUFFIXES)]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(expected[k].shape)}' for k in expected
        if k in state and hasattr(state[k], 'shape')
        and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return None
    lines = []
    if missing:
        lines.append(f'{len(missing)} missing keys: {_show(missing)}')
    if unexpected:
        lines.append(f'{len(unexpected)} unexpected keys: {_show(unexpected)}')
    if shapes:
        lines.append(f'{len(shapes)} shape mismatches: {_show(shapes)}')
    return '; '.join(lines)


def load_state_strict(model: nn.Module, filename: str,
                      config_key: str = 'teacher_ckpt',
                      map_location: str = 'cpu') -> Dict:
    """Load ``filename`` into ``model``, refusing anything but an exact fit."""
    checkpoint = read_checkpoint(filename, config_key, map_location)
    state = state_dict_of(checkpoint)
    report = mismatch_report(model, state)
    if report is not None:
        raise CheckpointError(
            f'{config_key}={filename!r} does not fit the model it is loaded '
            f'into ({type(model).__name__}): {report}. The checkpoint belongs '
            'to another architecture or config; use the checkpoint trained '
            f'with this config, or fix the model config that {config_key} '
            'goes with.')
    model.load_state_dict(state, strict=False)
    return checkpoint
