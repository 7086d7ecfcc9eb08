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


def test_quantization_stub_only_where_the_import_fails(monkeypatch):
    """The stub is decided by trying the import, not by version numbers."""
    name = compat.QUANT_NAME
    monkeypatch.setattr(compat, '_quant_error', compat._quant_error)
    monkeypatch.delitem(sys.modules, name)
    imported = []
    monkeypatch.setattr(compat.importlib, 'import_module',
                        lambda n: imported.append(n))
    assert compat.stub_mmrazor_quantization() == 'not needed: it imports'
    assert imported == [name] and name not in sys.modules

    def broken(n):
        raise ImportError("cannot import name 'reverse2'")
    monkeypatch.setattr(compat.importlib, 'import_module', broken)
    assert 'reverse2' in compat.stub_mmrazor_quantization()
    with pytest.raises(compat.QuantizationUnavailable, match='reverse2'):
        sys.modules[name].QConfigHandler()


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


def test_one_checkpoint_error_hierarchy(payload_ckpt, capsys):
    """A refused payload is a CheckpointError (one base for every checkpoint
    error) and still the UnpicklingError torch raises; read_checkpoint adds
    the config key; the tools print it as one user error."""
    from mmkd.apis import run_tool
    from mmkd.checkpoint import UnsafeCheckpointError
    path, marker = payload_ckpt
    assert compat.UnsafeCheckpointError is UnsafeCheckpointError
    for caught in (CheckpointError, pickle.UnpicklingError, RuntimeError):
        with pytest.raises(caught) as info:
            CheckpointLoader.load_checkpoint(path)
        assert isinstance(info.value, UnsafeCheckpointError)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'^model\.teacher_ckpt: refused to load '
                       r"checkpoint '.*evil\.pth'"):
        read_checkpoint(path, 'model.teacher_ckpt')
    with pytest.raises(SystemExit) as info:
        run_tool(lambda argv: read_checkpoint(path, 'model.teacher_ckpt'))
    assert info.value.code == 2
    assert 'mmkd error: model.teacher_ckpt: refused' in capsys.readouterr().err
    assert not marker.exists()


def test_teacher_payload_refused_and_mismatch_named(payload_ckpt, tmp_path):
    from mmkd.checkpoint import load_state_strict
    path, marker = payload_ckpt
    with pytest.raises(CheckpointError):
        load_state_strict(Toy(), path, 'model.teacher_ckpt')
    assert not marker.exists()
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'fc.weight': torch.zeros(3, 2)}}, other)
    with pytest.raises(CheckpointError,
                       match=r'model.teacher_ckpt.*missing keys: lin.weight'
                       r'.*unexpected keys: fc.weight'):
        load_state_strict(Toy(), other, 'model.teacher_ckpt')


def test_mmrazor_itself_is_not_patched():
    """mmkd's strict loading and checks are its own registered subclasses;
    MMRazor's classes and functions are MMRazor's."""
    from mmengine.runner import load_checkpoint
    from mmrazor.models import ConfigurableDistiller, SingleTeacherDistill
    from mmrazor.models.algorithms.distill.configurable import (
        single_teacher_distill as std,
    )
    assert std.load_checkpoint is load_checkpoint
    for cls in (ConfigurableDistiller, SingleTeacherDistill):
        for name, attr in vars(cls).items():
            module = getattr(attr, '__module__', '') or ''
            assert not module.startswith('mmkd'), (cls, name)


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


# --- protections that must not switch off ------------------------------------
def test_every_protection_is_applied():
    assert compat.STATUS['weights-only loading'] == 'applied'
    assert compat.STATUS['last_checkpoint pointer'] == 'applied'
    assert compat.STATUS['mmkd:: configs'] == 'applied'
    assert compat.STATUS['quantization'].startswith(('stubbed', 'not needed'))


def test_a_version_bump_keeps_every_protection(payload_ckpt, tmp_path):
    """MMEngine 0.10.99 and MMRazor 1.0.1 (as their metadata would say after
    an upgrade): every patch still applies, a payload is still refused."""
    path, marker = payload_ckpt
    code = f"""
import importlib.metadata as md
real = md.version
bumped = {{'mmengine': '0.10.99', 'mmrazor': '1.0.1'}}
md.version = lambda name: bumped.get(name) or real(name)
import mmkd
from mmkd import compat
from mmengine.runner.checkpoint import CheckpointLoader
assert md.version('mmengine') == '0.10.99'
print(sorted(compat.STATUS.items()))
try:
    CheckpointLoader.load_checkpoint({path!r})
except compat.UnsafeCheckpointError:
    print('REFUSED')
"""
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300)
    assert 'REFUSED' in out.stdout, out.stderr[-2000:]
    assert 'UNAVAILABLE' not in out.stdout
    assert out.stdout.count("'applied'") == 3, out.stdout
    assert not marker.exists()


@pytest.mark.parametrize('step', ['weights-only loading',
                                  'last_checkpoint pointer',
                                  'mmkd:: configs'])
