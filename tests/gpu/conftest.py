"""tests/gpu: where torch sees a GPU but mmcv's ops were built without CUDA
(tools/offline/install.sh's default), the three mmcv CUDA kernels these
tests reach run as pure-PyTorch fallbacks, as in the GPU check's other
steps (mmkd.apis.gpu_check.install_cuda_fallbacks)."""
import pytest


@pytest.fixture(scope='session', autouse=True)
def cuda_fallbacks():
    from mmkd.apis.gpu_check import install_cuda_fallbacks
    undo = install_cuda_fallbacks()
    yield
    undo()
