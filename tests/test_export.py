"""Student export (mmkd/export.py, tools/export_student.py): what plain
MMDetection loads gives the distilled student's detections."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmkd.checkpoint import CheckpointError, read_checkpoint
from mmkd.engine.teacher_checkpoint import DropFrozenTeacherHook
from mmkd.export import ExportError, export_student
from mmkd_lab.data import CLASS_NAMES, make_det_batch, render_image

STEPS = 3


@pytest.fixture(scope='module')
def distil(repo, total_loss):
    """``distil(steps=STEPS)``: the demo VkD distiller after a few SGD
    steps (random teacher)."""

    def run(steps: int = STEPS):
        from mmrazor.registry import MODELS
        model_cfg = copy.deepcopy(Config.fromfile(repo.vkd_demo).model)
        model_cfg.teacher_ckpt = None
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('mmrazor'):
            algo = MODELS.build(model_cfg)
        algo.init_weights()  # as the Runner does (RetinaNet's prior cls bias)
        algo.train()
        params = [p for p in algo.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        data = algo.data_preprocessor(make_det_batch(2, (128, 128)), True)
        for _ in range(steps):
            optimizer.zero_grad()
            total_loss(algo(**data, mode='loss')).backward()
            optimizer.step()
        algo.eval()  # MMRazor's train(mode) returns None, not the module
        return algo

    return run


def save_like_mmengine(algo, path):
    torch.save({'meta': dict(iter=STEPS,
                             dataset_meta=dict(classes=CLASS_NAMES)),
                'state_dict': algo.state_dict()}, path)


@pytest.fixture(scope='module')
def distilled(tmp_path_factory, distil, repo):
    tmp = tmp_path_factory.mktemp('export')
    algo = distil()
    source = str(tmp / 'iter_3.pth')
    save_like_mmengine(algo, source)
    out, out_cfg = export_student(repo.vkd_demo, source,
                                  str(tmp / 'student.pth'))
    return algo, source, out, out_cfg


def test_export_holds_the_student_only(distilled, repo):
    algo, _, out, out_cfg = distilled
    assert out_cfg == out[:-len('.pth')] + '.py' and osp.isfile(out_cfg)
    exported = read_checkpoint(out)
    state = exported['state_dict']
    for part in ('teacher.', 'distiller.', 'connectors', 'architecture.'):
        assert not any(part in k for k in state), part
    student = algo.architecture.state_dict()
    assert state.keys() == student.keys()
    for key, value in student.items():
        assert torch.equal(state[key], value), key
    assert exported['meta']['dataset_meta']['classes'] == CLASS_NAMES
    assert exported['meta']['mmkd_export']['dropped_keys']['teacher'] > 0
    cfg = Config.fromfile(out_cfg)
    assert cfg.model.type == 'RetinaNet' and cfg.default_scope == 'mmdet'
    assert not any(k in cfg for k in ('teacher', 'teacher_ckpt', 'student'))
    assert cfg.test_dataloader == Config.fromfile(
        repo.vkd_demo).test_dataloader


def test_mmdet_init_detector_gives_the_same_detections(distilled):
    from mmdet.apis import inference_detector, init_detector
    algo, _, out, out_cfg = distilled
    exported = init_detector(out_cfg, out, device='cpu')
    assert exported.dataset_meta['classes'] == CLASS_NAMES
    student = algo.architecture
    student.cfg = Config.fromfile(out_cfg)
    img = np.ascontiguousarray(np.asarray(render_image(7, 128)[0])[:, :, ::-1])
    results = []
    for model in (student, exported):
        # Keep every box: after a few steps no score passes 0.05.
        model.bbox_head.test_cfg['score_thr'] = 0.0
        results.append(inference_detector(model, img).pred_instances)
    ours, theirs = results
    assert len(ours) > 0
    torch.testing.assert_close(theirs.bboxes, ours.bboxes)
    torch.testing.assert_close(theirs.scores, ours.scores)
    assert torch.equal(theirs.labels, ours.labels)


def test_export_of_a_checkpoint_saved_without_its_teacher(
        tmp_path, distil, repo, load_tool):
    VKD = repo.vkd_demo
    algo = distil(steps=1)
    checkpoint = {'meta': {}, 'state_dict': algo.state_dict()}
    runner = type('R', (), dict(model=algo, cfg=Config()))()
    DropFrozenTeacherHook().before_save_checkpoint(runner, checkpoint)
    source = str(tmp_path / 'slim.pth')
    torch.save(checkpoint, source)
    tool = load_tool('export_student')
    tool.main([VKD, source, str(tmp_path / 'student.pth')])
    exported = read_checkpoint(str(tmp_path / 'student.pth'))
    assert exported['state_dict'].keys() == \
        algo.architecture.state_dict().keys()
    # No dataset_meta in the source: the config's class names are used.
    assert tuple(exported['meta']['dataset_meta']['classes']) == CLASS_NAMES


def test_errors_name_the_file_and_the_fix(distilled, tmp_path, repo):
    VKD, STUDENT = repo.vkd_demo, repo.student_demo
    algo, source, out, _ = distilled
    with pytest.raises(ExportError,
                       match=rf"CONFIG '{STUDENT}'.*not a distiller.*as they"):
        export_student(STUDENT, source, str(tmp_path / 'a.pth'))
    with pytest.raises(ExportError,
                       match=rf"CHECKPOINT '{out}' has no 'architecture\.' "
                       r'keys.*not a distiller checkpoint'):
        export_student(VKD, out, str(tmp_path / 'b.pth'))
    state = algo.state_dict()
    del state['architecture.bbox_head.retina_cls.weight']
    partial = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': state}, partial)
    with pytest.raises(ExportError,
                       match=rf"CHECKPOINT '{partial}'.*1 missing keys: "
                       r'bbox_head.retina_cls.weight.*config the checkpoint'):
        export_student(VKD, partial, str(tmp_path / 'c.pth'))
    with pytest.raises(CheckpointError, match='no such file'):
        export_student(VKD, str(tmp_path / 'nope.pth'),
                       str(tmp_path / 'd.pth'))
    with pytest.raises(ExportError, match=r'\.pth'):
        export_student(VKD, source, str(tmp_path / 'student.py'))
    assert not any(osp.exists(tmp_path / f'{n}.pth') for n in 'abcd')


def test_payload_checkpoint_is_refused_and_does_not_run(
        tmp_path, distil, repo, load_tool, payload):
    VKD = repo.vkd_demo
    marker = tmp_path / 'PWNED'
    algo = distil(steps=0)
    evil = str(tmp_path / 'evil.pth')
    torch.save({'meta': payload(str(marker)),
                'state_dict': algo.state_dict()}, evil)
    out = str(tmp_path / 'student.pth')
    with pytest.raises(CheckpointError, match='Payload|open'):
        export_student(VKD, evil, out)
    with pytest.raises(CheckpointError, match='Payload|open'):
        load_tool('export_student').main([VKD, evil, out])
    assert not marker.exists()
    assert not osp.exists(out) and not osp.exists(out[:-4] + '.py')
