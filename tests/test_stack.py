"""The pinned stack works: MMDetection detectors from mmdet's own configs
train a step on the CPU, and MMRazor's distiller runs with a built-in loss."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.registry import MODELS

from mmkd.distill import fpn_distiller_cfg

CONFIGS = [
    'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
]


@pytest.mark.parametrize('cfg_path', CONFIGS)
def test_mmdet_detector_forward_backward(cfg_path, build_mmdet, batch,
                                         total_loss):
    torch.manual_seed(0)
    model = build_mmdet(cfg_path)
    model.train()
    data = batch(model, num_images=2, size=(128, 160))
    losses = model(**data, mode='loss')
    loss = total_loss(losses)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # Inference through mmcv's compiled ops (nms, RoIAlign for Faster R-CNN).
    model.eval()
    with torch.no_grad():
        results = model(**batch(model, 1, (128, 160), training=False),
                        mode='predict')
    assert len(results) == 1 and hasattr(results[0], 'pred_instances')


def test_mmcv_ops_are_compiled():
    from mmcv.ops import RoIAlign, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]  # box 1 overlaps box 0 with IoU 0.81
    feat = torch.arange(16.).reshape(1, 1, 4, 4)
    out = RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=1,
                   aligned=True)(feat, torch.tensor([[0., 0., 0., 4., 4.]]))
    # One bin, one sample at the centre (2, 2) -> pixel (1.5, 1.5) = 7.5.
    assert out.item() == pytest.approx(7.5)


def test_single_teacher_distill_with_mmrazor_loss_steps(mmdet_model_cfg,
                                                        batch, total_loss):
    torch.manual_seed(0)
    cfg = dict(
        type='SingleTeacherDistill',
        architecture=mmdet_model_cfg(CONFIGS[0]),
        teacher=mmdet_model_cfg(CONFIGS[1]),
        distiller=fpn_distiller_cfg(
            levels=range(5), student_channels=256, teacher_channels=256,
            loss=dict(type='PKDLoss', loss_weight=1.0)))
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algo = MODELS.build(cfg)
    algo.init_weights()
    algo.train()
    teacher_before = {k: v.clone() for k, v in
                      algo.teacher.state_dict().items()}
    opt = torch.optim.SGD(
        [p for p in algo.parameters() if p.requires_grad], lr=0.01)
    student_before = algo.student.neck.lateral_convs[0].conv.weight.detach(
    ).clone()
    losses = algo(**batch(algo, 2, (128, 128)), mode='loss')
    pkd = [v for k, v in losses.items() if k.startswith('distill.loss_fpn')]
    assert len(pkd) == 5 and all(torch.isfinite(v) for v in pkd)
    opt.zero_grad()
    total_loss(losses).backward()
    opt.step()
    assert not torch.equal(student_before,
                           algo.student.neck.lateral_convs[0].conv.weight)
    for k, v in algo.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
