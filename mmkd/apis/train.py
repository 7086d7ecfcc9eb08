"""Training and testing entry points behind ``tools/train.py`` and
``tools/test.py``: MMDetection's options, preflight checks, MMEngine runner."""
import datetime
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.runner import Runner

from ..config_files import resolve_config
from ..engine import check_distiller_shapes, check_teacher_quality
from ..engine.teacher_checkpoint import load_deferred_teacher
from ..preflight import PreflightError, preflight

TEACHER_HOOK = 'DropFrozenTeacherHook'


def load_config(config: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    cfg = Config.fromfile(resolve_config(config))
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def is_distiller(cfg: Config) -> bool:
    return 'Distill' in str((cfg.get('model') or {}).get('type', ''))


def evaluation_teacher_hook(cfg: Config) -> None:
    """For evaluation only: a checkpoint may be checked against a teacher
    that is not loaded (``model.teacher_ckpt=None``), so the config's
    :class:`mmkd.engine.DropFrozenTeacherHook` stops comparing teacher
    fingerprints. The hook itself comes from the config
    (``configs/_base_/mmkd_runtime.py``)."""
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == TEACHER_HOOK:
            hook['verify_teacher'] = False


def setup_cpu_distributed(cfg: Config) -> None:
    """Make a distributed launch work on a machine without CUDA.

    MMDetection's runtime asks for nccl (``env_cfg.dist_cfg.backend``), which
    needs GPUs, so the backend becomes gloo. MMEngine's own process-group
    setup also calls ``torch.cuda.set_device`` (an error without CUDA), so
    for ``--launcher pytorch`` the gloo group is created here and the runner
    finds it ready. DDP must not be given GPU ``device_ids`` for a CPU model.
    """
    import torch
    import torch.distributed as dist
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {cfg.launcher} needs CUDA (MMEngine picks a GPU per '
            'process); on a CPU-only machine launch with torchrun: '
            'bash tools/dist_train.sh CONFIG NUM_PROCESSES')
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = dict(env_cfg, dist_cfg=dist_cfg)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if kwargs.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)


def enable_amp(cfg: Config) -> None:
    """``--amp``: MMEngine's AmpOptimWrapper (fp16, dynamic loss scale) on
    CUDA; on a CPU, where that wrapper refuses to run, mmkd's
    AutocastOptimWrapper (bf16). Optimizer, clipping etc. are kept."""
    import torch
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        return
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'


def restore_seed(cfg: Config) -> None:
    """Resume with the seed the run started with when the config leaves
    ``randomness.seed`` unset (MMDetection's configs do).

    MMEngine restores that seed only in ``Runner.resume()``, after the
    train dataloader and its sampler were built with a new random seed, so
    the resumed run would see its images in another order. Setting it
    before the runner is built makes the resumed run the run it was.
    """
    from mmengine.runner import find_latest_checkpoint

    from ..checkpoint import read_checkpoint
    randomness = dict(cfg.get('randomness') or {})
    if randomness.get('seed') is not None:
        return
    path = cfg.get('load_from') or find_latest_checkpoint(cfg.work_dir)
    if not path or not osp.isfile(path):
        return  # MMEngine says what is missing (or starts afresh for auto)
    seed = (read_checkpoint(path).get('meta') or {}).get('seed')
    if seed is not None:
        cfg.randomness = dict(randomness, seed=seed)


def teacher_check_options(cfg: Config) -> dict:
    """The config's ``teacher_check`` (``batches``, ``min_map``), checked
    for unknown keys before anything is built."""
    options = dict(cfg.get('teacher_check') or {})
    unknown = sorted(set(options) - {'batches', 'min_map'})
    if unknown:
        raise PreflightError(
            f'teacher_check.{unknown[0]}: not an option of the teacher check; '
            'it takes teacher_check=dict(batches=5, min_map=0.01) (turn it '
            'off with tools/train.py --skip-teacher-check)')
    return options


def train(config: str, work_dir: Optional[str] = None,
          resume: Optional[str] = None, amp: bool = False,
          auto_scale_lr: bool = False, cfg_options: Optional[dict] = None,
          launcher: str = 'none', teacher_check: bool = True) -> Runner:
    """Build the runner for ``config`` and train. ``resume='auto'`` resumes
    from the latest checkpoint in the work dir, a path from that file.
    ``teacher_check``: before the first step, a distiller's loaded teacher is
    evaluated on the first validation batches and the run stops when its mAP
    is near zero; the config's ``teacher_check=dict(batches=5,
    min_map=0.01)`` sets how (:func:`mmkd.engine.check_teacher_quality`)."""
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
    if resume is not None:
        restore_seed(cfg)
    check_options = teacher_check_options(cfg) if teacher_check else {}
    preflight(cfg, train=True)
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    # The teacher checkpoint (read when first needed, see
    # mmkd.models.StrictTeacherMixin) before anything else runs: a wrong or
    # missing one stops here, naming model.teacher_ckpt.
    load_deferred_teacher(runner.model)
    # Channels and shapes of every connector and loss, before any step.
    check_distiller_shapes(runner.model)
    if teacher_check:
        check_teacher_quality(runner, **check_options)
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
        cfg.test_evaluator.append(
            dict(type='DumpDetResults', out_file_path=out))
    # Evaluation runs the student alone: the teacher is not loaded (its
    # weights are not needed, and a COCO teacher URL need not be reachable),
    # and a checkpoint saved without its teacher loads.
    if is_distiller(cfg):
        cfg.model.teacher_ckpt = None
    evaluation_teacher_hook(cfg)
    preflight(cfg, train=False)
    if not ('://' in checkpoint or osp.isfile(checkpoint)):
        raise FileNotFoundError(
            f'CHECKPOINT {checkpoint!r}: no such file (looked at '
            f'{osp.abspath(checkpoint)})')
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    return runner.test()


__all__ = ['load_config', 'train', 'test', 'enable_amp', 'restore_seed',
           'evaluation_teacher_hook', 'is_distiller', 'setup_cpu_distributed']
