"""In-memory detection batches from the built-in scenes, in the format a
detector's ``data_preprocessor`` takes (what a DataLoader would yield after
``PackDetInputs``). Used by tests and benchmarks; no files involved."""
from typing import Dict, List, Tuple

import numpy as np
import torch

from .synthetic import render_image


def make_det_batch(num_images: int = 2,
                   size: Tuple[int, int] = (128, 128),
                   seed: int = 0,
                   scene_size: int = 128) -> Dict[str, List]:
    """``{'inputs': [uint8 (3, H, W)], 'data_samples': [DetDataSample]}``.

    Scenes are rendered at ``scene_size`` and resized to ``size`` (H, W) with
    their boxes, so any input size (e.g. 800x800) has real objects.
    """
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from PIL import Image

    h, w = size
    inputs, samples = [], []
    for i in range(num_images):
        img, objects = render_image(seed * 1000 + i, scene_size)
        sx, sy = w / scene_size, h / scene_size
        img = img.resize((w, h), Image.BILINEAR)
        # RGB -> BGR like mmcv.imread, channels first.
        arr = np.ascontiguousarray(np.asarray(img)[:, :, ::-1].transpose(2, 0, 1))
        inputs.append(torch.from_numpy(arr))
        boxes = [[x * sx, y * sy, (x + bw) * sx, (y + bh) * sy]
                 for x, y, bw, bh in (o['bbox'] for o in objects)]
        gt = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor([o['category_id'] - 1 for o in objects],
                                dtype=torch.long))
        sample = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(h, w), ori_shape=(h, w),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
