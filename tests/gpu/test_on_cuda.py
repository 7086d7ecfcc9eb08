"""mmkd on a CUDA device (marker ``cuda``; skipped where torch sees no GPU,
run by tools/gpu_check.py): the modules and a distiller on the GPU, fp16
AMP through the distillation losses, the teacher checkpoint, DINO's
deformable attention, one nccl step on two GPUs. Written on a machine
without a GPU: not yet run (docs/gpu.md)."""
import copy
import os
import os.path as osp
import runpy
import socket

import pytest
import torch

from mmkd.models import OrthoDistillLoss, ProjectorConnector
from mmkd_lab.data import make_det_batch

pytestmark = pytest.mark.cuda
CUDA = torch.device('cuda')


@pytest.mark.parametrize('norm, reduction', [
    ('batch', 'mean'), ('instance', 'logsum'), ('layer', 'mean'),
    ('whiten', 'mean')])
def test_projector_and_loss_on_cuda_match_cpu(norm, reduction):
    torch.manual_seed(0)
    proj = ProjectorConnector(32, 64)
    loss = OrthoDistillLoss(norm=norm, reduction=reduction)
    s, t = torch.randn(2, 32, 8, 8), torch.randn(2, 64, 8, 8)
    cpu = loss(proj(s), t)
    gpu = loss.to(CUDA)(proj.to(CUDA)(s.to(CUDA)), t.to(CUDA))
    assert gpu.device.type == 'cuda'
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-4, abs=1e-5)


def test_fp16_amp_steps_are_finite_and_the_scaler_steps(demo_distiller):
    from mmengine.optim import AmpOptimWrapper
    torch.manual_seed(0)
    algo = demo_distiller().to(CUDA)
    algo.init_weights()
    algo.train()
    params = [p for p in algo.parameters() if p.requires_grad]
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(params, lr=0.01),
                              loss_scale='dynamic')
    stepped = []
    real_step = wrapper.optimizer.step
    wrapper.optimizer.step = lambda *a, **k: (stepped.append(1),
                                              real_step(*a, **k))[1]
    dtypes = {}
    hooks = [algo.student.backbone.conv1.register_forward_hook(
                 lambda m, a, out: dtypes.update(conv=out.dtype)),
             algo.distiller.distill_losses['loss_fpn0'].register_forward_hook(
                 lambda m, a, out: dtypes.update(loss=out.dtype))]
    before = algo.student.neck.fpn_convs[0].conv.weight.detach().clone()
    for i in range(6):
        log_vars = algo.train_step(make_det_batch(2, (128, 128), seed=i),
                                   wrapper)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in
                   log_vars.values()), log_vars
        assert sorted(k for k in log_vars if k.startswith('distill.')) == \
            [f'distill.loss_fpn{i}' for i in range(5)]
    for hook in hooks:
        hook.remove()
    assert dtypes == dict(conv=torch.float16, loss=torch.float32)
    # A dynamic scaler skips the steps whose fp16 gradients overflow and
    # halves its scale; it must step the others.
    assert stepped, 'GradScaler skipped every step'
    assert 0 < wrapper.loss_scaler.get_scale() < float('inf')
    assert not torch.equal(before,
                           algo.student.neck.fpn_convs[0].conv.weight)


