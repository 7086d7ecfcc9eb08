"""The model zoo's tables, generated from the method metafiles.

Each result is written once, in the ``metafile.yml`` of its method folder
(``configs/<method>/``, imported by ``model-index.yml``). The tables that
show the results are generated between two marker lines::

    <!-- zoo:start ... -->
    (generated table)
    <!-- zoo:end -->

in two kinds of page: each method folder's ``README.md`` (that folder's
results) and ``docs/model_zoo.md``, the zoo's one home (every COCO config,
by teacher -> student pair). ``python tools/zoo.py`` rewrites them;
``--check`` lists the pages that differ from what the metafiles give.

Fields read, besides OpenMMLab's (``Name``, ``In Collection``, ``Config``,
``Results``, ``Weights``): under ``Metadata``, ``Epochs``, ``Location``,
``Teacher`` / ``Student`` (MMDetection's zoo: ``Name`` as the tables show
it, ``Config``, ``Weights``, ``Metrics: box AP``), and the optional
``Notes`` (shown after the method), ``Published anchors`` (other papers'
box AP to compare with) and ``Training Log`` (a URL).
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional

import yaml

START = ('<!-- zoo:start (generated from the metafiles by tools/zoo.py: '
         'edit configs/*/metafile.yml, then run it) -->')
END = '<!-- zoo:end -->'
_BLOCK = re.compile(r'^<!-- zoo:start[^\n]*-->\n.*?^<!-- zoo:end -->$',
                    re.S | re.M)
# The page outside configs/ (absent from an installed package's .mim folder).
ZOO_PAGE = 'docs/model_zoo.md'
NOT_MEASURED = 'not measured'
NONE = '—'
NO_ANCHOR = 'no published KD result for this pair'


class ZooError(ValueError):
    """A metafile or a page that the tables cannot be generated for."""


def load_metafiles(root: str) -> List[dict]:
    """The metafiles that ``root/model-index.yml`` imports, in its order,
    each as loaded plus ``'path'`` (relative to ``root``)."""
    index_path = osp.join(root, 'model-index.yml')
    with open(index_path) as f:
        index = yaml.safe_load(f) or {}
    metafiles = []
    for rel in index.get('Import') or []:
        path = osp.join(root, rel)
        if not osp.isfile(path):
            raise ZooError(f'{index_path} imports {rel}, which does not '
                           'exist: remove the line or add the metafile')
        with open(path) as f:
            meta = yaml.safe_load(f) or {}
        meta['path'] = rel
        metafiles.append(meta)
    return metafiles


def _cell(text) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ')


def _ap(value: Optional[float]) -> str:
    return NOT_MEASURED if value is None else f'{value}'


def _box_ap(model: dict) -> Optional[float]:
    for result in model.get('Results') or []:
        if 'box AP' in (result.get('Metrics') or {}):
            return result['Metrics']['box AP']
    raise ZooError(f"model {model.get('Name')!r} has no Results entry with "
                   "Metrics: box AP (null when not measured)")


def _schedule(model: dict) -> str:
    epochs = (model.get('Metadata') or {}).get('Epochs')
    if not isinstance(epochs, int):
        raise ZooError(f"model {model.get('Name')!r} has no Metadata.Epochs "
                       "(the config's train_cfg.max_epochs)")
    return {12: '1x', 24: '2x', 36: '3x'}.get(epochs, f'{epochs}e')


def _ref(model: dict, role: str) -> Optional[dict]:
    ref = (model.get('Metadata') or {}).get(role)
    if ref is None:
        return None
    for key in ('Name', 'Config', 'Metrics'):
        if key not in ref:
            raise ZooError(f"model {model.get('Name')!r}: Metadata.{role} "
                           f'has no {key!r}; give its MMDetection zoo '
                           'entry (Name, Config, Weights, Metrics: box AP)')
    return ref


def _ref_cell(ref: Optional[dict], link: bool = False) -> str:
    if ref is None:
        return NONE
    name = ref['Name']
    if link and ref.get('Weights'):
        name = f"[{name}]({ref['Weights']})"
    return f"{name} ({_ap(ref['Metrics'].get('box AP'))})"


def _anchors(model: dict) -> str:
    meta = model.get('Metadata') or {}
    if 'Published anchors' not in meta:
        return NONE
    return '; '.join(meta['Published anchors']) or NO_ANCHOR


def _where(info: dict) -> str:
    """What is distilled: ``Location``, then the ``Notes``."""
    return '; '.join(str(info[k]) for k in ('Location', 'Notes')
                     if info.get(k)) or NONE


def _link(text: str, url: Optional[str]) -> str:
    return f'[{text}]({url})' if url else NONE


def _method_readme(meta: dict) -> str:
    return osp.join(osp.dirname(meta['path']), 'README.md')


def _table(header: List[str], rows: List[List[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_cell(c) for c in row) + ' |'
              for row in rows]
    return '\n'.join(lines)


def method_table(meta: dict) -> str:
    """The results table of one method folder's README (links relative to
    the folder)."""
    distilled = any('Teacher' in (m.get('Metadata') or {})
                    for m in meta.get('Models') or [])
    rows = []
    for model in meta.get('Models') or []:
        info = model.get('Metadata') or {}
        config = osp.basename(model['Config'])
        links = [_link('config', config),
                 _link('log', info.get('Training Log')),
                 _link('model', model.get('Weights'))]
        student = _ref_cell(_ref(model, 'Student'), link=True)
        schedule = _schedule(model)
        if distilled:
            rows.append([_ref_cell(_ref(model, 'Teacher'), link=True),
                         student, _where(info), schedule, _ap(_box_ap(model)),
                         _anchors(model)] + links)
        else:
            rows.append([student, schedule, _ap(_box_ap(model))] + links)
    if distilled:
        header = ['teacher (box AP, mmdet zoo)',
                  'student (box AP alone, mmdet zoo)', 'distilled at',
                  'schedule', 'box AP', 'published anchors for comparison',
                  'config', 'log', 'weights']
    else:
        header = ['student (box AP, mmdet zoo)', 'schedule', 'box AP',
                  'config', 'log', 'weights']
    return _table(header, rows)


def _pairs(metafiles: List[dict]) -> 'OrderedDict[str, List[tuple]]':
    """Student's mmdet config -> [(metafile, model)], the pairs in the
    order of the students-alone entries, then of first appearance."""
    pairs = OrderedDict()
    alone = [(meta, m) for meta in metafiles for m in meta.get('Models') or []
             if 'Teacher' not in (m.get('Metadata') or {})]
    for meta, model in alone:
        pairs.setdefault(_ref(model, 'Student')['Config'], [])
    for meta in metafiles:
        for model in meta.get('Models') or []:
            if 'Teacher' in (model.get('Metadata') or {}):
                pairs.setdefault(_ref(model, 'Student')['Config'],
                                 []).append((meta, model))
    for meta, model in alone:
        pairs[_ref(model, 'Student')['Config']].append((meta, model))
    return pairs


def _method_name(meta: dict, model: dict) -> str:
    collections = {c['Name'] for c in meta.get('Collections') or []}
    if model.get('In Collection') not in collections:
        raise ZooError(f"{meta['path']}: model {model.get('Name')!r} is in "
                       f"collection {model.get('In Collection')!r}, which "
                       'the file does not define (it defines '
                       f'{sorted(collections)})')
    return model['In Collection']


def configs_table(metafiles: List[dict]) -> str:
    """docs/model_zoo.md's table: every config, by pair, with the result
    of ours and the published anchors of each (links from docs/)."""
    rows = []
    for entries in _pairs(metafiles).values():
        for meta, model in entries:
            info = model['Metadata']
            method = (f'[{_method_name(meta, model)}]'
                      f'(../{_method_readme(meta)})')
            if info.get('Notes'):
                method += f' ({_where(info)})'
            rows.append([f"[`{model['Config']}`](../{model['Config']})",
                         method, _ref_cell(_ref(model, 'Teacher')),
                         _ref_cell(_ref(model, 'Student')),
                         _schedule(model), _anchors(model),
                         _ap(_box_ap(model))])
    return _table(['config', 'method', 'teacher (box AP, mmdet zoo)',
                   'student alone (box AP, mmdet zoo)', 'schedule',
                   'published anchors for comparison', 'our box AP'], rows)


def expected_pages(root: str) -> Dict[str, str]:
    """Page (relative to ``root``) -> its generated table, for every
    method folder's README and for docs/model_zoo.md where ``root`` has
    it."""
    metafiles = load_metafiles(root)
    pages = OrderedDict()
    for meta in metafiles:
        pages[_method_readme(meta)] = method_table(meta)
    if osp.isfile(osp.join(root, ZOO_PAGE)):
        pages[ZOO_PAGE] = configs_table(metafiles)
    return pages


def render(text: str, table: str, page: str = 'page') -> str:
    """``text`` with the block between the zoo markers replaced by
    ``table``."""
    blocks = _BLOCK.findall(text)
    if len(blocks) != 1:
        raise ZooError(
            f'{page} has {len(blocks)} zoo blocks, needs exactly one: put '
            f'the lines {START!r} and {END!r} where the table goes')
    return _BLOCK.sub(lambda _: f'{START}\n{table}\n{END}', text)


def stale_pages(root: str) -> List[str]:
    """Pages whose generated table differs from what the metafiles give
    (a missing page counts as stale)."""
    stale = []
    for page, table in expected_pages(root).items():
        path = osp.join(root, page)
        if not osp.isfile(path):
            stale.append(page)
            continue
        with open(path) as f:
            text = f.read()
        if render(text, table, page) != text:
            stale.append(page)
    return stale


def write_pages(root: str) -> List[str]:
    """Rewrite the generated tables; returns the pages that changed."""
    changed = []
    for page, table in expected_pages(root).items():
        path = osp.join(root, page)
        if not osp.isfile(path):
            raise ZooError(f'{page} does not exist: write the page (the '
                           f'paper, usage, citation) with the lines {START!r}'
                           f' and {END!r} where the table goes')
        with open(path) as f:
            text = f.read()
        new = render(text, table, page)
        if new != text:
            with open(path, 'w') as f:
                f.write(new)
            changed.append(page)
    return changed
