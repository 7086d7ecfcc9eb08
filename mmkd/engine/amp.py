from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast``.

    MMEngine's ``AmpOptimWrapper`` refuses to run without a GPU; this one is
    what ``tools/train.py --amp`` uses on a CPU: bfloat16 autocast (no loss
    scaling needed for bf16). Losses that must stay exact (mmkd's
    ``OrthoDistillLoss``) leave autocast and compute in float32 themselves.

    Args:
        dtype (str): ``'bfloat16'`` (default) or ``'float16'``.
        device_type (str, optional): autocast device; None takes the model's.
        **kwargs: ``OptimWrapper`` arguments.
    """

    def __init__(self, dtype: str = 'bfloat16',
                 device_type: Optional[str] = None, **kwargs) -> None:
        if dtype not in DTYPES:
            raise ValueError(f'AutocastOptimWrapper dtype={dtype!r}: choose '
                             f'one of {sorted(DTYPES)}')
        super().__init__(**kwargs)
        self.dtype = dtype
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device = self.device_type or next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device, dtype=DTYPES[self.dtype]):
            yield
