import hashlib
import json
import os.path as osp

import numpy as np

from mmkd_lab.data import ensure_dataset, make_det_batch, render_image
from mmkd_lab.data.synthetic import CLASSES


def _digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_generation_is_deterministic(tmp_path):
    a = ensure_dataset(str(tmp_path / 'a'), 6, 3, seed=1)
    b = ensure_dataset(str(tmp_path / 'b'), 6, 3, seed=1)
    for rel in ('annotations/instances_train.json',
                'annotations/instances_val.json', 'train/train_000005.png',
                'val/val_000002.png'):
        assert _digest(osp.join(a, rel)) == _digest(osp.join(b, rel)), rel
    c = ensure_dataset(str(tmp_path / 'c'), 6, 3, seed=2)
    assert _digest(osp.join(a, 'train/train_000000.png')) != _digest(
        osp.join(c, 'train/train_000000.png'))


def test_splits_share_no_image(tmp_path):
    root = ensure_dataset(str(tmp_path), 20, 20, seed=0)
    train = {_digest(osp.join(root, 'train', f'train_{i:06d}.png'))
             for i in range(20)}
    val = {_digest(osp.join(root, 'val', f'val_{i:06d}.png'))
           for i in range(20)}
    assert not train & val


def test_coco_annotations_are_valid(tmp_path):
    from pycocotools.coco import COCO
    root = ensure_dataset(str(tmp_path), 30, 5, seed=0)
    coco = COCO(osp.join(root, 'annotations/instances_train.json'))
    assert len(coco.getImgIds()) == 30
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == [
        c[0] for c in CLASSES]
    anns = coco.loadAnns(coco.getAnnIds())
    areas = np.array([a['area'] for a in anns])
    for a in anns:
        x, y, w, h = a['bbox']
        assert 0 <= x and 0 <= y and x + w <= 128.01 and y + h <= 128.01
        assert a['area'] == round(w * h, 2)
    # COCO size buckets: both small (< 32^2) and medium/large objects.
    assert (areas < 32**2).sum() > 0.2 * len(areas)
    assert (areas >= 32**2).sum() > 0.1 * len(areas)
    assert {a['category_id'] for a in anns} == set(range(1, len(CLASSES) + 1))


def test_objects_are_drawn_where_annotated():
    img, objects = render_image(3, 128)
    arr = np.asarray(img).astype(float)
    checked = 0
    for i, obj in enumerate(objects):
        x, y, w, h = obj['bbox']
        cx, cy = int(x + w / 2), int(y + h / 2)
        # Objects are listed in drawing order: skip centres a later one hides.
        if any(o['bbox'][0] <= cx <= o['bbox'][0] + o['bbox'][2] and
               o['bbox'][1] <= cy <= o['bbox'][1] + o['bbox'][3]
               for o in objects[i + 1:]):
            continue
        rgb = CLASSES[obj['category_id'] - 1][2]
        # The centre pixel of a disc/square/cross carries the class colour
        # family (jitter <= 35 per channel, blur); triangles' centre too.
        if w > 10 and h > 10:
            assert np.abs(arr[cy, cx] - rgb).max() < 80, obj
            checked += 1
    assert checked >= 1


def test_marker_regenerates_on_different_request(tmp_path):
    root = str(tmp_path)
    ensure_dataset(root, 4, 2, seed=0)
    ensure_dataset(root, 5, 2, seed=0)
    with open(osp.join(root, 'annotations/instances_train.json')) as f:
        assert len(json.load(f)['images']) == 5


def test_batch_scales_boxes_to_input_size():
    small = make_det_batch(1, (128, 128), seed=0)
    big = make_det_batch(1, (256, 384), seed=0)
    assert big['inputs'][0].shape == (3, 256, 384)
    b_small = small['data_samples'][0].gt_instances.bboxes
    b_big = big['data_samples'][0].gt_instances.bboxes
    np.testing.assert_allclose(b_big.numpy(),
                               (b_small * np.array([3, 2, 3, 2])).numpy(),
                               rtol=1e-5)
