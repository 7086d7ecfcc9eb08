"""Is the teacher any good on this dataset? Checked before distillation.

The most common reason for "distillation gives nothing" is a teacher that
does not detect this dataset's objects: a checkpoint of another dataset or
class order, a teacher config that differs from the one it was trained with
(``num_classes``, normalisation), or simply the wrong file. Each one loads
strictly and trains without an error, and distils noise. Before the first
step, mmkd's train tool evaluates the loaded teacher, alone, on the first
few batches of the validation set with the config's own evaluator, and
stops when its mAP is near zero (``tools/train.py --skip-teacher-check`` to
go on anyway). A config may set how: ``teacher_check = dict(batches=5,
min_map=0.01)`` (the defaults), e.g. ``--cfg-options
teacher_check.min_map=0.05`` for a stricter bar.

- :func:`evaluate_on_batches`: a detector's metrics on the first ``batches``
  batches of a dataloader (COCO metrics over those images only).
- :func:`check_teacher_quality`: that for a runner's distiller, with the
  message that names the causes and the way out.
"""
import contextlib
import copy
import io
import itertools
import random
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper

from ..preflight import PreflightError

DEFAULT_BATCHES = 5
DEFAULT_MIN_MAP = 0.01  # a random detector: 0.000; a COCO teacher: > 0.3


class TeacherCheckError(PreflightError):
    """The teacher's mAP on the validation data is near zero."""


def _map_key(metrics: Dict[str, float]) -> Optional[str]:
    """The headline mAP of an evaluator's metrics (``coco/bbox_mAP``,
    ``pascal_voc/mAP``, ...): the first key ending in ``mAP``."""
    for key in metrics:
        if key.split('/')[-1] in ('bbox_mAP', 'mAP'):
            return key
    return None


@torch.no_grad()
def evaluate_on_batches(detector: torch.nn.Module, dataloader,
                        evaluator_cfg, batches: int) -> Dict[str, float]:
    """``detector`` (in eval mode for the call) on the first ``batches``
    batches of ``dataloader``, scored by an evaluator built from
    ``evaluator_cfg`` over the images seen (not the whole annotation file).
    Each process evaluates its own batches; in a distributed run the
    results of every rank are then pooled (:func:`_pooled`), so that every
    rank computes the same metrics and takes the same decision."""
    evaluator = evaluator_cfg if isinstance(evaluator_cfg, Evaluator) \
        else Evaluator(evaluator_cfg)
    evaluator.dataset_meta = dataloader.dataset.metainfo
    was_training = detector.training
    detector.eval()
    try:
        for data_batch in itertools.islice(dataloader, batches):
            outputs = detector.test_step(data_batch)
            evaluator.process(data_samples=outputs, data_batch=data_batch)
    finally:
        detector.train(was_training)
    metrics: Dict[str, float] = {}
    for metric in evaluator.metrics:
        results = _pooled(metric.results)  # a collective: on every rank
        metric.results.clear()
        if not results:
            continue
        if hasattr(metric, 'img_ids'):
            # CocoMetric scores every image of its annotation file unless
            # told which: here, the ones evaluated.
            metric.img_ids = sorted({_img_id(r) for r in results})
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval's tables
            found = metric.compute_metrics(results)
        prefix = f'{metric.prefix}/' if metric.prefix else ''
        metrics.update({prefix + k: v for k, v in found.items()})
    return metrics


def _img_id(result):
    """The image id of one processed sample (CocoMetric keeps a tuple
    ``(gt, prediction)``, other metrics a dict); None if it has none."""
    entry = result[1] if isinstance(result, tuple) else result
    return entry.get('img_id') if isinstance(entry, dict) else None


