"""Bad input and faults: clear errors before training, nothing lost."""
import pytest
import torch

from mmkd.checkpoint import CheckpointError
from mmkd.engine import (
    NonFiniteLossError,
    check_distiller_shapes,
    check_finite,
)
from mmkd_lab.data import make_det_batch


# --- teacher checkpoint ------------------------------------------------------
def test_missing_teacher_checkpoint(tmp_path, demo_distill_cfg, build_model):
    cfg = demo_distill_cfg()
    cfg.teacher_ckpt = str(tmp_path / 'nope.pth')
    with pytest.raises(CheckpointError,
                       match=r'model.teacher_ckpt=.*nope.pth.*no such file'):
        build_model(cfg).load_teacher()  # as training does before step 1


def test_unreadable_teacher_checkpoint(
        tmp_path, demo_distill_cfg, build_model):
    path = tmp_path / 'garbage.pth'
    path.write_bytes(b'\x00not a checkpoint' * 10)
    cfg = demo_distill_cfg()
    cfg.teacher_ckpt = str(path)
    with pytest.raises(CheckpointError,
                       match=r'garbage.pth.*could not be read'):
        build_model(cfg).load_teacher()


def test_refusals_name_the_reference_and_never_advise_unsafe_loading(
        tmp_path):
    """A weights-only refusal is an UnsafeCheckpointError (a CheckpointError
    and an UnpicklingError) in mmkd's words: the global or getattr it
    references when there is one, else "could not be read" (garbage bytes,
    or a plain pickle whose payload would run); never torch's advice to
    retry with weights_only=False."""
    import os
    import pickle

    import numpy as np

    from mmkd.checkpoint import UnsafeCheckpointError, read_checkpoint

    class Payload:
        def __reduce__(self):
            return (os.system, ('echo should-not-run',))

    class Sneaky:
        def __reduce__(self):
            return (getattr, (np.ndarray, 'tofile'))

    (tmp_path / 'garbage.pth').write_bytes(b'\x00not a checkpoint' * 10)
    with open(tmp_path / 'plain.pth', 'wb') as f:
        pickle.dump(Payload(), f)
    torch.save({'state_dict': {}, 'x': Payload()}, tmp_path / 'zip.pth')
    torch.save({'state_dict': {}, 'x': Sneaky()}, tmp_path / 'sneaky.pth')
    expected = {'garbage': 'could not be read', 'plain': 'could not be read',
                'zip': 'references posix.system',
                'sneaky': "references getattr(<class 'numpy.ndarray'>"}
    for name, words in expected.items():
        with pytest.raises(UnsafeCheckpointError) as info:
            read_checkpoint(str(tmp_path / f'{name}.pth'),
                            'model.teacher_ckpt')
        message = str(info.value)
        assert isinstance(info.value, (CheckpointError,
                                       pickle.UnpicklingError))
        assert message.startswith('model.teacher_ckpt: ') and \
            words in message, message
        assert 'will likely succeed' not in message, message


def test_missing_checkpoint_argument_names_the_argument(tmp_path):
    from mmkd.checkpoint import read_checkpoint
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(str(tmp_path / 'no.pth'), 'CHECKPOINT')
    assert '--cfg-options' not in str(info.value)
    assert 'pass the right one as CHECKPOINT' in str(info.value)
    with pytest.raises(CheckpointError, match=r'--cfg-options '
                       r'model.teacher_ckpt=PATH'):
        read_checkpoint(str(tmp_path / 'no.pth'), 'model.teacher_ckpt')


def test_teacher_checkpoint_of_other_architecture(
        tmp_path, demo_distill_cfg, build_model):
    # A checkpoint of the *student* architecture given as teacher: same key
    # names, other shapes -> refused, with the first mismatches listed.
    student = build_model(demo_distill_cfg()).student
    path = str(tmp_path / 'student.pth')
    torch.save({'state_dict': student.state_dict()}, path)
    cfg = demo_distill_cfg()
    cfg.teacher_ckpt = path
    with pytest.raises(CheckpointError) as info:
        build_model(cfg).load_teacher()
    msg = str(info.value)
    assert 'shape mismatches' in msg and 'backbone.conv1.weight' in msg
    assert 'checkpoint (16, 3, 7, 7) vs model (32, 3, 7, 7)' in msg


def test_teacher_checkpoint_loads_exactly(
        tmp_path, demo_distill_cfg, build_model):
    teacher = build_model(demo_distill_cfg()).teacher
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)
    cfg = demo_distill_cfg()
    cfg.teacher_ckpt = path
    algo = build_model(cfg)
    algo.load_teacher()
    for k, v in teacher.state_dict().items():
        assert torch.equal(algo.teacher.state_dict()[k], v), k


