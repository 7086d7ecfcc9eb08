# The built-in data's DINO pair, shaped like mmkd's COCO pair (DINO 5-scale
# Swin-L -> DINO 4-scale R50, ../../../_base_/coco/dino_swin-l_r50.py) and
# sized for a CPU and 128x128 images:
# - teacher: a wider ResNet-18 (32 base channels), 5 scales like the Swin-L
#   teacher: strides 8-32 and two extra levels (64, 128);
# - student: a narrower ResNet-18 (16 base channels), 4 scales like the R50
#   student: strides 8-32 and one extra level (64).
# On COCO the teacher's fifth scale is a finer one (stride 4): on a CPU that
# level alone tripled the teacher's encoder time (1364 instead of 341 tokens
# at 128x128, 1.06 s instead of about 0.3 s per batch of 8), so the demo adds
# the fifth scale at the coarse end. Either way `teacher_levels` pairs the
# scales by stride (../vkd_*_shapes.py).
# Both have 256-dim tokens (as on COCO: square projectors), two
# encoder and three decoder layers, 100 matching queries and denoising
# queries in training, two-stage query selection and box refinement: DINO as
# mmdet builds it. `_scope_='mmdet'` lets MMRazor's distillers build them.
_num_classes = 5
# mmdet's DINO decoder encodes reference points with 128 sine features
# (4 x 128 -> 2 x embed_dims): DINO needs 256-dim tokens.
_embed = 256


def _dino(base_channels, out_indices, num_levels):
    channels = [base_channels * 2**i for i in out_indices]
    return dict(
        _scope_='mmdet',
        type='DINO',
        num_queries=100,
        with_box_refine=True,
        as_two_stage=True,
        num_feature_levels=num_levels,
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=1),
        backbone=dict(
            type='ResNet', depth=18, base_channels=base_channels,
            num_stages=4, out_indices=out_indices, frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False,
            style='pytorch', init_cfg=None),
        neck=dict(
            type='ChannelMapper', in_channels=channels, kernel_size=1,
            out_channels=_embed, act_cfg=None,
            norm_cfg=dict(type='GN', num_groups=8), num_outs=num_levels),
        encoder=dict(
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=_embed, num_heads=8,
                                   num_levels=num_levels, dropout=0.0),
                ffn_cfg=dict(embed_dims=_embed, feedforward_channels=512,
                             ffn_drop=0.0))),
        decoder=dict(
            num_layers=3,
            return_intermediate=True,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=_embed, num_heads=8,
                                   dropout=0.0),
                cross_attn_cfg=dict(embed_dims=_embed, num_heads=8,
                                    num_levels=num_levels, dropout=0.0),
                ffn_cfg=dict(embed_dims=_embed, feedforward_channels=512,
                             ffn_drop=0.0)),
            post_norm_cfg=None),
        positional_encoding=dict(num_feats=_embed // 2, normalize=True,
                                 offset=0.0, temperature=20),
        bbox_head=dict(
            type='DINOHead',
            num_classes=_num_classes,
            embed_dims=_embed,
            sync_cls_avg_factor=True,
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                          alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=5.0),
            loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
        dn_cfg=dict(
            label_noise_scale=0.5, box_noise_scale=1.0,
            group_cfg=dict(dynamic=True, num_groups=None,
                           num_dn_queries=20)),
        train_cfg=dict(
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='FocalLossCost', weight=2.0),
                    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                    dict(type='IoUCost', iou_mode='giou', weight=2.0)
                ])),
        test_cfg=dict(max_per_img=100))


teacher = _dino(base_channels=32, out_indices=(1, 2, 3), num_levels=5)
student = _dino(base_channels=16, out_indices=(1, 2, 3), num_levels=4)
