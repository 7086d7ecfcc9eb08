"""An annotation file that cannot give a usable dataset, or a detector whose
head has another number of classes than the data, stops the run before
anything is built, naming the config key, the file and what is wrong
(mmkd.preflight.annotation_problems)."""
import copy
import json

import pytest
from mmengine.config import Config

from mmkd.preflight import (
    PreflightError,
    annotation_problems,
    class_count_problems,
    class_order_problems,
    head_class_counts,
    preflight,
)

CLASSES = ('disc', 'triangle', 'cross')


def _coco(images=1, boxes=1, names=CLASSES):
    return dict(
        images=[dict(id=i + 1, file_name=f'{i}.png', width=64, height=64)
                for i in range(images)],
        annotations=[dict(id=i + 1, image_id=1, category_id=1,
                          bbox=[1, 1, 8, 8], area=64, iscrowd=0)
                     for i in range(boxes)],
        categories=[dict(id=7 + i, name=n) for i, n in enumerate(names)])


@pytest.fixture
def cfg(repo, tmp_path):
    """The demo student's config on files of tmp_path (good ones)."""
    (tmp_path / 'imgs').mkdir()
    for split in ('train', 'val'):
        (tmp_path / f'{split}.json').write_text(json.dumps(_coco()))
    cfg = Config.fromfile(repo.student_demo)
    for loader, split in (('train_dataloader', 'train'),
                          ('val_dataloader', 'val')):
        ds = cfg[loader].dataset
        ds.data_root = str(tmp_path) + '/'
        ds.ann_file = f'{split}.json'
        ds.data_prefix = dict(img='imgs/')
        ds.metainfo = dict(classes=CLASSES)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = str(tmp_path / 'val.json')
    cfg.test_evaluator = cfg.val_evaluator
    return cfg


def test_good_files_have_no_problems(cfg):
    assert annotation_problems(cfg) == []


@pytest.mark.parametrize('content, problem', [
    ('', 'is empty (0 bytes)'),
    ('{"images": [', 'is not JSON'),
    (json.dumps(_coco(images=0)), 'holds no images'),
    (json.dumps(_coco(boxes=0)), 'holds no annotations (boxes): nothing to '
     'train on'),
])
def test_an_unusable_train_file_stops_naming_key_and_file(
        cfg, tmp_path, content, problem):
    path = tmp_path / 'train.json'
    path.write_text(content)
    with pytest.raises(PreflightError) as info:
        preflight(cfg, train=True)
    message = str(info.value)
    assert f'train_dataloader.dataset.ann_file: {path} {problem}' in message
    assert 'val_dataloader' not in message  # the good file is not named


def test_a_validation_file_without_boxes_is_fine(cfg, tmp_path):
    (tmp_path / 'val.json').write_text(json.dumps(_coco(boxes=0)))
    assert annotation_problems(cfg) == []


def test_classes_that_are_not_categories_of_the_file(cfg, tmp_path):
    (tmp_path / 'train.json').write_text(json.dumps(
        _coco(names=('disc', 'square', 'cross'))))
    problems = annotation_problems(cfg)
    assert len(problems) == 1
    assert problems[0].startswith(
        'train_dataloader.dataset.metainfo.classes: 1 of the 3 classes '
        "(metainfo.classes) are not categories of ")
    assert "e.g. ['triangle']" in problems[0]
    assert "its categories: ['disc', 'square', 'cross']" in problems[0]


def test_no_metainfo_means_the_dataset_default_classes(cfg):
    """CocoDataset without metainfo has COCO's 80 classes: a 3-class file
    would lose every image."""
    del cfg.train_dataloader.dataset['metainfo']
    problems = annotation_problems(cfg, ('train_dataloader', ))
    assert len(problems) == 1
    assert '80 of the 80 classes (the default classes of CocoDataset)' in \
        problems[0]
    assert 'Set train_dataloader.dataset.metainfo=dict(classes=(...))' in \
        problems[0]


# --- the detector's classes against the dataset's ---------------------------
def test_a_head_with_another_class_count_is_refused(cfg):
    """The demo student has 5 classes; the data here 3."""
    with pytest.raises(PreflightError) as info:
        preflight(cfg, train=True)
    assert ('model.bbox_head.num_classes=5, but the training data has 3 '
            "classes (train_dataloader.dataset.metainfo.classes=('disc', "
            "'triangle', 'cross')): set model.bbox_head.num_classes=3") in \
        str(info.value)
    cfg.model.bbox_head.num_classes = 3
    assert class_count_problems(cfg) == []


