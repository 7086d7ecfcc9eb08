"""Checkpoint files that are never half written, with ordinary file modes.

MMEngine 0.10.7 writes a checkpoint in place: a process killed mid-write
(preempted job, full disk) leaves a truncated ``iter_N.pth`` that ``--resume``
then fails on. :class:`AtomicLocalBackend` (MMEngine's ``LocalBackend`` with
atomic ``put``/``put_text``) writes to a temporary file in the same folder and
renames it over the target, so readers see the old file or the whole new one.
It is registered as MMEngine file backend ``'mmkd_atomic_local'``;
:class:`mmkd.engine.AtomicCheckpointHook` (in mmkd's runtime config) selects
it for the run's checkpoints. Nothing changes for code that does not select
it.
"""
import os
import stat
import tempfile

from mmengine.fileio import LocalBackend, register_backend

BACKEND = 'mmkd_atomic_local'


def umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no reader: set and restore (brief)
    os.umask(mask)
    return mask


def ordinary_mode(filepath) -> int:
    """The mode an ordinary ``open(filepath, 'w')`` leaves: the existing
    file's, or 0o666 less the umask for a new one."""
    try:
        return stat.S_IMODE(os.stat(filepath).st_mode)
    except FileNotFoundError:
        return 0o666 & ~umask()


def atomic_write(data, filepath, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``filepath`` so that readers see the old file or the
    whole new one, never a part; the file gets :func:`ordinary_mode`
    (``mkstemp`` alone would leave 0600, unreadable for a team's shared
    work dir)."""
    folder = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-',
                               suffix=os.path.basename(str(filepath)))
    try:
        os.fchmod(fd, ordinary_mode(filepath))
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@register_backend(BACKEND)
class AtomicLocalBackend(LocalBackend):
    """MMEngine's ``LocalBackend`` whose writes are atomic
    (:func:`atomic_write`). Select it with
    ``backend_args=dict(backend='mmkd_atomic_local')``."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, filepath, 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj, filepath, 'w', encoding)


__all__ = ['AtomicLocalBackend', 'BACKEND', 'atomic_write', 'ordinary_mode']
