"""Config names as users write them (mmkd/config_files.py), in mmkd's
tools and in export."""
import os.path as osp

import pytest

from mmkd.config_files import resolve_config
from mmkd.export import ExportError, export_student


def test_paths_and_package_names(repo):
    local = osp.join(repo.configs, 'vkd', 'vkd_retinanet_r50_r18_coco.py')
    assert resolve_config(local) == local
    for name, tail in (
            ('mmkd::vkd/vkd_retinanet_r50_r18_coco.py',
             'configs/vkd/vkd_retinanet_r50_r18_coco.py'),
            ('mmkd::vkd_retinanet_r50_r18_coco.py',
             'configs/vkd_retinanet_r50_r18_coco.py')):
        path = resolve_config(name)
        assert osp.isfile(path) and path.endswith(tail), path
    # The published top-level name is the vkd/ config, not a copy.
    with open(resolve_config('mmkd::vkd_retinanet_r50_r18_coco.py')) as f:
        assert "_base_ = ['./vkd/vkd_retinanet_r50_r18_coco.py']" in f.read()


def test_a_missing_config_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"CONFIG 'mmkd::vkd/nope.py' does not exist "
                       r'\(looked at .*configs/vkd/nope.py\)'):
        resolve_config('mmkd::vkd/nope.py')
    with pytest.raises(ExportError, match=r'mmkd::nope.py.*looked at'):
        export_student('mmkd::nope.py', 'x.pth', str(tmp_path / 'o.pth'))
