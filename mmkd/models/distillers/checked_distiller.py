"""MMRazor's ``ConfigurableDistiller`` whose config errors name the key.

MMRazor 1.0.0 checks a distiller config with bare ``assert``s (a recorder
``source`` that is no module: ``'"neck.x" is not in the model.'``; a loss
argument the loss does not take: a message without the loss's arguments).
:class:`CheckedDistiller` runs the same checks first and raises
:class:`DistillerConfigError`, which names the config key, the value and the
valid choices. It is an ``AssertionError`` (what MMRazor raises, so code that
catches MMRazor's error still does) and a ``ValueError``.
"""
import difflib
from inspect import signature

from mmrazor.models.distillers import ConfigurableDistiller
from mmrazor.registry import MODELS

RECORDERS_WITH_SOURCE = ('ModuleOutputsRecorder', 'ModuleInputsRecorder')


class DistillerConfigError(ValueError, AssertionError):
    """A distiller config key has a value MMRazor cannot use."""


def _nearest(name: str, choices, n: int = 3) -> str:
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.4)
    return (f'; did you mean {", ".join(repr(c) for c in close)}?'
            if close else '')


def check_recorder_sources(recorders, model, which: str) -> None:
    """Every ModuleOutputs/ModuleInputs recorder's source is a module of
    ``model`` (``which`` is ``'student'`` or ``'teacher'``)."""
    names = dict(model.named_modules())
    for rec_name, recorder in recorders.recorders.items():
        if type(recorder).__name__ not in RECORDERS_WITH_SOURCE:
            continue
        if recorder.source not in names:
            raise DistillerConfigError(
                f'distiller.{which}_recorders.{rec_name}.source='
                f'{recorder.source!r} is not a module of the {which} '
                f'({type(model).__name__}){_nearest(recorder.source, names)}')


def check_loss_arguments(losses, loss_forward_mappings) -> None:
    """Each mapping names a distill loss, and its keys are arguments of that
    loss's ``forward``."""
    for loss_name, mapping in (loss_forward_mappings or {}).items():
        if loss_name not in losses:
            raise DistillerConfigError(
                f'distiller.loss_forward_mappings.{loss_name}: no distill '
                f'loss of that name; losses are {sorted(losses)}')
        params = signature(losses[loss_name].forward).parameters
        for arg in mapping:
            if arg not in params:
                raise DistillerConfigError(
                    f'distiller.loss_forward_mappings.{loss_name}.{arg}: '
                    f'{type(losses[loss_name]).__name__}.forward takes no '
                    f'argument {arg!r}; it takes {list(params)}')


@MODELS.register_module()
class CheckedDistiller(ConfigurableDistiller):
    """``ConfigurableDistiller`` (same arguments, same behaviour) with
    config errors that name the key and the fix
    (:class:`DistillerConfigError`)."""

    def _check_loss_forward_mappings(self, losses, loss_forward_mappings,
                                     *args) -> None:
        check_loss_arguments(losses, loss_forward_mappings)
        super()._check_loss_forward_mappings(losses, loss_forward_mappings,
                                             *args)

    def prepare_from_student(self, model) -> None:
        check_recorder_sources(self.student_recorders, model, 'student')
        super().prepare_from_student(model)

    def prepare_from_teacher(self, model) -> None:
        check_recorder_sources(self.teacher_recorders, model, 'teacher')
        super().prepare_from_teacher(model)


__all__ = ['CheckedDistiller', 'DistillerConfigError',
           'check_loss_arguments', 'check_recorder_sources']