# --- distiller config --------------------------------------------------------
def test_connector_channels_checked_before_training(
        demo_distill_cfg, build_model):
    algo = build_model(demo_distill_cfg(student_channels=48))
    with pytest.raises(ValueError, match=r'expects 48 input channels.*'
                       r'\(1, 64, 16, 16\).*student_channels'):
        check_distiller_shapes(algo)


def test_teacher_channels_checked_before_training(
        demo_distill_cfg, build_model):
    algo = build_model(demo_distill_cfg(teacher_channels=256))
    with pytest.raises(ValueError, match=r'teacher_channels.*to 64'):
        check_distiller_shapes(algo)


def test_good_distiller_passes_shape_check_and_leaves_no_records(
        demo_distill_cfg, build_model):
    algo = build_model(demo_distill_cfg())
    check_distiller_shapes(algo)
    for rec in algo.distiller.student_recorders.recorders.values():
        assert rec.data_buffer == []


def test_recorder_source_typo_suggests_names(demo_distill_cfg, build_model):
    with pytest.raises(ValueError, match=r"source='nek' is not a module.*"
                       r"did you mean 'neck'"):
        build_model(demo_distill_cfg(student_source='nek'))


def test_loss_argument_name_lists_valid_ones(demo_distill_cfg, build_model):
    with pytest.raises(ValueError, match=r"takes no argument 'student'.*"
                       r"\['preds_S', 'preds_T', 'weight'\]"):
        build_model(demo_distill_cfg(loss_args=('student', 'teacher')))


# --- odd images --------------------------------------------------------------
def _step(algo, data, total_loss):
    opt = torch.optim.SGD([p for p in algo.parameters() if p.requires_grad],
                          lr=0.01)
    losses = algo(**algo.data_preprocessor(data, True), mode='loss')
    loss = total_loss(losses)
    assert torch.isfinite(loss), losses
    opt.zero_grad()
    loss.backward()
    opt.step()
    return losses


@pytest.mark.parametrize('size', [(128, 128), (32, 32), (64, 512)],
                         ids=['normal', 'tiny', 'extreme-aspect'])
def test_training_goes_on_with_odd_images(size, demo_distill_cfg, build_model,
                                          total_loss):
    algo = build_model(demo_distill_cfg())
    algo.train()
    data = make_det_batch(2, size, seed=1)
    # The second image has no ground-truth boxes at all.
    gt = data['data_samples'][1].gt_instances
    data['data_samples'][1].gt_instances = gt[gt.labels < 0]
    losses = _step(algo, data, total_loss)
    assert any(k.startswith('distill.') for k in losses)


def test_batch_of_one(demo_distill_cfg, build_model, total_loss):
    algo = build_model(demo_distill_cfg())
    algo.train()
    _step(algo, make_det_batch(1, (96, 96), seed=2), total_loss)


# --- NaN ---------------------------------------------------------------------
def test_non_finite_loss_names_iteration_and_term():
    losses = {'student.loss_cls': torch.tensor(1.0),
              'distill.loss_fpn2': torch.tensor(float('nan'))}
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 7: distill.loss_fpn2=nan'):
        check_finite(losses, 7)
    check_finite({'loss': torch.tensor(2.0), 'acc': [torch.tensor(1.0)]}, 1)


@pytest.mark.slow
def test_nan_run_stops_with_iteration_and_keeps_finite_checkpoints(
        tmp_path, repo, train_tool):
    from mmkd.checkpoint import read_checkpoint
    from mmkd_lab.data import ensure_dataset
    from mmkd_lab.demo import data_options, final_checkpoint
    data = ensure_dataset(str(tmp_path / 'data'), num_train=16, num_val=4)
    work_dir = str(tmp_path / 'wd')
    proc = train_tool(
        repo.student_demo, work_dir, cfg_options=data_options(data) + [
            'train_cfg.max_iters=8', 'train_dataloader.batch_size=2',
            'default_hooks.checkpoint.interval=1',
            # A learning rate that blows the weights up within a few steps.
            'optim_wrapper.optimizer.lr=1e8',
            'optim_wrapper.clip_grad=None',
            'param_scheduler=[]'])
    assert proc.returncode == 2, proc.stderr[-2000:]
    # Either the loss went NaN first, or a step blew the weights up first.
    assert ('non-finite loss at iteration' in proc.stderr and
            'No optimizer step was taken' in proc.stderr) or (
                'non-finite weights after iteration' in proc.stderr and
                'the checkpoint was not written' in proc.stderr)
    last = final_checkpoint(work_dir)
    state = read_checkpoint(last)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point()), last
