"""The compatibility layer (mmkd/compat.py): each patch, and what it must
not allow."""
import importlib.util
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from mmkd import compat
from mmkd.checkpoint import CheckpointError, read_checkpoint


def test_mmrazor_distillation_imports_and_registers():
    from mmrazor.models import (
        ConfigurableDistiller,
        FpnTeacherDistill,
        SingleTeacherDistill,
    )
    from mmrazor.registry import MODELS, TASK_UTILS
    assert issubclass(FpnTeacherDistill, SingleTeacherDistill)
    assert MODELS.get('ConfigurableDistiller') is ConfigurableDistiller
    for name in ('PKDLoss', 'ChannelWiseDivergence', 'MGDLoss', 'FBKDLoss',
                 'MGDConnector', 'FBKDStudentConnector', 'ProjectorConnector',
                 'OrthoDistillLoss', 'FpnDistiller'):
        assert MODELS.get(name) is not None, name
    assert TASK_UTILS.get('ModuleOutputsRecorder') is not None


def test_quantization_gives_clear_error():
    from mmengine.registry import DefaultScope
    from mmrazor.registry import MODELS
    from mmrazor.structures.quantization import QConfigHandler
    with pytest.raises(compat.QuantizationUnavailable,
                       match=r'QConfigHandler.*unavailable on torch'):
        QConfigHandler(dict())
    with pytest.raises(compat.QuantizationUnavailable, match='torch removed'):
        with DefaultScope.overwrite_default_scope('mmrazor'):
            MODELS.build(dict(type='TorchNativeQuantizer',
                              global_qconfig=dict()))


def test_quantization_stub_only_where_needed(monkeypatch):
    monkeypatch.setattr(compat, 'TORCH', compat.Version('2.0.1'))
    assert not compat._mmrazor_quantization_broken()


def test_missing_joblib_names_the_fix(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'joblib' else
                        real(name, *a))
    with pytest.raises(ImportError, match='pip install joblib'):
        compat.check_joblib()


# --- checkpoints -------------------------------------------------------------
def test_payload_is_real(payload_ckpt):
    path, marker = payload_ckpt
    torch.load(path, weights_only=False)  # what an unpatched stack would do
    assert marker.exists()


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs)
        if mode == 'loss':
            return dict(loss=(self.lin(x)**2).mean())
        return self.lin(x)


def toy_runner(work_dir, name, max_iters=4, **kwargs):
    data = [dict(inputs=torch.randn(2)) for _ in range(8)]
    return Runner(
        model=Toy(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler',
                                           shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1,
                                          momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                           by_epoch=False)),
        default_scope='mmengine', **kwargs)


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    runner = toy_runner(tmp_path / 'a', 'ckpt_a')
    runner.train()
    path = str(tmp_path / 'a' / 'iter_4.pth')
    # Exactly torch's weights-only loader, with mmkd's allow-list, also in a
    # fresh process (where no HistoryBuffer exists yet, as on --resume).
    ckpt = torch.load(path, weights_only=True)
    fresh_load = subprocess.run(
        [sys.executable, '-c', 'import sys, torch, mmkd; '
         'print(torch.load(sys.argv[1], weights_only=True)["meta"]["iter"])',
         path], capture_output=True, text=True, timeout=300)
    assert fresh_load.stdout.strip() == '4', fresh_load.stderr[-2000:]
    from mmengine.logging import HistoryBuffer
    assert 'optimizer' in ckpt
    buffers = ckpt['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    assert len(buffers['train/loss'].data[0]) == 4  # one loss per iteration
    # resume (``--resume``) restores the iteration and optimizer state.
    resumed = toy_runner(tmp_path / 'b', 'ckpt_b', max_iters=6,
                         load_from=path, resume=True)
    resumed.train()
    assert resumed.iter == 6
    # load_from without resume, as ``tools/test.py CHECKPOINT`` does.
    fresh = toy_runner(tmp_path / 'c', 'ckpt_c')
    fresh.load_checkpoint(path)
    assert torch.equal(fresh.model.lin.weight, runner.model.lin.weight)


def test_payload_refused_on_every_load_path(payload_ckpt, tmp_path):
    path, marker = payload_ckpt
    attempts = {
        'CheckpointLoader': lambda: CheckpointLoader.load_checkpoint(path),
        'read_checkpoint': lambda: read_checkpoint(path),
        'load_from': lambda: toy_runner(tmp_path / 'l', 'evil_l')
        .load_checkpoint(path),
        'resume': lambda: toy_runner(tmp_path / 'r', 'evil_r').resume(path),
        'torch<2.6 shim': lambda: compat.WeightsOnlyTorch().load(path),
    }
    for name, attempt in attempts.items():
        with pytest.raises((pickle.UnpicklingError, CheckpointError)) as info:
            attempt()
        assert 'Payload' in str(info.value) or 'open' in str(info.value), name
        assert not marker.exists(), f'payload ran through {name}'


def test_refusal_message_names_file_and_fix(payload_ckpt):
    path, _ = payload_ckpt
    with pytest.raises(compat.UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(path)
    msg = str(info.value)
    assert path in msg and 'weights_only=True' in msg and 'state_dict' in msg


def test_teacher_payload_refused_and_mismatch_named(payload_ckpt, tmp_path):
    from mmrazor.models.algorithms.distill.configurable import (
        single_teacher_distill as std,
    )
    path, marker = payload_ckpt
    with pytest.raises(CheckpointError):
        std.load_checkpoint(Toy(), path)
    assert not marker.exists()
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'fc.weight': torch.zeros(3, 2)}}, other)
    with pytest.raises(CheckpointError,
                       match=r'model.teacher_ckpt.*missing keys: lin.weight'
                       r'.*unexpected keys: fc.weight'):
        std.load_checkpoint(Toy(), other)


@pytest.mark.parametrize('tool', ['train', 'test'])
@pytest.mark.parametrize('flag', ['--local-rank', '--local_rank'])
def test_tools_accept_both_local_rank_spellings(tool, flag, monkeypatch,
                                                load_tool):
    module = load_tool(tool)
    seen = {}
    monkeypatch.setattr(module, tool, lambda *a, **k: seen.update(k, a=a))
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    argv = ['cfg.py'] + (['ckpt.pth'] if tool == 'test' else [])
    module.main(argv + [flag, '3', '--launcher', 'pytorch'])
    assert seen['launcher'] == 'pytorch'
    assert os.environ['LOCAL_RANK'] == '3'
    monkeypatch.delenv('LOCAL_RANK')
