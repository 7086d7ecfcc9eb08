"""The model zoo: the metafiles name every COCO config, their references to
MMDetection's zoo match mmdet's own metafiles, and the zoo tables list every
COCO config."""
import os.path as osp

import yaml

from test_configs import (CONFIG_DIR, COCO_CONFIGS, ROOT, _load, _name,
                          mmdet_zoo)


def test_metafile_lists_every_coco_config():
    with open(osp.join(CONFIG_DIR, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    collections = {c['Name'] for c in meta['Collections']}
    models = {m['Config']: m for m in meta['Models']}
    assert set(models) == {f'configs/{_name(p)}' for p in COCO_CONFIGS}
    zoo = mmdet_zoo()
    for config, entry in models.items():
        assert entry['In Collection'] in collections
        assert entry['Name'] == osp.splitext(osp.basename(config))[0]
        # Nothing has been measured or trained yet.
        assert entry['Results'][0]['Metrics']['box AP'] is None
        assert entry['Weights'] is None
        cfg = _load(osp.join(ROOT, config))
        for role in ('Teacher', 'Student'):
            if role not in entry['Metadata']:
                continue
            ref = entry['Metadata'][role]
            mmdet_cfg = ref['Config'].replace('mmdet::', '')
            assert zoo[mmdet_cfg] == (ref['Weights'],
                                      ref['Metrics']['box AP']), config
        if 'Teacher' in entry['Metadata']:
            assert entry['Metadata']['Teacher']['Weights'] == \
                cfg.model.teacher_ckpt
        assert entry['Metadata']['Epochs'] == cfg.train_cfg.max_epochs


def test_readme_model_zoo_lists_every_coco_config():
    with open(osp.join(ROOT, 'README.md')) as f:
        doc = f.read()
    for path in COCO_CONFIGS:
        assert f'| `configs/{_name(path)}` |' in doc, path


def test_metafile_and_model_index_point_at_files_that_exist():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import'] == ['configs/metafile.yml']
    with open(osp.join(CONFIG_DIR, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    paths = [c['README'] for c in meta['Collections']]
    paths += [m['Config'] for m in meta['Models']]
    for path in paths:
        assert osp.isfile(osp.join(ROOT, path)), path
