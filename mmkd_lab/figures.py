"""PNG figures for the demo and the comparison (matplotlib, no display)."""
import os.path as osp
from typing import Dict, List

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_map(results: Dict[str, List[float]], path: str,
             title: str = 'COCO bbox mAP on the built-in val split') -> str:
    """Bars of mean mAP per method with one dot per seed."""
    plt = _plt()
    names = list(results)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    for i, name in enumerate(names):
        vals = np.asarray(results[name], dtype=float)
        ax.bar(i, vals.mean(), color='#4c72b0' if name not in (
            'vkd', 'srd') else '#dd8452', alpha=0.85)
        ax.scatter(np.full(len(vals), i), vals, color='k', s=12, zorder=3)
        ax.text(i, vals.mean(), f'{vals.mean():.3f}', ha='center',
                va='bottom', fontsize=9)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel('bbox mAP')
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_losses(histories: Dict[str, Dict[str, List[float]]],
                path: str) -> str:
    """Task loss (classification + box) per run and, for distilled runs,
    the sum of the distillation terms, against the iteration."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, hist in histories.items():
        steps = hist.get('step') or list(range(len(hist.get('loss', []))))
        task = [sum(hist[k][i] for k in hist
                    if k.split('.')[-1] in ('loss_cls', 'loss_bbox')
                    and not k.startswith('distill'))
                for i in range(len(steps))]
        ax1.plot(steps, task, label=name)
        distill_keys = [k for k in hist if k.startswith('distill.')]
        if distill_keys:
            ax2.plot(steps, [sum(hist[k][i] for k in distill_keys)
                             for i in range(len(steps))], label=name)
    ax1.set_title('task loss (cls + bbox)')
    ax2.set_title('distillation loss (sum over levels)')
    for ax in (ax1, ax2):
        ax.set_xlabel('iteration')
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_features(image: np.ndarray, panels: Dict[str, dict], path: str,
                  score_thr: float = 0.3) -> str:
    """One column per model: detections on the image (top) and the energy
    (channel L2 norm) of its first FPN level (bottom).

    ``panels[name] = {'feature': (C, H, W) array, 'boxes': (N, 4),
    'scores': (N,), 'labels': (N,)}``; ``image`` is RGB uint8.
    """
    plt = _plt()
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.4))
    axes = np.asarray(axes).reshape(2, len(panels))
    for col, (name, p) in enumerate(panels.items()):
        ax = axes[0, col]
        ax.imshow(image)
        keep = p['scores'] >= score_thr
        for (x0, y0, x1, y1), s in zip(p['boxes'][keep], p['scores'][keep]):
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0,
                                       fill=False, color='yellow', lw=1.2))
            ax.text(x0, y0, f'{s:.2f}', color='yellow', fontsize=6)
        ax.set_title(f'{name}: {int(keep.sum())} boxes >= {score_thr}',
                     fontsize=9)
        energy = np.linalg.norm(p['feature'], axis=0)
        axes[1, col].imshow(energy, cmap='magma')
        axes[1, col].set_title('P3 feature energy', fontsize=9)
        for ax in axes[:, col]:
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figure_paths(work_dir: str) -> Dict[str, str]:
    return {k: osp.join(work_dir, f'{k}.png')
            for k in ('map', 'losses', 'features')}


def load_student(config: str, checkpoint: str):
    """Build the (student) detector of ``config`` and load ``checkpoint``
    safely and strictly. For a distill config the student is
    ``model.architecture`` and its weights carry the ``architecture.``
    prefix (the export tool's helpers do exactly that split)."""
    from mmengine.config import Config

    from mmkd.checkpoint import read_checkpoint, state_dict_of
    from mmkd.export import build_student, split_state, student_model_cfg
    cfg = Config.fromfile(config)
    state = state_dict_of(read_checkpoint(checkpoint, 'checkpoint'))
    if 'architecture' in cfg.model:
        model = build_student(student_model_cfg(cfg, config))
        state, _ = split_state(state)
    else:
        model = build_student(cfg.model)
    model.load_state_dict(state, strict=True)
    return model.eval()


def model_panel(model, image_bgr: np.ndarray) -> dict:
    """Detections and first-level FPN features of ``model`` on one image."""
    import torch
    from mmdet.structures import DetDataSample
    h, w = image_bgr.shape[:2]
    inputs = torch.from_numpy(np.ascontiguousarray(
        image_bgr.transpose(2, 0, 1)))
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[inputs],
                                        data_samples=[sample]), False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        result = model.predict(data['inputs'], data['data_samples'])[0]
    pred = result.pred_instances
    return dict(feature=feats[0][0].float().numpy(),
                boxes=pred.bboxes.numpy(), scores=pred.scores.numpy(),
                labels=pred.labels.numpy())
