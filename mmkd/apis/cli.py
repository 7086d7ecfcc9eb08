"""Argument pieces shared by the tools (MMDetection's option names)."""
import argparse
import os

from mmengine.config import DictAction


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. model.teacher_ckpt=PATH '
        'train_cfg.max_iters=100')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); accept both spellings.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        dest='local_rank')


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def run_tool(main, argv=None) -> None:
    """Run a tool's ``main``; a user error (missing data or checkpoint, a
    refused checkpoint, a bad distiller config) prints one message and
    exits with status 2 instead of a traceback (MMKD_TRACEBACK=1 shows it).
    A finished distributed run's process group is shut down before the
    process exits: left to interpreter shutdown, a rank can abort in its gloo
    threads ("terminate called without an active exception") after the run
    itself finished, and the launcher then reports the run as failed. The
    ranks first wait for each other: both aborts seen in the suite were of
    rank 1, which finishes first while rank 0 still writes the last
    checkpoint or the metrics (a mitigation, not a proven cure). Should one
    rank die of another error after the others finished, those wait in the
    barrier: torchrun and ``srun --kill-on-bad-exit=1`` (tools/*.sh) stop
    them at once, other launchers after the process group's timeout."""
    import sys

    import torch.distributed as dist

    from ..checkpoint import CheckpointError  # UnsafeCheckpointError too
    from ..engine import NonFiniteLossError
    from ..preflight import PreflightError
    user_errors = (PreflightError, CheckpointError, NonFiniteLossError,
                   FileNotFoundError)
    try:
        main(argv)
    except user_errors as exc:
        if os.environ.get('MMKD_TRACEBACK'):
            raise
        print(f'mmkd error: {exc}', file=sys.stderr)
        sys.exit(2)
    else:
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
