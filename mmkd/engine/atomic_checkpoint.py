"""Select mmkd's atomic file backend for a run's local checkpoints."""
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from ..fileio import BACKEND


@HOOKS.register_module()
class AtomicCheckpointHook(Hook):
    """Make every ``CheckpointHook`` of the run that writes to local disk
    with MMEngine's default backend write through
    :class:`mmkd.fileio.AtomicLocalBackend` (whole files or none, ordinary
    file modes).

    A ``CheckpointHook`` given ``backend_args`` or ``file_client_args`` (a
    remote store, say), or an ``out_dir`` with a URI prefix, is left as
    configured. It acts in ``before_run``, before ``CheckpointHook`` builds
    its backend in ``before_train``. Registered in MMEngine's root ``HOOKS``
    (mmkd's runtime config adds it).
    """
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook):
                continue
            out_dir = str(hook.out_dir or runner.work_dir)
            if hook.backend_args is None and hook.file_client_args is None \
                    and '://' not in out_dir:
                hook.backend_args = dict(backend=BACKEND)


__all__ = ['AtomicCheckpointHook']
