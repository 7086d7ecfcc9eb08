"""The model zoo: one README and one metafile per method folder of configs/,
every COCO config in exactly one metafile (its references to MMDetection's
zoo matching mmdet's own metafiles), model-index.yml importing every
metafile, and the tables generated from the metafiles (mmkd/zoo.py, run by
tools/zoo.py) current in every page."""
import glob
import os
import os.path as osp
import shutil

import pytest
import yaml
from mmengine.config import Config

from mmkd import zoo

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, 'configs')
COCO_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*', '*_coco.py')))
METHOD_DIRS = sorted({osp.basename(osp.dirname(p)) for p in COCO_CONFIGS})
METAFILES = [f'configs/{d}/metafile.yml' for d in METHOD_DIRS]


def _models():
    """(metafile path, model entry) for every model of every metafile."""
    return [(meta['path'], model) for meta in zoo.load_metafiles(ROOT)
            for model in meta['Models']]


def test_every_method_folder_has_its_readme_and_metafile():
    assert METHOD_DIRS == ['cwd', 'mgd', 'pkd', 'srd', 'student', 'vkd']
    for folder in METHOD_DIRS:
        for name in ('README.md', 'metafile.yml'):
            assert osp.isfile(osp.join(CONFIG_DIR, folder, name)), \
                f'configs/{folder}/{name}'
    # No central metafile beside the per-folder ones.
    assert not osp.exists(osp.join(CONFIG_DIR, 'metafile.yml'))


def test_model_index_imports_every_metafile():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        imported = yaml.safe_load(f)['Import']
    on_disk = sorted(osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(CONFIG_DIR, '**', 'metafile.yml'), recursive=True))
    assert sorted(imported) == on_disk == sorted(METAFILES)


def test_every_coco_config_is_in_exactly_one_metafile():
    listed = [model['Config'] for _, model in _models()]
    # Sorted lists, not sets: a config listed twice fails here too.
    assert sorted(listed) == sorted(
        f'configs/{osp.relpath(p, CONFIG_DIR)}' for p in COCO_CONFIGS)
    for metafile, model in _models():
        # In the metafile of its own folder.
        assert osp.dirname(model['Config']) == osp.dirname(metafile), \
            (metafile, model['Config'])


def test_metafile_entries_match_their_configs_and_mmdet_zoo(mmdet_zoo):
    mmdet = mmdet_zoo
    for metafile, entry in _models():
        config = entry['Config']
        assert entry['Name'] == osp.splitext(osp.basename(config))[0]
        # Nothing has been measured or trained yet.
        assert entry['Results'][0]['Metrics']['box AP'] is None, config
        assert entry['Weights'] is None, config
        cfg = Config.fromfile(osp.join(ROOT, config))
        for role in ('Teacher', 'Student'):
            if role not in entry['Metadata']:
                continue
            ref = entry['Metadata'][role]
            mmdet_cfg = ref['Config'].replace('mmdet::', '')
            assert mmdet[mmdet_cfg] == (ref['Weights'],
                                      ref['Metrics']['box AP']), config
        if 'Teacher' in entry['Metadata']:
            assert entry['Metadata']['Teacher']['Weights'] == \
                cfg.model.teacher_ckpt
        assert entry['Metadata']['Epochs'] == cfg.train_cfg.max_epochs


def test_one_label_per_mmdet_config():
    """The tables' label of a teacher or student (``Name``) is the same in
    every metafile that names its MMDetection config."""
    labels = {}
    for _, entry in _models():
        for role in ('Teacher', 'Student'):
            ref = entry['Metadata'].get(role)
            if ref:
                labels.setdefault(ref['Config'], set()).add(ref['Name'])
    assert labels and all(len(names) == 1 for names in labels.values()), \
        labels


def test_collections_point_at_their_pages():
    for meta in zoo.load_metafiles(ROOT):
        folder = osp.dirname(meta['path'])
        names = [c['Name'] for c in meta['Collections']]
        assert len(names) == 1, meta['path']
        collection = meta['Collections'][0]
        assert collection['README'] == f'{folder}/README.md'
        assert osp.isfile(osp.join(ROOT, collection['README']))
        if folder != 'configs/student':
            assert collection['Paper']['URL'].startswith(
                'https://arxiv.org/abs/')
        for model in meta['Models']:
            assert model['In Collection'] == names[0]