def test_a_protection_that_cannot_apply_warns_loudly(step, monkeypatch):
    """Upstream code changed shape: mmkd says so instead of running
    unprotected."""
    import inspect

    import mmengine.config.config as config_module
    from mmengine.runner import checkpoint as ckpt_mod
    apply, break_it = {
        'weights-only loading': (
            compat.patch_checkpoint_loading,
            lambda: monkeypatch.delattr(ckpt_mod, 'load_url')),
        'last_checkpoint pointer': (
            compat.patch_pointer_write,
            lambda: monkeypatch.setattr(inspect, 'getsource',
                                        lambda obj: 'def save(): pass')),
        'mmkd:: configs': (
            compat.patch_config_scope,
            lambda: monkeypatch.delattr(config_module,
                                        'get_installed_path')),
    }[step]
    monkeypatch.setattr(compat, 'STATUS', {})
    break_it()
    with pytest.warns(compat.ProtectionWarning,
                      match=f'could not apply its protection "{step}".*'
                      'WITHOUT it'):
        compat._step(step, apply)
    assert compat.STATUS[step].startswith('UNAVAILABLE')


def _calls(module) -> set:
    """Every ``name(...)`` / ``a.b(...)`` call in a module's source, as
    dotted text."""
    import ast
    import inspect
    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call):
            found.add(ast.unparse(node.func))
    return found


def test_mmengine_loads_checkpoints_only_through_the_patched_globals():
    """The weights-only patch replaces ``torch`` and ``load_url`` in
    mmengine.runner.checkpoint. Fails when MMEngine loads a checkpoint any
    other way, or adds a load scheme, so that the patch is looked at."""
    from mmengine.runner import checkpoint as ckpt_mod
    loads = {c for c in _calls(ckpt_mod)
             if c.endswith(('.load', 'load_url')) or c in ('load', 'loads')}
    # Besides those two: `load`, load_state_dict's own recursion, and
    # `mmengine.load`, the JSON list of model-zoo URLs.
    assert loads == {'torch.load', 'load_url', 'load', 'mmengine.load'}, loads
    assert isinstance(ckpt_mod.torch, compat.WeightsOnlyTorch)
    assert ckpt_mod.load_url is compat.load_url_weights_only
    assert sorted(CheckpointLoader._schemes) == [
        '', r'(\S+\:)?petrel://', r'(\S+\:)?s3://', 'http://', 'https://',
        'mmcls://', 'modelzoo://', 'open-mmlab://', 'openmmlab://', 'pavi://',
        'torchvision://']


def test_weights_only_holds_when_mmengine_asks_for_full_unpickling(
        payload_ckpt):
    """Newer MMEngine calls torch.load(..., weights_only=False)."""
    from mmengine.runner import checkpoint as ckpt_mod
    path, marker = payload_ckpt
    with pytest.raises(pickle.UnpicklingError):
        ckpt_mod.torch.load(path, map_location='cpu', weights_only=False)
    assert not marker.exists()


def test_url_checkpoints_load_weights_only(payload_ckpt, monkeypatch,
                                           tmp_path):
    """http(s) teacher checkpoints: torch's load_url would unpickle them
    (its weights_only defaults to False). No network: the download is a
    local copy."""
    import shutil
    path, marker = payload_ckpt
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, *a, **k: shutil.copyfile(path, dst))
    with pytest.raises(compat.UnsafeCheckpointError, match='evil.pth'):
        CheckpointLoader.load_checkpoint('https://example.invalid/evil.pth')
    assert not marker.exists()
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, *a, **k: shutil.copyfile(good, dst))
    ckpt = CheckpointLoader.load_checkpoint('https://example.invalid/ok.pth')
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))


def test_pointer_patch_matches_mmengine_source():
    """The pointer patch replaces ``open`` in mmengine.hooks.checkpoint_hook:
    fails when CheckpointHook stops writing ``last_checkpoint`` that way."""
    from mmengine.hooks import checkpoint_hook
    calls = _calls(checkpoint_hook.CheckpointHook)
    assert 'open' in calls
    assert checkpoint_hook.open is compat.open_pointer_atomically


def test_pkg_resources_warning_silenced_for_mmengine_only():
    """Resolving an mmdet:: config (MMEngine imports pkg_resources) shows no
    setuptools warning; mmkd installs no process-wide filter, so the same
    warning from the user's code still shows."""
    code = ('import warnings, mmkd\n'
            'from mmengine.config import Config\n'
            'Config.fromfile("mmkd::vkd/vkd_retinanet_r50_r18_coco.py")\n'
            'print("OURS", [f for f in warnings.filters if f[1] is not None'
            ' and "pkg_resources" in f[1].pattern])\n'
            'warnings.warn("pkg_resources is deprecated as an API (user)")\n')
    out = subprocess.run([sys.executable, '-W', 'default', '-c', code],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'OURS []' in out.stdout
    assert out.stderr.count('pkg_resources is deprecated') == 1, out.stderr
    assert 'pkg_resources is deprecated as an API (user)' in out.stderr
