"""tests/gpu: where torch sees a GPU but mmcv's ops were built without CUDA
(tools/offline/install.sh's default), the three mmcv CUDA kernels these
tests reach run as pure-PyTorch fallbacks, as in the GPU check's other
steps (install_cuda_fallbacks of tools/gpu_check.py)."""
import pytest


@pytest.fixture(scope='session', autouse=True)
def cuda_fallbacks(load_tool):
    undo = load_tool('gpu_check').install_cuda_fallbacks()
    yield
    undo()
