from .batch import make_det_batch
from .synthetic import CLASS_NAMES, ensure_dataset, render_image, write_split

__all__ = ['CLASS_NAMES', 'ensure_dataset', 'make_det_batch', 'render_image',
           'write_split']
