"""Atomic checkpoint files (mmkd/fileio.py, AtomicCheckpointHook): whole
files only, with the mode an ordinary write gives."""
import os
import stat

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmkd.fileio import BACKEND, atomic_write


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs)
        if mode == 'loss':
            return dict(loss=(self.lin(x)**2).mean())
        return self.lin(x)


@pytest.fixture
def umask_002():
    old = os.umask(0o002)
    yield 0o002
    os.umask(old)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_get_the_umask_mode(tmp_path, umask_002):
    path = tmp_path / 'a.pth'
    atomic_write(b'x', str(path))
    assert mode_of(path) == 0o664  # 0o666 less the umask; mkstemp gives 0o600
    os.chmod(path, 0o640)
    atomic_write(b'yy', str(path))  # an existing file keeps its mode
    assert mode_of(path) == 0o640 and path.read_bytes() == b'yy'
    assert os.listdir(tmp_path) == ['a.pth']  # no temporary file left


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / 'a.pth'
    path.write_bytes(b'old')

    with pytest.raises(TypeError):
        atomic_write(12345, str(path))  # not bytes: fails mid-write
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['a.pth']


def test_a_run_writes_readable_checkpoints_through_the_backend(
        tmp_path, umask_002, monkeypatch):
    import mmkd.fileio as fileio
    written = []
    real = fileio.atomic_write
    monkeypatch.setattr(fileio, 'atomic_write',
                        lambda data, path, *a: (written.append(
                            os.path.basename(path)), real(data, path, *a)))
    runner = Runner(
        model=Toy(), work_dir=str(tmp_path), experiment_name='modes',
        train_dataloader=dict(dataset=[dict(inputs=torch.randn(2))] * 4,
                              batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=2, by_epoch=False)),
        custom_hooks=[dict(type='AtomicCheckpointHook')],
        default_scope='mmengine')
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ ==
                'CheckpointHook')
    assert hook.backend_args == dict(backend=BACKEND)
    assert 'iter_2.pth' in written and 'last_checkpoint' in written
    for name in ('iter_2.pth', 'last_checkpoint'):
        assert mode_of(tmp_path / name) == 0o664, name


def test_a_configured_backend_is_left_alone(tmp_path):
    from mmengine.hooks import CheckpointHook

    from mmkd.engine import AtomicCheckpointHook
    mine = CheckpointHook(backend_args=dict(backend='local'))
    remote = CheckpointHook(out_dir='s3://bucket/run')
    plain = CheckpointHook()
    runner = type('R', (), dict(hooks=[mine, remote, plain],
                                work_dir=str(tmp_path)))()
    AtomicCheckpointHook().before_run(runner)
    assert mine.backend_args == dict(backend='local')
    assert remote.backend_args is None
    assert plain.backend_args == dict(backend=BACKEND)
