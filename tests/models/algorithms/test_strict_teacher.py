"""StrictFpnTeacherDistill / StrictSingleTeacherDistill
(mmkd/models/algorithms/strict_teacher.py): the teacher checkpoint must fit,
and is read only when training needs it."""
import pytest
import torch

from mmkd.checkpoint import CheckpointError
from mmkd.models import StrictFpnTeacherDistill


def teacher_state(model):
    return {k: v.clone() for k, v in model.teacher.state_dict().items()}


def test_building_reads_no_teacher_checkpoint(demo_distill_cfg, build_model,
                                              tmp_path, batch):
    """What MMDetection's tools/test.py does with a distill config: build,
    then predict. A teacher checkpoint that is not even there is fine."""
    missing = str(tmp_path / 'nowhere' / 'teacher.pth')
    model = build_model(demo_distill_cfg(teacher_ckpt=missing))
    assert isinstance(model, StrictFpnTeacherDistill)
    assert not model.teacher_loaded and model.teacher._is_init
    model.eval()
    data = batch(model.student, num_images=1, training=False)
    with torch.no_grad():
        preds = model(data['inputs'], data['data_samples'], mode='predict')
    assert len(preds) == 1 and not model.teacher_loaded
    # Training loads it: here that fails, naming the key and the path.
    model.train()
    data = batch(model.student, num_images=1)
    with pytest.raises(CheckpointError,
                       match=r"model.teacher_ckpt=.*nowhere/teacher.pth.*"
                       r'no such file'):
        model(data['inputs'], data['data_samples'], mode='loss')


def test_training_loads_the_teacher_strictly_once(
        demo_distill_cfg, build_model, random_teacher_ckpt, batch,
        monkeypatch):
    model = build_model(demo_distill_cfg(teacher_ckpt=random_teacher_ckpt))
    model.train()  # as the runner does: the teacher's BN statistics frozen
    expected = torch.load(random_teacher_ckpt)['state_dict']
    assert any(not torch.equal(v, expected[k])
               for k, v in model.teacher.state_dict().items()
               if v.is_floating_point())
    data = batch(model.student, num_images=1)
    model(data['inputs'], data['data_samples'], mode='loss')
    assert model.teacher_loaded
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, expected[key]), key
    # Once: a second step does not read the file again.
    import mmkd.checkpoint as ck
    monkeypatch.setattr(ck, 'load_state_strict', lambda *a, **k: 1 / 0)
    model(data['inputs'], data['data_samples'], mode='loss')


def test_a_checkpoint_of_another_model_is_refused(
        demo_distill_cfg, build_model, tmp_path):
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}},
               other)
    model = build_model(demo_distill_cfg(teacher_ckpt=other))
    before = teacher_state(model)
    with pytest.raises(CheckpointError,
                       match=r'model.teacher_ckpt=.*other.pth.*does not fit'
                       r'.*missing keys.*shape mismatches: backbone.conv1'):
        model.load_teacher()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key  # nothing half-loaded
