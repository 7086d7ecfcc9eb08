"""Shared test helpers: mmdet models from mmdet's own configs, without any
download (backbone init disabled), and one optimisation step."""
import copy

import torch
from mmengine.config import ConfigDict
from mmengine.hub import get_config

from mmkd.data import make_det_batch

NUM_CLASSES = 5


def mmdet_model_cfg(cfg_path: str, num_classes: int = NUM_CLASSES) -> dict:
    """``model`` of an mmdet config ('mmdet::...'), offline-buildable from
    the mmrazor scope (``_scope_='mmdet'``)."""
    model = copy.deepcopy(get_config(cfg_path).model)
    model.backbone.init_cfg = None
    model._scope_ = 'mmdet'
    for key in ('bbox_head', ):
        if key in model:
            model[key].num_classes = num_classes
    if 'roi_head' in model:
        model.roi_head.bbox_head.num_classes = num_classes
    return ConfigDict(model)


def build_mmdet(cfg_path: str):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(mmdet_model_cfg(cfg_path))
    # The heads' prior-probability bias: without it RetinaNet's first
    # classification loss is ~1000 and SGD diverges within steps.
    model.init_weights()
    return model


def batch(model, num_images=2, size=(128, 128), seed=0, training=True):
    data = make_det_batch(num_images, size, seed)
    return model.data_preprocessor(data, training)


def total_loss(losses: dict) -> torch.Tensor:
    total = 0
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        if isinstance(value, (list, tuple)):
            value = sum(value)
        total = total + value
    return total
