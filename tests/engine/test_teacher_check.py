"""The teacher check before distillation (mmkd.engine.teacher_check) and the
distillation/task loss ratio in the log (mmkd.engine.loss_ratio)."""
import copy
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmkd.engine import distill_ratio
from mmkd.engine.teacher_check import evaluate_on_batches

NUM_CLASSES = 5  # the built-in data's


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from mmkd_lab.data import ensure_dataset
    return ensure_dataset(str(tmp_path_factory.mktemp('data')),
                          num_train=8, num_val=16, seed=3)


def _val_parts(repo, data, batch_size=4):
    from mmengine.runner import Runner

    import mmkd  # noqa: F401
    cfg = Config.fromfile(repo.student_demo)
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.dataset.data_root = data + '/'
    loader_cfg.batch_size = batch_size
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    evaluator = dict(cfg.val_evaluator,
                     ann_file=osp.join(data, 'annotations',
                                       'instances_val.json'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return Runner.build_dataloader(loader_cfg), Evaluator(evaluator)


class Oracle(torch.nn.Module):
    """Predicts each image's ground truth (in original-image pixels), its
    labels shifted by ``shift`` (a teacher of another class order)."""

    def __init__(self, shift=0):
        super().__init__()
        self.shift = shift
        self.calls = 0

    def test_step(self, data):
        self.calls += 1
        assert not self.training  # evaluated in eval mode
        out = []
        for sample in data['data_samples']:
            gt = sample.gt_instances
            boxes = getattr(gt.bboxes, 'tensor', gt.bboxes)
            sx, sy = sample.metainfo['scale_factor']
            sample.pred_instances = InstanceData(
                bboxes=boxes / torch.tensor([sx, sy, sx, sy]),
                scores=torch.ones(len(boxes)),
                labels=(gt.labels + self.shift) % NUM_CLASSES)
            out.append(sample)
        return out


def test_metrics_cover_only_the_batches_evaluated(repo, data):
    loader, evaluator = _val_parts(repo, data)
    oracle = Oracle().train()
    metrics = evaluate_on_batches(oracle, loader, evaluator, batches=1)
    # One batch of 4 of the 16 images: perfect on those. Scored over the
    # whole file, the 12 unseen images' boxes would count as missed.
    assert oracle.calls == 1 and oracle.training  # mode restored
    assert metrics['coco/bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
    shifted = evaluate_on_batches(Oracle(shift=1), loader, evaluator, 2)
    assert shifted['coco/bbox_mAP'] == pytest.approx(0.0, abs=1e-3)


def test_distill_ratio_is_distillation_over_task_terms():
    log_vars = {'loss': 6.0, 'loss_cls': 1.0, 'loss_bbox': 3.0,
                'distill.loss_fpn0': 0.5, 'distill.loss_fpn1': 1.5,
                'acc': 97.0}
    assert distill_ratio(log_vars) == pytest.approx((0.5 + 1.5) / (1 + 3))
    assert distill_ratio({'loss': 1.0, 'loss_cls': 1.0}) is None
    assert distill_ratio({'distill.loss_fpn0': 1.0, 'loss_cls': 0.0}) is None
    tensors = {k: torch.tensor(v) for k, v in log_vars.items()}
    assert distill_ratio(tensors) == pytest.approx(0.5)


@pytest.mark.slow  # two short runs through tools/train.py (~1 min)
def test_train_tool_stops_on_a_random_teacher_unless_told(
        repo, train_tool, random_teacher_ckpt, data, tmp_path):
    from mmkd_lab.demo import data_options
    opts = data_options(data) + [
        f'model.teacher_ckpt={random_teacher_ckpt}',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=4',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.persistent_workers=False', 'randomness.seed=0']
    stopped = train_tool(repo.vkd_demo, tmp_path / 'stopped', opts)
    assert stopped.returncode == 2, stopped.stderr[-3000:]
    assert 'mmkd error: teacher check: the teacher (model.teacher_ckpt=' \
        f'{random_teacher_ckpt}) reaches coco/bbox_mAP 0.0' in stopped.stderr
    assert '--skip-teacher-check' in stopped.stderr
    assert not osp.exists(tmp_path / 'stopped' / 'iter_2.pth')
    went_on = train_tool(repo.vkd_demo, tmp_path / 'went_on', opts,
                         args=['--skip-teacher-check'])
    out = went_on.stdout + went_on.stderr
    assert went_on.returncode == 0, out[-3000:]
    assert 'teacher check' not in out
    assert osp.exists(tmp_path / 'went_on' / 'iter_2.pth')
    # The distillation/task ratio is in the training log, every iteration.
    ratio_lines = [ln for ln in out.splitlines() if 'distill_ratio: ' in ln]
    assert len(ratio_lines) == 2, out[-3000:]
    # With a low enough bar the check runs, passes and says so.
    passed = train_tool(repo.vkd_demo, tmp_path / 'passed', opts + [
        'teacher_check.min_map=0', 'teacher_check.batches=1'])
    out = passed.stdout + passed.stderr
    assert passed.returncode == 0, out[-3000:]
    assert 'teacher check: coco/bbox_mAP 0.0' in out and \
        'on the first 1 validation batches (about 4 images)' in out
    # An option the check does not have stops before anything is built.
    typo = train_tool(repo.vkd_demo, tmp_path / 'typo', opts + [
        'teacher_check.min_mAP=0'])
    assert typo.returncode == 2
    assert 'mmkd error: teacher_check.min_mAP: not an option' in typo.stderr
    # The check leaves the random generators alone: the same seed gives
    # the same student with the check as without it.
    from mmkd.checkpoint import read_checkpoint
    a, b = (read_checkpoint(str(tmp_path / run / 'iter_2.pth'))['state_dict']
            for run in ('went_on', 'passed'))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


class Blind(Oracle):
    """Detects nothing (no box above the test score threshold)."""

    def test_step(self, data):
        out = super().test_step(data)
        for sample in out:
            sample.pred_instances = sample.pred_instances[:0]
        return out


def test_a_teacher_that_detects_nothing_is_refused(repo, data):
    """CocoMetric gives no metrics at all when nothing was detected: that
    is an mAP of 0, not a check to skip."""
    import logging
    from types import SimpleNamespace

    from mmkd.engine import TeacherCheckError, check_teacher_quality
    loader, evaluator = _val_parts(repo, data)
    cfg = Config(dict(model=dict(teacher_ckpt='t.pth'),
                      val_dataloader=dict(batch_size=4),
                      val_evaluator=dict(type='CocoMetric')))
    runner = SimpleNamespace(
        model=SimpleNamespace(teacher=Blind()), cfg=cfg,
        logger=logging.getLogger('test'),
        val_loop=SimpleNamespace(dataloader=loader),
        build_evaluator=lambda _: evaluator)
    with pytest.raises(TeacherCheckError, match=r'reaches coco/bbox_mAP \(no '
                       r'detections\) 0\.000 on the first 2 validation'):
        check_teacher_quality(runner, batches=2)
    runner.model.teacher = Oracle()
    assert check_teacher_quality(runner, batches=2) == pytest.approx(1.0)


class PartOracle(Oracle):
    """The ground truth on most images; on the images ``wrong`` (ids), the
    labels shifted: a teacher good on some of the data only."""

    def __init__(self, wrong):
        super().__init__()
        self.wrong = set(wrong)

    def test_step(self, data):
        out = super().test_step(data)
        for sample in out:
            if sample.metainfo['img_id'] in self.wrong:
                inst = sample.pred_instances
                inst.labels = (inst.labels + 1) % NUM_CLASSES
        return out


def _check_runner(loader, evaluator, teacher):
    import logging
    from types import SimpleNamespace
    cfg = Config(dict(model=dict(teacher_ckpt='t.pth'),
                      val_dataloader=dict(batch_size=4),
                      val_evaluator=dict(type='CocoMetric')))
    return SimpleNamespace(
        model=SimpleNamespace(teacher=teacher), cfg=cfg,
        logger=logging.getLogger('test'),
        val_loop=SimpleNamespace(dataloader=loader),
        build_evaluator=lambda _: evaluator)


def _rank_main(rank, port, data, wrong, min_map, out):
    """One rank of the two-process check (this file run as a script)."""
    import json

    import torch.distributed as dist

    from mmkd.engine import TeacherCheckError, check_teacher_quality
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    from conftest import REPO
    loader, evaluator = _val_parts(REPO, data)
    teacher = PartOracle(wrong)
    mean_ap = evaluate_on_batches(teacher, loader, evaluator, 1)
    try:
        checked = check_teacher_quality(
            _check_runner(loader, evaluator, teacher), 1, min_map)
    except TeacherCheckError as error:
        checked = str(error)
    with open(out, 'w') as f:
        json.dump(dict(map=mean_ap['coco/bbox_mAP'], checked=checked,
                       images=sorted(s.metainfo['img_id']
                                     for s in next(iter(loader))[
                                         'data_samples'])), f)
    dist.destroy_process_group()


@pytest.mark.slow  # two processes over gloo (~20 s)
def test_ranks_pool_their_batches_and_agree(repo, data, tmp_path):
    """On several GPUs each rank's first batches are a different shard (the
    sampler deals images out in turn). The check pools the ranks' results:
    both ranks get the mAP of one process over the union of their images,
    and take the same decision, where scored alone one shard would pass and
    the other stop."""
    import json
    import socket
    import subprocess
    import sys
    loader, evaluator = _val_parts(repo, data)
    ids = [loader.dataset.get_data_info(i)['img_id'] for i in range(8)]
    wrong = ids[1::2]  # rank 1's first batch: images 1, 3, 5, 7
    union = evaluate_on_batches(PartOracle(wrong), loader, evaluator, 2)
    pooled = union['coco/bbox_mAP']
    assert 0.05 < pooled < 0.95  # neither shard's own value (1 and 0)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    procs = [subprocess.Popen(
        [sys.executable, __file__, str(rank), str(port), data,
         json.dumps(wrong), str(pooled / 2), str(tmp_path / f'{rank}.json')],
        cwd=repo.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=dict(os.environ, OMP_NUM_THREADS='1',
                            CUDA_VISIBLE_DEVICES=''))
        for rank in range(2)]
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]
    ranks = [json.loads((tmp_path / f'{rank}.json').read_text())
             for rank in range(2)]
    assert ranks[0]['images'] == ids[0:8:2] and ranks[1]['images'] == wrong
    for result in ranks:
        assert result['map'] == pytest.approx(pooled, abs=1e-6)
        assert result['checked'] == pytest.approx(pooled, abs=1e-6)


def test_pooled_results_keep_a_padded_image_once(monkeypatch):
    """A sampler that pads its shards gives one image to two ranks: pooled,
    it counts once (results without an image id are all kept)."""
    from mmkd.engine import teacher_check
    parts = [[({'img_id': 1}, {'img_id': 1}), ({'img_id': 2}, {'img_id': 2})],
             [({'img_id': 3}, {'img_id': 3}), ({'img_id': 1}, {'img_id': 1})]]
    monkeypatch.setattr(teacher_check, 'get_world_size', lambda: 2)
    monkeypatch.setattr(teacher_check, 'all_gather_object', lambda _: parts)
    pooled = teacher_check._pooled(parts[0])
    assert [result[1]['img_id'] for result in pooled] == [1, 2, 3]
    parts = [[{'score': 1}], [{'score': 1}]]
    assert teacher_check._pooled(parts[0]) == parts[0] + parts[1]


if __name__ == '__main__':  # one rank of the test above
    import json
    import sys
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    _rank_main(int(sys.argv[1]), sys.argv[2], sys.argv[3],
               json.loads(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