def test_teacher_checkpoint_saved_on_cuda_loads(demo_distill_cfg, build_model,
                                                tmp_path, repo):
    from mmengine.config import Config
    torch.manual_seed(0)
    teacher = build_model(Config.fromfile(repo.teacher_demo).model).to(CUDA)
    path = str(tmp_path / 'teacher_cuda.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)  # CUDA storages
    algo = build_model(demo_distill_cfg(teacher_ckpt=path)).to(CUDA)
    algo.train()  # as the runner does: the frozen teacher's BN in eval
    # A training forward loads the teacher (at build or, deferred, here)
    # into the model where it now is: on the GPU.
    data = algo.data_preprocessor(make_det_batch(2, (128, 128), seed=0),
                                  True)
    losses = algo(**data, mode='loss')
    assert all(torch.isfinite(v).all() for k, v in losses.items()
               if 'loss' in k and isinstance(v, torch.Tensor))
    got = algo.teacher.state_dict()
    for key, value in teacher.state_dict().items():
        assert got[key].is_cuda and torch.equal(got[key], value), key


def test_focal_loss_on_cuda_matches_cpu():
    from mmdet.models.losses import FocalLoss
    torch.manual_seed(0)
    pred, target = torch.randn(50, 5), torch.randint(0, 6, (50,))
    loss = FocalLoss(use_sigmoid=True)
    cpu = loss(pred, target)
    gpu = loss(pred.to(CUDA), target.to(CUDA))
    assert gpu.item() == pytest.approx(cpu.item(), rel=1e-4)


def test_deformable_attention_on_cuda_matches_pytorch():
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttention,
        multi_scale_deformable_attn_pytorch,
    )
    torch.manual_seed(0)
    shapes = torch.tensor([[8, 8], [4, 4]])
    starts = torch.cat([shapes.new_zeros(1), shapes.prod(1).cumsum(0)[:-1]])
    value = torch.randn(2, int(shapes.prod(1).sum()), 4, 8)
    locations = torch.rand(2, 10, 4, 2, 3, 2)
    weights = torch.rand(2, 10, 4, 2, 3).softmax(-1)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, locations,
                                              weights)
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=4,
                                         num_levels=2, num_points=3,
                                         batch_first=True).to(CUDA)
    # The module's kernel call (CUDA kernel, or the fallback) on the GPU.
    import mmcv.ops.multi_scale_deform_attn as msda
    out = msda.MultiScaleDeformableAttnFunction.apply(
        value.to(CUDA), shapes.to(CUDA), starts.to(CUDA),
        locations.to(CUDA), weights.to(CUDA), attn.im2col_step)
    assert torch.allclose(out.cpu(), ref, atol=1e-4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _nccl_worker(rank, world, port, out_dir, gpu_check):
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, DefaultScope

    import mmkd  # noqa: F401

    # A fresh process: the fallbacks of conftest.py are not installed here.
    runpy.run_path(gpu_check)['install_cuda_fallbacks']()
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('nccl', rank=rank, world_size=world)
    torch.cuda.set_device(rank)
    cfg = copy.deepcopy(Config.fromfile(
        'mmkd::demo/vkd_retinanet_shapes.py').model)
    cfg.teacher_ckpt = None
    torch.manual_seed(0)  # the same initial weights on both ranks
    with DefaultScope.overwrite_default_scope('mmdet'):
        algo = MODELS.build(cfg)
    algo.init_weights()
    algo = MMDistributedDataParallel(algo.cuda(rank), device_ids=[rank])
    params = [p for p in algo.parameters() if p.requires_grad]
    wrapper = OptimWrapper(optimizer=torch.optim.SGD(params, lr=0.01))
    log_vars = algo.train_step(make_det_batch(2, (128, 128), seed=rank),
                               wrapper)
    weight = algo.module.student.neck.fpn_convs[0].conv.weight
    torch.save(dict(log_vars={k: float(v) for k, v in log_vars.items()},
                    weight=weight.detach().cpu()),
               os.path.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 GPUs')
def test_one_nccl_step_on_two_gpus(tmp_path, repo):
    import torch.multiprocessing as mp
    mp.spawn(_nccl_worker, args=(2, _free_port(), str(tmp_path),
                                 osp.join(repo.tools, 'gpu_check.py')),
             nprocs=2)
    ranks = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]
    for rank in ranks:
        assert all(torch.isfinite(torch.tensor(v))
                   for v in rank['log_vars'].values())
    # Each rank its own images (different losses), DDP's averaged gradient
    # (the same weights after the step).
    assert ranks[0]['log_vars']['loss'] != ranks[1]['log_vars']['loss']
    assert torch.equal(ranks[0]['weight'], ranks[1]['weight'])
