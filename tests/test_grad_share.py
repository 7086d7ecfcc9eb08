"""tools/analysis/grad_share.py: the task's and the distillation terms'
gradients, kept apart and compared per group against formulas written
here."""
import math

import torch
from mmengine.model import BaseModel
from torch import nn


def test_share_table_matches_the_formulas(load_tool):
    tool = load_tool('analysis/grad_share')
    g = torch.Generator().manual_seed(0)
    names = ['architecture.backbone.conv.weight', 'architecture.backbone.bn',
             'architecture.decoder.layers.0.w', 'distiller.connectors.c.w',
             'architecture.query_embedding.weight']
    task = [torch.randn(3, 2, generator=g) for _ in names]
    distill = [torch.randn(3, 2, generator=g) * (i + 1)
               for i, _ in enumerate(names)]
    table = tool.share_table(names, task, distill)
    assert list(table) == ['backbone', 'decoder', 'other', 'connectors',
                           'all']
    members = {'backbone': [0, 1], 'decoder': [2], 'connectors': [3],
               'other': [4], 'all': [0, 1, 2, 3, 4]}
    for group, idx in members.items():
        t = [v for i in idx for v in task[i].flatten().tolist()]
        d = [v for i in idx for v in distill[i].flatten().tolist()]
        t_norm = math.sqrt(sum(v * v for v in t))
        d_norm = math.sqrt(sum(v * v for v in d))
        row = table[group]
        assert math.isclose(row['task'], t_norm, rel_tol=1e-9)
        assert math.isclose(row['distill'], d_norm, rel_tol=1e-9)
        assert math.isclose(row['ratio'], d_norm / t_norm, rel_tol=1e-9)
        assert math.isclose(row['cosine'], sum(
            a * b for a, b in zip(t, d)) / (t_norm * d_norm), rel_tol=1e-9)
        assert math.isclose(row['distill_wins'], sum(
            abs(b) > abs(a) for a, b in zip(t, d)) / len(t), rel_tol=1e-9)


class _Toy(BaseModel):
    """``student.loss = sum(w**2 * x)``, ``distill.loss = sum(3 * w * x)``
    for an input x; the teacher's parameter takes part in both."""

    def __init__(self):
        super().__init__()
        self.architecture = nn.Module()
        self.architecture.backbone = nn.Module()
        self.architecture.backbone.w = nn.Parameter(torch.tensor([1., -2.]))
        self.teacher = nn.Module()
        self.teacher.v = nn.Parameter(torch.tensor([5.]))

    def loss(self, inputs, data_samples):
        w, v = self.architecture.backbone.w, self.teacher.v
        return {'student.loss_a': (w ** 2 * inputs).sum() + v.sum(),
                'student.acc': torch.tensor(1.0),
                'distill.loss_b': (3 * w * inputs).sum() * v.sum() / 5}

    def forward(self, *args, **kwargs):
        raise NotImplementedError


def test_split_gradients_keeps_task_and_distillation_apart(load_tool):
    tool = load_tool('analysis/grad_share')
    model = _Toy()
    batches = [dict(inputs=torch.tensor([1., 2.]), data_samples=None),
               dict(inputs=torch.tensor([3., 1.]), data_samples=None)]
    names, task, distill = tool.split_gradients(model, batches)
    assert names == ['architecture.backbone.w']  # no teacher parameter
    w = torch.tensor([1., -2.])
    x_sum = torch.tensor([4., 3.])
    # d/dw sum(w^2 x) = 2 w x, summed over the batches; d/dw 3 w x = 3 x.
    torch.testing.assert_close(task[0], 2 * w * x_sum)
    torch.testing.assert_close(distill[0], 3 * x_sum)
