"""Built-in detection data: deterministic synthetic scenes in COCO format.

Each image is a textured background with clutter (unlabelled strokes and
blobs) and 1-8 labelled objects. The classes differ in shape and colour
family, colours are jittered and sizes span small (< 32^2 px, COCO's "small")
to large, objects may overlap (IoU <= 0.4) and distractors reuse the class
colours, so that a small student and a larger teacher really differ in mAP.

The same seed gives byte-identical images and JSON. Train and val images
come from disjoint seed streams and disjoint file names.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# name -> (shape, base RGB); two shapes share a colour family and two colour
# families share a shape, so neither cue alone separates the classes.
CLASSES: Tuple[Tuple[str, str, Tuple[int, int, int]], ...] = (
    ('red_disc', 'disc', (210, 50, 50)),
    ('red_square', 'square', (210, 50, 50)),
    ('blue_triangle', 'triangle', (50, 80, 210)),
    ('blue_disc', 'disc', (50, 80, 210)),
    ('green_cross', 'cross', (50, 170, 60)),
)
CLASS_NAMES = tuple(c[0] for c in CLASSES)
FORMAT_VERSION = 1
DEFAULT_SPLITS = dict(train=1200, val=300)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour noise plus random stripes: a textured canvas."""
    coarse = rng.uniform(60, 200, size=(6, 6, 3)).astype(np.float32)
    img = np.asarray(
        Image.fromarray(coarse.astype(np.uint8)).resize(
            (size, size), Image.BICUBIC), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 24)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / period *
                     2 * np.pi)
    img += rng.uniform(5, 25) * stripes[..., None]
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255)


def _jitter(rng: np.random.Generator, rgb) -> Tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-35, 36), 0, 255)) for c in rgb)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box, fill) -> None:
    x0, y0, x1, y1 = box
    if shape == 'disc':
        draw.ellipse(box, fill=fill)
    elif shape == 'square':
        draw.rectangle(box, fill=fill)
    elif shape == 'triangle':
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape == 'cross':
        w, h = x1 - x0, y1 - y0
        draw.rectangle((x0, y0 + h / 3, x1, y0 + 2 * h / 3), fill=fill)
        draw.rectangle((x0 + w / 3, y0, x0 + 2 * w / 3, y1), fill=fill)
    else:
        raise ValueError(f'unknown shape {shape!r}')


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
             inter)
    return inter / union if union > 0 else 0.0


def render_image(seed: int, size: int = 128,
                 max_objects: int = 8) -> Tuple[Image.Image, List[Dict]]:
    """One scene: returns the RGB image and its objects
    (``{'category_id', 'bbox': [x, y, w, h]}``, 1-based categories)."""
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(_background(rng, size).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    # Clutter first, so objects may cover it: strokes and blobs in the class
    # colours, none of them labelled.
    for _ in range(int(rng.integers(2, 7))):
        rgb = _jitter(rng, CLASSES[int(rng.integers(len(CLASSES)))][2])
        if rng.random() < 0.5:
            pts = [tuple(rng.uniform(0, size, 2)) for _ in range(3)]
            draw.line(pts, fill=rgb, width=int(rng.integers(1, 4)))
        else:
            c = rng.uniform(0, size, 2)
            r = rng.uniform(1.5, 4)
            draw.ellipse((c[0] - r, c[1] - r * 2, c[0] + r, c[1] + r * 2),
                         fill=rgb)
    objects: List[Dict] = []
    boxes: List[Tuple[float, float, float, float]] = []
    n_objects = int(rng.integers(1, max_objects + 1))
    for _ in range(n_objects * 4):
        if len(objects) == n_objects:
            break
        # Log-uniform side: many small objects, some large.
        side = float(np.exp(rng.uniform(np.log(8), np.log(size * 0.45))))
        aspect = float(np.exp(rng.uniform(-0.35, 0.35)))
        w, h = side * aspect, side / aspect
        x0 = float(rng.uniform(0, size - w))
        y0 = float(rng.uniform(0, size - h))
        box = (x0, y0, x0 + w, y0 + h)
        if any(_iou(box, b) > 0.4 for b in boxes):
            continue
        cls = int(rng.integers(len(CLASSES)))
        _, shape, rgb = CLASSES[cls]
        _draw_shape(draw, shape, box, _jitter(rng, rgb))
        boxes.append(box)
        objects.append(dict(category_id=cls + 1, bbox=[x0, y0, w, h]))
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=0.6))
    return canvas, objects


def write_split(data_root: str, split: str, num_images: int, seed: int,
                size: int = 128) -> str:
    """Write ``{split}/NNNNNN.png`` and ``annotations/instances_{split}.json``."""
    img_dir = osp.join(data_root, split)
    ann_dir = osp.join(data_root, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    images, annotations = [], []
    # Disjoint seed streams per split: no image is ever shared.
    split_offset = {'train': 0, 'val': 10_000_000, 'test': 20_000_000}[split]
    for i in range(num_images):
        img, objects = render_image(seed * 100_000_000 + split_offset + i,
                                    size)
        file_name = f'{split}_{i:06d}.png'
        img.save(osp.join(img_dir, file_name))
        image_id = i + 1
        images.append(dict(id=image_id, file_name=file_name, width=size,
                           height=size))
        for obj in objects:
            x, y, w, h = (round(v, 2) for v in obj['bbox'])
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     category_id=obj['category_id'], bbox=[x, y, w, h],
                     area=round(w * h, 2), iscrowd=0,
                     segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(CLASS_NAMES)]
    ann_file = osp.join(ann_dir, f'instances_{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)
    return ann_file


def ensure_dataset(data_root: str,
                   num_train: int = DEFAULT_SPLITS['train'],
                   num_val: int = DEFAULT_SPLITS['val'],
                   seed: int = 0, size: int = 128) -> str:
    """Generate the dataset once; a marker records what was generated so a
    different request regenerates instead of silently reusing."""
    marker = osp.join(data_root, 'GENERATED.json')
    want = dict(version=FORMAT_VERSION, num_train=num_train, num_val=num_val,
                seed=seed, size=size)
    if osp.exists(marker):
        with open(marker) as f:
            if json.load(f) == want:
                return data_root
    write_split(data_root, 'train', num_train, seed, size)
    write_split(data_root, 'val', num_val, seed, size)
    with open(marker, 'w') as f:
        json.dump(want, f)
    return data_root
