# The demo's detectors: RetinaNet like mmdet's, sized for a CPU and 128x128
# images. `_scope_='mmdet'` lets MMRazor's distillers (built in the mmrazor
# scope) build them too.
_num_classes = 5


def _retinanet(depth, base_channels, fpn_channels, head_convs):
    return dict(
        _scope_='mmdet',
        type='RetinaNet',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=32),
        backbone=dict(
            type='ResNet', depth=depth, base_channels=base_channels,
            num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
            style='pytorch', init_cfg=None),
        neck=dict(
            type='FPN',
            in_channels=[base_channels * m *
                         (4 if depth >= 50 else 1) for m in (1, 2, 4, 8)],
            out_channels=fpn_channels, start_level=1,
            add_extra_convs='on_input', num_outs=5),
        bbox_head=dict(
            type='RetinaHead', num_classes=_num_classes,
            in_channels=fpn_channels, stacked_convs=head_convs,
            feat_channels=fpn_channels,
            anchor_generator=dict(
                type='AnchorGenerator',
                # Anchors of 16 px at stride 8: the data has objects of 8 px.
                octave_base_scale=2, scales_per_octave=3,
                ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                            target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                          alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                          neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'),
            allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=100))


# The pair mirrors mmkd's COCO pairs (R50 -> R18, R101 -> R50): the student
# has the smaller backbone, both have the same FPN width (256 on COCO, 64
# here), so each projector is a square W. The teacher's backbone is twice as
# wide (32 base channels against 16). A student with a 32-channel FPN (64x32
# W) is configs/demo/narrow/ (docs/beyond_retinanet.md: it gains with the
# orthogonal and the linear projector alike).
teacher = _retinanet(depth=18, base_channels=32, fpn_channels=64,
                     head_convs=2)
student = _retinanet(depth=18, base_channels=16, fpn_channels=64,
                     head_convs=2)


# "Beyond RetinaNet" (docs/beyond_retinanet.md): two more students against
# the same `teacher`, for configs/demo/narrow/ and configs/demo/hetero/.
def _pvt_retinanet(fpn_channels, head_convs):
    """The demo RetinaNet with mmdet's PVTv2-b0 backbone (a transformer;
    strides 4, 8, 16, 32 like the ResNet's, out channels 32, 64, 160, 256):
    same FPN (start_level=1, P3-P7) and head as the ResNet detectors."""
    model = _retinanet(depth=18, base_channels=16,
                       fpn_channels=fpn_channels, head_convs=head_convs)
    model['backbone'] = dict(
        type='PyramidVisionTransformerV2', embed_dims=32,
        num_layers=[2, 2, 2, 2], init_cfg=None)
    model['neck']['in_channels'] = [32, 64, 160, 256]
    return model


# Narrower: the demo student with a 32-channel FPN (half the teacher's 64,
# like RTMDet-s 128 against RTMDet-l 256).
narrow_student = _retinanet(depth=18, base_channels=16, fpn_channels=32,
                            head_convs=2)
# Heterogeneous: a transformer backbone against the ResNet teacher, the same
# 64-channel FPN as the teacher's.
hetero_student = _pvt_retinanet(fpn_channels=64, head_convs=2)