def _pooled(results: list) -> list:
    """Every rank's ``results``, the same list on each rank (one process:
    its own). Each rank's first batches are a different shard, so ranks
    scored alone could disagree near the bar: one stopping while the others
    wait for it. A sampler that pads its shards repeats an image on two
    ranks; it is kept once where the result names its ``img_id`` (COCO
    metrics). Other metrics' padded repeats count twice, and image ids
    shared by two parts of a concatenated validation set count once: the
    value can then differ slightly from one process's, but every rank
    still gets the same one."""
    if get_world_size() == 1:
        return list(results)
    pooled, seen = [], set()
    for part in all_gather_object(list(results)):
        for result in part:
            img_id = _img_id(result)
            if img_id is not None:
                if img_id in seen:
                    continue
                seen.add(img_id)
            pooled.append(result)
    return pooled


@contextlib.contextmanager
def _random_state_kept():
    """The check leaves every random generator as it found it (iterating a
    dataloader draws from torch's): a run gives the same initial weights
    and data with the check as without it, so runs with and without a
    teacher stay paired by seed."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() \
        else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def check_teacher_quality(runner, batches: int = DEFAULT_BATCHES,
                          min_map: float = DEFAULT_MIN_MAP) -> Optional[float]:
    """Evaluate the runner's teacher on the first ``batches`` validation
    batches; raise :class:`TeacherCheckError` when its mAP is below
    ``min_map``. Returns the mAP, or None when there is nothing to check
    (not a distiller, no teacher checkpoint, no validation data)."""
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    teacher = getattr(model, 'teacher', None)
    cfg = runner.cfg
    ckpt = (cfg.get('model') or {}).get('teacher_ckpt')
    logger = runner.logger
    if teacher is None or not hasattr(teacher, 'test_step'):
        return None
    if not ckpt:
        logger.warning('teacher check: model.teacher_ckpt is not set, so the '
                       'teacher keeps its initial (random) weights and '
                       'distillation from it can only add noise')
        return None
    if not cfg.get('val_dataloader') or not cfg.get('val_evaluator'):
        logger.warning('teacher check skipped: the config has no '
                       'val_dataloader/val_evaluator to evaluate it on')
        return None
    loader = runner.val_loop.dataloader
    evaluator = runner.build_evaluator(copy.deepcopy(cfg.val_evaluator))
    with _random_state_kept():
        metrics = evaluate_on_batches(teacher, loader, evaluator, batches)
    key = _map_key(metrics)
    if key is None and not metrics:
        # CocoMetric gives nothing when no image has a detection above the
        # test score threshold: the teacher detects nothing here.
        key = 'coco/bbox_mAP (no detections)'
        metrics = {key: 0.0}
    if key is None:
        logger.warning(f'teacher check skipped: the evaluator gave no mAP '
                       f'({sorted(metrics)})')
        return None
    ranks = get_world_size()  # their results are pooled
    seen = min(batches, len(loader)) * (loader.batch_size or 1) * ranks
    value = float(metrics[key])
    where = (f'{key} {value:.3f} on the first {min(batches, len(loader))} '
             'validation batches' + (f' of each of {ranks} ranks'
                                     if ranks > 1 else '') +
             f' (about {seen} images)')
    if value < min_map:
        classes = (loader.dataset.metainfo or {}).get('classes')
        raise TeacherCheckError(
            f'teacher check: the teacher (model.teacher_ckpt={ckpt}) reaches '
            f'{where}, below {min_map}: distilling from it cannot help. '
            'Usual causes: a checkpoint trained on another dataset or with '
            'another class order (the teacher must have been trained with '
            f'these classes, in this order: {tuple(classes or ())}), a '
            'teacher config that is not the one it was trained with '
            '(num_classes, data_preprocessor mean/std), or the wrong file. '
            'Evaluate it alone: python tools/test.py TEACHER_CONFIG '
            f'{ckpt}. To distil anyway: tools/train.py CONFIG '
            '--skip-teacher-check, or lower the bar with --cfg-options '
            'teacher_check.min_map=VALUE')
    logger.info(f'teacher check: {where} (at least {min_map} needed)')
    return value


__all__ = ['TeacherCheckError', 'check_teacher_quality',
           'evaluate_on_batches', 'DEFAULT_BATCHES', 'DEFAULT_MIN_MAP']
