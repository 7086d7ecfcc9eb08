import os

import pytest
import torch

import mmkd  # noqa: F401  (applies the compatibility layer, registers modules)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