def test_every_dataset_has_the_training_classes_in_their_order(cfg):
    """Validation classes in another order would score each box under
    another class's name (the file check cannot see it: both orders are
    the file's categories); a ConcatDataset's parts are each compared."""
    assert class_order_problems(cfg) == []
    swapped = ('disc', 'cross', 'triangle')
    cfg.val_dataloader.dataset.metainfo = dict(classes=swapped)
    with pytest.raises(PreflightError) as info:
        preflight(cfg, train=True)
    assert ('the datasets do not have the same classes:\n  '
            "val_dataloader.dataset.metainfo.classes: label 1 is 'cross' "
            "there and 'triangle' in train_dataloader.dataset.metainfo."
            'classes: give the datasets the same metainfo=dict(classes='
            '(...)), in the same order') in str(info.value)
    # Training without validation (no val_cfg) does not look at it: what
    # stops it is the demo head's 5 classes against the data's 3.
    val_cfg, cfg.val_cfg = cfg.val_cfg, None
    with pytest.raises(PreflightError, match='does not fit the dataset'):
        preflight(cfg, train=True)
    cfg.val_cfg = val_cfg
    # More or fewer classes, the shared ones in the same places: the
    # labels mean the same classes (tracking and open-set configs do so).
    cfg.val_dataloader.dataset.metainfo = dict(classes=CLASSES + ('star', ))
    assert class_order_problems(cfg) == []
    cfg.val_dataloader.dataset.metainfo = dict(classes=CLASSES[:2])
    assert class_order_problems(cfg) == []
    # The parts of a ConcatDataset, unless it lets their classes differ.
    part = dict(cfg.train_dataloader.dataset)
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[
        part, dict(part, metainfo=dict(classes=swapped))])
    assert class_order_problems(cfg) == [
        "train_dataloader.dataset.datasets.1.metainfo.classes: label 1 is "
        "'cross' there and 'triangle' in train_dataloader.dataset.datasets.0"
        '.metainfo.classes: give the datasets the same metainfo=dict(classes='
        '(...)), in the same order']
    cfg.train_dataloader.dataset.ignore_keys = ['classes']
    assert class_order_problems(cfg) == []
    # Text-prompted data (GLIP, Grounding DINO: return_classes=True): each
    # dataset's labels index its own class names.
    cfg.train_dataloader.dataset = part
    cfg.val_dataloader.dataset.metainfo = dict(classes=swapped)
    assert len(class_order_problems(cfg)) == 1
    cfg.val_dataloader.dataset.return_classes = True
    assert class_order_problems(cfg) == []
    cfg.val_dataloader.dataset.return_classes = False
    cfg.val_dataloader.dataset.metainfo = dict(classes=CLASSES[:2])
    # A test loader left at a base's defaults (COCO's 80 classes, as
    # mmdet's coco_detection.py leaves it) is not a training run's concern.
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    del cfg.test_dataloader.dataset['metainfo']
    assert class_order_problems(cfg) == []
    # No metainfo: the dataset type's default classes (CocoDataset's 80).
    del cfg.val_dataloader.dataset['metainfo']
    assert class_order_problems(cfg)[0].startswith(
        "val_dataloader.dataset (no metainfo.classes: CocoDataset's default "
        "METAINFO): label 0 is 'person' there and 'disc' in")


def test_a_distillers_student_and_teacher_are_both_checked(repo):
    cfg = Config.fromfile(repo.vkd_demo)
    assert class_count_problems(cfg) == []
    teacher = cfg.model.teacher
    # The demo teacher is a model config; a referenced one is resolved.
    cfg.model.teacher = dict(cfg_path='mmkd::demo/retinanet_teacher_shapes.py',
                             pretrained=False,
                             bbox_head=dict(num_classes=4))
    problems = class_count_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith(
        'model.teacher.bbox_head.num_classes=4, but the training data has 5')
    cfg.model.teacher = teacher
    cfg.model.architecture.bbox_head.num_classes = 6
    assert [p.split(',')[0] for p in class_count_problems(cfg)] == [
        'model.architecture.bbox_head.num_classes=6']


def test_two_stage_heads_and_coco_defaults():
    assert head_class_counts(dict(rpn_head=dict(num_classes=1), roi_head=dict(
        bbox_head=dict(num_classes=80)))) == [
            ('model.roi_head.bbox_head.num_classes', 80)]
    cfg = Config.fromfile('mmkd::vkd/vkd_faster-rcnn_r101_r50_2x_coco.py')
    assert class_count_problems(cfg) == []  # 80 heads, COCO's 80 classes
    cfg.model.architecture.roi_head.bbox_head.num_classes = 3
    assert class_count_problems(cfg)[0].startswith(
        'model.architecture.roi_head.bbox_head.num_classes=3, but the '
        'training data has 80 classes')
