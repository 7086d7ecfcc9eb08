"""MMEngine's and MMRazor's own tests for what mmkd patches or extends, run
plain and with mmkd imported first; a markdown table of both and the tests
whose outcome differs (docs/upstream_tests.md):

    python tools/analysis/upstream_tests.py \\
        --mmengine-tests /tmp/upstream/mmengine/tests \\
        --mmrazor-tests /tmp/upstream/mmrazor/tests

Each run is this environment's pytest in a subprocess, in the folder above
the given tests/ folder, with tools/analysis/upstream_tests_plugin.py loaded
(``-p``): ``import mmkd`` for the mmkd run; for the plain run nothing, and
mmkd's start-up hook off (``MMKD_CONFIG_SCOPE=0``). MMRazor 1.0.0 does not
import on torch >= 2.1, so its plain run has mmkd's quantization stub and
nothing else of mmkd. No GPU is used (``CUDA_VISIBLE_DEVICES=``). The exit
status is 1 when a test passes plain and fails with mmkd.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = osp.dirname(osp.abspath(__file__))
# The parts mmkd patches or extends (mmkd/compat.py, mmkd/fileio.py,
# mmkd/engine/, mmkd/models/): MMEngine 0.10.7's and MMRazor 1.0.0's paths.
FILES = {
    'mmengine': ['test_fileio', 'test_hooks/test_checkpoint_hook.py',
                 'test_hooks/test_ema_hook.py', 'test_config',
                 'test_runner/test_checkpoint.py', 'test_utils',
                 'test_hub'],
    'mmrazor': ['test_models/test_distillers',
                'test_models/test_architectures/test_connectors',
                'test_models/test_losses',
                'test_models/test_algorithms/test_single_teacher_distill.py'],
}
# What the plain run imports first (upstream_tests_plugin.py's modes).
PLAIN = {'mmengine': 'none', 'mmrazor': 'quantization-stub'}


def run_pytest(tests_dir, files, mode, keyword=None, deps=None):
    """{test id: (outcome, failure text)} of one pytest run."""
    root = osp.dirname(osp.abspath(tests_dir))
    with tempfile.TemporaryDirectory() as tmp:
        report = osp.join(tmp, 'report.xml')
        cmd = [sys.executable, '-P', '-m', 'pytest', '-q', '-p',
               'upstream_tests_plugin', '-p', 'no:cacheprovider',
               '--rootdir', root, '--continue-on-collection-errors',
               f'--junitxml={report}', '-o',
               'junit_family=xunit1'] + files
        if keyword:
            cmd += ['-k', keyword]
        env = dict(os.environ, MMKD_UPSTREAM_IMPORT=mode, OMP_NUM_THREADS='1',
                   CUDA_VISIBLE_DEVICES='',
                   PYTHONPATH=os.pathsep.join(
                       [p for p in [HERE, deps, os.environ.get('PYTHONPATH')]
                        if p]))
        if mode != 'mmkd':
            env['MMKD_CONFIG_SCOPE'] = '0'
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True,
                              text=True)
        if not osp.exists(report):
            raise RuntimeError(f'pytest wrote no report ({" ".join(cmd)}, '
                               f'status {proc.returncode}):\n'
                               f'{proc.stdout[-3000:]}{proc.stderr[-3000:]}')
        leaked = 'mmkd imported at the end: yes' in proc.stdout
        if leaked != (mode == 'mmkd'):
            raise RuntimeError(f'{mode} run: mmkd imported = {leaked}')
        return _outcomes(ET.parse(report).getroot())


def _outcomes(tree):
    found = {}
    for case in tree.iter('testcase'):
        test_id = f'{case.get("classname")}::{case.get("name")}'
        outcome, text = 'passed', ''
        for tag in ('error', 'failure', 'skipped'):
            element = case.find(tag)
            if element is not None:
                outcome = {'error': 'error', 'failure': 'failed'}.get(
                    tag, 'skipped')
                text = element.text or element.get('message', '')
                break
        if found.get(test_id, ('passed',))[0] == 'passed':  # keep the worst
            found[test_id] = (outcome, text)
    return found


def counts(outcomes):
    values = [o for o, _ in outcomes.values()]
    return (values.count('passed'),
            values.count('failed') + values.count('error'),
            values.count('skipped'))


def is_regression(plain, mmkd):
    """Worse with mmkd: a new failure or error (collection errors
    included), or a passing test that no longer runs."""
    failing = ('failed', 'error')
    return (mmkd in failing and plain not in failing) or (
        plain == 'passed' and mmkd == 'absent')


def compare(suite, tests_dir, files, keyword=None, deps=None):
    chosen = [f for f in files if osp.exists(osp.join(tests_dir, f))]
    if not chosen:
        raise SystemExit(f'{suite}: none of {files} under {tests_dir}')
    paths = [osp.join(osp.basename(osp.abspath(tests_dir)), f)
             for f in chosen]
    plain = run_pytest(tests_dir, paths, PLAIN[suite], keyword, deps)
    mmkd = run_pytest(tests_dir, paths, 'mmkd', keyword, deps)
    differ = sorted(t for t in set(plain) | set(mmkd)
                    if plain.get(t, ('absent',))[0] !=
                    mmkd.get(t, ('absent',))[0])
    return chosen, plain, mmkd, differ


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--mmengine-tests', metavar='DIR',
                        help="MMEngine's tests/ (git archive v0.10.7 tests)")
    parser.add_argument('--mmrazor-tests', metavar='DIR',
                        help="MMRazor's tests/ (git archive v1.0.0 tests)")
    parser.add_argument('--deps', metavar='DIR',
                        help="the suites' test-only requirements, put on "
                        'PYTHONPATH (pip install --target DIR parameterized '
                        'lmdb)')
    parser.add_argument('-k', dest='keyword', help="pytest's -k")
    parser.add_argument('--files', nargs='+', metavar='PATH',
                        help='test files or folders relative to tests/ '
                        '(each suite runs those it has) instead of the '
                        'patched parts\' own')
    args = parser.parse_args(argv)
    suites = [(s, d) for s, d in (('mmengine', args.mmengine_tests),
                                  ('mmrazor', args.mmrazor_tests)) if d]
    if not suites:
        parser.error('give --mmengine-tests DIR and/or --mmrazor-tests DIR')
    print('| suite | files | plain passed/failed/skipped | with mmkd '
          'passed/failed/skipped | outcome differs (plain -> with mmkd) |\n'
          '|---|---|---|---|---|')
    regressions = []
    for suite, tests_dir in suites:
        files = args.files or FILES[suite]
        chosen, plain, mmkd, differ = compare(suite, tests_dir, files,
                                              args.keyword, args.deps)
        changes = '<br>'.join(
            f'`{t}`: {plain.get(t, ("absent",))[0]} -> '
            f'{mmkd.get(t, ("absent",))[0]}' for t in differ) or 'none'
        label = suite if PLAIN[suite] == 'none' else \
            f'{suite} (plain: {PLAIN[suite]})'
        print(f'| {label} | {", ".join(chosen)} | '
              f'{"/".join(map(str, counts(plain)))} | '
              f'{"/".join(map(str, counts(mmkd)))} | {changes} |')
        regressions += [(t, mmkd.get(t, ('', 'not run with mmkd'))[1])
                        for t in differ if is_regression(
                            plain.get(t, ('absent',))[0],
                            mmkd.get(t, ('absent',))[0])]
    for test_id, text in regressions:
        print(f'\nREGRESSION {test_id} (passes plain, fails with mmkd):\n'
              f'{text[-3000:]}')
    return 1 if regressions else 0


if __name__ == '__main__':
    sys.exit(main())