def test_zoo_pages_are_current():
    pages = zoo.expected_pages(ROOT)
    # docs/model_zoo.md is the zoo's one home: README.md only links to it.
    assert set(pages) == {f'configs/{d}/README.md' for d in METHOD_DIRS} | {
        'docs/model_zoo.md'}
    assert zoo.stale_pages(ROOT) == [], \
        'a zoo table differs from the metafiles: run python tools/zoo.py'
    with open(osp.join(ROOT, 'README.md')) as f:
        assert zoo.START not in f.read()


def test_model_zoo_page_lists_every_coco_config():
    with open(osp.join(ROOT, 'docs', 'model_zoo.md')) as f:
        doc = f.read()
    for path in COCO_CONFIGS:
        config = f'configs/{osp.relpath(path, CONFIG_DIR)}'
        # Linked from docs/, to the file and to its method's page.
        assert f'| [`{config}`](../{config}) | [' in doc, path
    method_pages = {f'](../configs/{d}/README.md)' for d in METHOD_DIRS}
    assert all(link in doc for link in method_pages)


@pytest.fixture
def zoo_copy(tmp_path):
    """The metafiles and the pages they generate, copied to tmp_path."""
    for rel in ['model-index.yml', 'docs/model_zoo.md'] + [
            f'configs/{d}/{n}' for d in METHOD_DIRS
            for n in ('README.md', 'metafile.yml')]:
        os.makedirs(osp.dirname(tmp_path / rel), exist_ok=True)
        shutil.copyfile(osp.join(ROOT, rel), tmp_path / rel)
    assert zoo.stale_pages(str(tmp_path)) == []
    return tmp_path


def test_a_table_edited_by_hand_is_stale(zoo_copy):
    page = zoo_copy / 'configs' / 'vkd' / 'README.md'
    text = page.read_text()
    page.write_text(text.replace('| not measured |', '| 41.2 |', 1))
    assert zoo.stale_pages(str(zoo_copy)) == ['configs/vkd/README.md']
    # Regenerating restores the metafile's value.
    assert zoo.write_pages(str(zoo_copy)) == ['configs/vkd/README.md']
    assert page.read_text() == text


def test_a_changed_metafile_makes_its_pages_stale(zoo_copy):
    metafile = zoo_copy / 'configs' / 'srd' / 'metafile.yml'
    metafile.write_text(metafile.read_text().replace(
        'box AP: null  # not measured', 'box AP: 40.1  #', 1))
    # The result appears in the method page and in the zoo page's table.
    assert zoo.stale_pages(str(zoo_copy)) == ['configs/srd/README.md',
                                          'docs/model_zoo.md']
    zoo.write_pages(str(zoo_copy))
    assert zoo.stale_pages(str(zoo_copy)) == []
    page = (zoo_copy / 'docs' / 'model_zoo.md').read_text()
    row = next(line for line in page.splitlines()
               if line.startswith('| [`configs/srd/srd_retinanet_r50_r18'))
    assert row.endswith('| 40.1 |'), row


def test_a_page_without_markers_is_refused(zoo_copy):
    page = zoo_copy / 'configs' / 'cwd' / 'README.md'
    page.write_text(page.read_text().replace(zoo.END, ''))
    with pytest.raises(zoo.ZooError, match='configs/cwd/README.md has 0 zoo '
                       'blocks') as error:
        zoo.stale_pages(str(zoo_copy))
    assert zoo.START in str(error.value) and zoo.END in str(error.value)


def test_an_installed_package_checks_its_method_pages_only(zoo_copy):
    """mmkd/.mim has configs/ and model-index.yml, not docs/:
    ``mmkd zoo --check`` there checks the method pages."""
    shutil.rmtree(zoo_copy / 'docs')
    assert set(zoo.expected_pages(str(zoo_copy))) == {
        f'configs/{d}/README.md' for d in METHOD_DIRS}
    assert zoo.stale_pages(str(zoo_copy)) == []
