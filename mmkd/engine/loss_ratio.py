"""``DistillLossRatioHook``: the distillation terms' share of the loss, in
the training log.

How large the distillation terms are beside the detector's own losses is the
first thing to look at when a distilled student does not improve (terms
that drown the task, or that are negligible). The hook logs, every
iteration, ``distill_ratio`` = (sum of the ``distill.*`` loss terms) /
(sum of the detector's own loss terms), beside the losses (MMEngine's log
processor averages it over its window like them). The key has no ``loss``
in its name, so MMEngine does not add it to the loss that is optimised. On
a detector without distillation terms it logs nothing.
"""
from typing import Dict, Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

KEY = 'distill_ratio'


def distill_ratio(log_vars: Dict[str, float]) -> Optional[float]:
    """sum(distill.* losses) / sum(task losses) of parsed log variables
    (``loss``, their total, is neither); None without both kinds."""
    distill = task = 0.0
    has_distill = has_task = False
    for name, value in log_vars.items():
        if name == 'loss' or 'loss' not in name:
            continue
        value = float(value.detach() if hasattr(value, 'detach') else value)
        if name.startswith('distill.'):
            distill, has_distill = distill + value, True
        else:
            task, has_task = task + value, True
    if not (has_distill and has_task) or task == 0:
        return None
    return distill / task


@HOOKS.register_module()
class DistillLossRatioHook(Hook):
    """Log ``distill_ratio`` every training iteration (see module doc).

    Runs after MMEngine's RuntimeInfoHook, which puts the losses in the
    message hub, and before the LoggerHook, which writes them out."""

    priority = 'NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        ratio = distill_ratio(outputs or {})
        if ratio is not None:
            runner.message_hub.update_scalar(f'train/{KEY}', ratio)
