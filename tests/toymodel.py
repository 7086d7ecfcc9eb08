"""A tiny registered model and dataset for distributed-equivalence tests
(imported by configs written in tests through ``custom_imports``)."""
import torch
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from torch import nn


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """Linear regression; the loss is a mean over the batch, so the DDP
    average of per-rank gradients equals the one-process gradient."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor', **kwargs):
        x = torch.stack(inputs)
        y = torch.stack(data_samples)
        pred = self.lin(x)
        if mode == 'loss':
            return dict(loss=((pred - y)**2).mean())
        return pred


@DATASETS.register_module()
class ToyRegression(BaseDataset):

    def __init__(self, n=32, **kwargs):
        self.n = n
        super().__init__(serialize_data=False, lazy_init=False, **kwargs)

    def load_data_list(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(self.n, 4, generator=g)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
        return [dict(inputs=x[i], data_samples=y[i]) for i in range(self.n)]
