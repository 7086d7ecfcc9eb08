"""An annotation file that cannot give a usable dataset stops the run before
anything is built, naming the config key, the file and what is wrong
(mmkd.preflight.annotation_problems)."""
import json

import pytest
from mmengine.config import Config

from mmkd.preflight import PreflightError, annotation_problems, preflight

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
