"""Training and testing entry points behind ``tools/train.py`` and
``tools/test.py``: MMDetection's options, preflight checks, MMEngine runner."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config
from mmengine.runner import Runner

from ..preflight import preflight


def load_config(config: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    if not osp.isfile(config):
        raise FileNotFoundError(f'config {config!r} does not exist (looked at '
                                f'{osp.abspath(config)})')
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def enable_amp(cfg: Config) -> None:
    """``--amp``: MMEngine's AmpOptimWrapper (fp16 on CUDA, bf16 on CPU)."""
    import torch
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        return
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    if torch.cuda.is_available():
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.dtype = 'bfloat16'


def train(config: str, work_dir: Optional[str] = None,
          resume: Optional[str] = None, amp: bool = False,
          auto_scale_lr: bool = False, cfg_options: Optional[dict] = None,
          launcher: str = 'none') -> Runner:
    """Build the runner for ``config`` and train. ``resume='auto'`` resumes
    from the latest checkpoint in the work dir, a path from that file."""
    cfg = load_config(config, cfg_options, work_dir, launcher)
    if amp:
        enable_amp(cfg)
    if auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                'config (the total batch size the learning rate is set for)')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    preflight(cfg, train=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test(config: str, checkpoint: str, work_dir: Optional[str] = None,
         show_dir: Optional[str] = None, out: Optional[str] = None,
         cfg_options: Optional[dict] = None, launcher: str = 'none') -> dict:
    """Evaluate ``checkpoint`` with the config's test dataloader/evaluator."""
    cfg = load_config(config, cfg_options, work_dir, launcher)
    cfg.load_from = checkpoint
    if show_dir is not None:
        vis = cfg.default_hooks.setdefault(
            'visualization', dict(type='DetVisualizationHook'))
        vis['draw'] = True
        vis['test_out_dir'] = show_dir
    if out is not None:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=out))
    preflight(cfg, train=False)
    if not ('://' in checkpoint or osp.isfile(checkpoint)):
        raise FileNotFoundError(
            f'CHECKPOINT {checkpoint!r}: no such file (looked at '
            f'{osp.abspath(checkpoint)})')
    runner = Runner.from_cfg(cfg)
    return runner.test()


__all__ = ['load_config', 'train', 'test', 'enable_amp']
