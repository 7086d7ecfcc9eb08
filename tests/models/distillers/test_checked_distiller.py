"""CheckedDistiller (mmkd/models/distillers/checked_distiller.py): config
errors that name the key, of the type MMRazor's callers catch."""
import pytest
from mmengine.registry import DefaultScope
from mmrazor.models import ConfigurableDistiller
from mmrazor.registry import MODELS

from mmkd.models import CheckedDistiller, DistillerConfigError


def distiller_cfg(type_, source='neck', arg='preds_S'):
    return dict(
        type=type_,
        student_recorders=dict(s=dict(type='ModuleOutputs', source=source)),
        teacher_recorders=dict(t=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(loss=dict(type='OrthoDistillLoss')),
        loss_forward_mappings=dict(loss={
            arg: dict(from_student=True, recorder='s'),
            'preds_T': dict(from_student=False, recorder='t')}))


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmrazor'):
        return MODELS.build(cfg)


def test_the_error_is_what_mmrazor_raises_and_a_value_error():
    assert issubclass(DistillerConfigError, AssertionError)
    assert issubclass(DistillerConfigError, ValueError)
    assert issubclass(CheckedDistiller, ConfigurableDistiller)


def test_a_loss_argument_the_loss_does_not_take(demo_distiller):
    with pytest.raises(AssertionError) as mmrazor_error:
        build(distiller_cfg('ConfigurableDistiller', arg='student'))
    assert type(mmrazor_error.value) is AssertionError  # MMRazor's own
    with pytest.raises(DistillerConfigError,
                       match=r"loss_forward_mappings.loss.student: "
                       r"OrthoDistillLoss.forward takes no argument "
                       r"'student'; it takes "
                       r"\['preds_S', 'preds_T', 'weight'\]"):
        build(distiller_cfg('CheckedDistiller', arg='student'))


def test_a_recorder_source_that_is_no_module(build_model, demo_distill_cfg):
    model = build_model(demo_distill_cfg())
    checked = build(distiller_cfg('CheckedDistiller', source='nek'))
    with pytest.raises(DistillerConfigError,
                       match=r"student_recorders.s.source='nek' is not a "
                       r"module of the student.*did you mean 'neck'"):
        checked.prepare_from_student(model.student)
    plain = build(distiller_cfg('ConfigurableDistiller', source='nek'))
    with pytest.raises(AssertionError, match='is not in the model'):
        plain.prepare_from_student(model.student)
