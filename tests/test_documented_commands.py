"""Every command that README.md and docs/*.md show, run in its cheap form.

The commands are read from the documents themselves (fenced shell blocks,
and inline ``python tools/...``, ``mmkd ...``, ``bash tools/...`` spans), so
a command added to the docs is run here too, and one that a change breaks
fails the suite. The cheap form of each: a COCO command runs until it stops
on the missing COCO data with mmkd's message; training and comparison runs
become a dry run or two iterations; a benchmark a tiny size; ``make`` targets
``make -n``; python snippets are loaded (configs) or executed. Nothing here
reaches the network: sockets are refused in every subprocess
(tests/offline/sitecustomize.py).
"""
import ast
import glob
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# README, docs/ and the method pages (configs/<method>/README.md).
DOCS = ['README.md'] + sorted(
    osp.relpath(p, ROOT) for pattern in ('docs/*.md', 'configs/*/README.md')
    for p in glob.glob(osp.join(ROOT, pattern)))
SHELL_LANGS = ('', 'bash', 'sh', 'shell', 'console')
# Pages run as a whole by a test of their own.
DELEGATED = ('docs/your_own_detector.md', )
INLINE = re.compile(r'`((?:python tools/|mmkd |bash tools/|make )[^`]+)`')
# Shell utilities in the docs' command blocks that are not mmkd's commands.
NOT_OURS = ('cp', 'wait', 'cd', 'mkdir', 'ls', 'cat', 'export')
SHORT_RUN = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2',
             'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0',
             'val_dataloader.persistent_workers=False',
             # Teachers of 2 iterations (or none): the teacher check runs
             # and reports, with no bar to stop at.
             'teacher_check.min_map=0']


def _blocks(text):
    """(language, first line number, body) of each fenced block."""
    for match in re.finditer(r'^```([\w-]*)\n(.*?)^```', text, re.S | re.M):
        yield match.group(1), text[:match.start()].count('\n') + 2, \
            match.group(2)


def _split(line):
    """Shell words, with ``;``, ``&``, ``&&`` and ``|`` as words of their
    own and ``#`` comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _placeholder(command):
    """A syntax line (``mmkd TOOL [ARGS]``, ``tools/train.py CONFIG``), not
    a command to run."""
    return any(re.fullmatch(r'\[?[A-Z_]{3,}\]?', w) and w != 'PARTITION'
               for w in command) or any(w.endswith(':') or w == '...'
                                        for w in command)


def _shell_commands(body):
    """Commands of a shell block: continuations joined, comments, heredocs
    (returned whole), ``&``/``;``/``&&`` separators, ``time`` and leading
    VAR=value assignments handled."""
    lines = body.split('\n')
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith('\\') and i + 1 < len(lines):
            i += 1
            line = line[:-1] + ' ' + lines[i].strip()
        i += 1
        heredoc = re.search(r"<<\s*'?(\w+)'?", line)
        if '$(' in line and not heredoc:
            words = line.split()
            while words and (words[0] == 'time' or '=' in words[0]):
                words.pop(0)
            if words and words[0] not in NOT_OURS:
                yield ('bashline', line, line.split('#')[0].strip())
            continue
        if heredoc:
            end = lines.index(heredoc.group(1), i)
            yield ('heredoc', line, '\n'.join(lines[i:end]))
            i = end + 1
            continue
        try:
            tokens = _split(line)
        except ValueError:  # a python -c snippet across lines
            start = line
            while i < len(lines):
                start += '\n' + lines[i]
                i += 1
                try:
                    tokens = _split(start)
                    break
                except ValueError:
                    continue
            line = start
        command = []
        for token in tokens + [';']:
            if token in ('&', ';', '&&', '|'):
                while command and (command[0] == 'time' or
                                   re.match(r'^\w+=', command[0])):
                    command.pop(0)
                if command and command[0] not in NOT_OURS:
                    if osp.basename(command[0]) == 'python':
                        command[0] = 'python'  # .venv/bin/python: ours
                    yield ('shell', line, command)
                command = []
            else:
                command.append(token)


def documented_commands():
    found = {}
    for doc in DOCS:
        text = open(osp.join(ROOT, doc)).read()
        for lang, lineno, body in _blocks(text):
            if lang in SHELL_LANGS:
                for kind, line, command in _shell_commands(body):
                    if kind == 'shell' and _placeholder(command):
                        continue  # a syntax line, as inline
                    key = command if kind != 'shell' else shlex.join(
                        command)
                    found.setdefault(key, (f'{doc}:{lineno}', kind, command))
            elif lang == 'python':
                found.setdefault(body, (f'{doc}:{lineno}', 'python', body))
        for match in INLINE.finditer(re.sub(r'```.*?```', '', text,
                                            flags=re.S)):
            command = shlex.split(match.group(1))
            if _placeholder(command):
                continue
            found.setdefault(shlex.join(command),
                             (f'{doc} (inline)', 'shell', command))
    return sorted(found.values(), key=lambda v: v[0])


COMMANDS = documented_commands()


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    """The documented commands' environment: this checkout's Python first
    on PATH (as ``python``), no network, no URL reachability check."""
    bin_dir = tmp_path_factory.mktemp('bin')
    # A script, not a link: a link to the venv's python outside the venv
    # would start the base Python.
    python = bin_dir / 'python'
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    mmkd = osp.join(osp.dirname(sys.executable), 'mmkd')
    if osp.exists(mmkd):
        os.symlink(mmkd, bin_dir / 'mmkd')
    # Slurm's srun, recording its arguments instead of launching.
    srun = bin_dir / 'srun'
    srun.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_RECORD"\n')
    srun.chmod(0o755)
    return dict(
        os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}',
        PYTHONPATH=osp.join(ROOT, 'tests', 'offline'),
        MMKD_SKIP_URL_CHECK='1', OMP_NUM_THREADS='1',
        SRUN_RECORD=str(bin_dir / 'srun_args'))


@pytest.fixture(scope='module')
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp('documented')


_RUNS = {}


def run(args, env, timeout=900):
    """Run ``args`` from the checkout; a cheap form that several documented
    commands share runs once."""
    key = tuple(args)
    if key not in _RUNS:
        _RUNS[key] = subprocess.run(args, cwd=ROOT, env=env,
                                    capture_output=True, text=True,
                                    timeout=timeout)
    return _RUNS[key]


def _option(command, name, value):
    """``command`` with option ``name`` set to ``value`` (list of args)."""
    if name in command:
        i = command.index(name)
        j = i + 1
        while j < len(command) and not command[j].startswith('--'):
            j += 1
        return command[:i] + [name] + value + command[j:]
    return command + [name] + value


def _is_coco(command):
    return any(a.endswith('_coco.py') for a in command)


def assert_stops_on_missing_coco(proc):
    err = proc.stdout + proc.stderr
    assert proc.returncode == 2, err[-3000:]
    assert 'mmkd error:' in err and 'data/coco' in err, err[-3000:]


def _cfg_options(args, extra):
    if '--cfg-options' not in args:
        return args + ['--cfg-options'] + extra
    i = args.index('--cfg-options') + 1
    j = i
    while j < len(args) and not args[j].startswith('--'):
        j += 1
    return args[:j] + extra + args[j:]


def check_train_or_test(command, env, shared):
    if _is_coco(command):
        # Until the COCO data: the config loads, the teacher is found, and
        # the run stops naming what is missing.
        assert_stops_on_missing_coco(run(command, env))
        return
    # The built-in data: two iterations, evaluated with COCO mAP.
    assert command[1].endswith('train.py'), command
    data = str(shared / 'data')
    proc = run([sys.executable, '-c', 'from mmkd_lab.data import '
                f'ensure_dataset; ensure_dataset({data!r})'], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from mmkd_lab.demo import data_options
    work = str(shared / 'train' / osp.basename(command[2]))
    cheap = _cfg_options(_option(command, '--work-dir', [work]),
                         data_options(data) + SHORT_RUN)
    proc = run(cheap, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'coco/bbox_mAP' in proc.stdout + proc.stderr


def check_shell(command, env, shared):
    program, args = command[0], command[1:]
    if any('gpu_check' in a or a.startswith('tools/offline/')
           for a in command):
        # The GPU self-check and its offline install: each command the docs
        # show runs as a dry run in tests/test_gpu_check.py (it sets up the
        # stand-in folders those need): make sure it still does.
        text = open(osp.join(ROOT, 'tests', 'test_gpu_check.py')).read()
        assert 'def test_every_documented_gpu_command_runs_as_a_dry_run' \
            in text
        return
    if program == 'make':
        proc = run(['make', '-n'] + args, env)
        assert proc.returncode == 0, proc.stderr
        recipe = {'test': 'pytest', 'quick-test': 'not slow', 'lint': 'ruff',
                  'demo': 'tools/demo.py', 'lock': 'tools/lock.py',
                  'install': 'tools/install.sh'}[args[0]]
        assert recipe in proc.stdout
        # Every target installs first, but the lock's (it writes the lock
        # from what is installed).
        assert ('tools/install.sh' in proc.stdout) == (args[0] != 'lock')
        return
    if program == 'pip':
        # Building and installing the package is tests/test_packaging.py's
        # (a wheel in a fresh environment): make sure it still is.
        text = open(osp.join(ROOT, 'tests', 'test_packaging.py')).read()
        assert "'wheel'" in text and '--no-build-isolation' in text
        return
    if program == 'python' and args[:1] == ['-c']:
        if re.search(r'run_demo|run_comparison', args[1]):
            check_script(args[1], env)  # an experiment of hours
            return
        proc = run(command, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return
    if program == 'mmkd':
        tool, rest = args[0], args[1:]
        if tool in ('list', '-h', '--help'):
            proc = run(command, env)
            assert proc.returncode == 0 and 'train' in proc.stdout
        elif tool == 'demo':  # run in full by tests/test_packaging.py
            proc = run(command + ['--help'], env)
            assert proc.returncode == 0 and '--work-dir' in proc.stdout
        else:
            check_tool(tool, rest, env, shared, command)
        return
    if program == 'bash':
        script, rest = args[0], args[1:]
        if script == 'tools/dist_train.sh':
            # One process instead of the GPUs asked for.
            proc = run(['bash', script, rest[0], '1'] + rest[2:], env)
            # torchrun exits 1 when its process exits 2.
            assert proc.returncode != 0
            assert 'mmkd error:' in proc.stderr and 'data/coco' in \
                proc.stderr, proc.stderr[-3000:]
        elif script == 'tools/slurm_train.sh':
            proc = run(command, env)
            assert proc.returncode == 0, proc.stderr
            srun = open(env['SRUN_RECORD']).read().split('\n')
            assert '-p' in srun and rest[0] in srun
            assert rest[2] in srun and '--launcher=slurm' in srun
            assert osp.join(ROOT, 'tools', 'train.py') in srun
        else:
            raise AssertionError(f'no cheap form for {command}')
        return
    if program == 'python' and args[0].startswith('tools/'):
        # tools/x.py and tools/analysis/x.py by name
        check_tool(osp.splitext(osp.basename(args[0]))[0], args[1:], env,
                   shared, command)
        return
    raise AssertionError(f'no cheap form for {command}')


def check_tool(tool, args, env, shared, command):
    base = [sys.executable, osp.join(ROOT, 'tools', f'{tool}.py')]
    if tool in ('train', 'test'):
        check_train_or_test(base + args, env, shared)
    elif tool == 'benchmark':
        setting = args[args.index('--setting') + 1]
        # DINO's two-stage selection needs more tokens than its 900
        # queries: 256 px for the COCO model (4 scales from stride 8).
        size = {'dino_demo': ['128', '128'], 'dino_swin-l_r50': [
            '256', '256']}.get(setting, ['64', '64'])
        cheap = _option(_option(_option(_option(
            args, '--size', size), '--batch', ['1']), '--warmup', ['0']),
            '--repeats', ['1'])
        if setting == 'dino_swin-l_r50':
            # Each method builds a Swin-L teacher (about 30 s here): one
            # distilled method beside the student and the teacher's pass.
            cheap = _option(cheap, '--methods', ['vkd'])
        proc = run(base + cheap, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.count('\n|') >= 3, proc.stdout  # a table
    elif tool in ('projector_variants', 'profile_step'):
        base = [sys.executable, osp.join(ROOT, 'tools', 'analysis',
                                         f'{tool}.py')]
        cheap = ['64', '--batch', '1'] + (
            ['--warmup', '0', '--repeats', '1']
            if tool == 'projector_variants' else [])
        proc = run(base + cheap, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if tool == 'projector_variants':  # every variant has its row
            for method in ('vkd_linear', 'vkd_mexp', 'srd', 'pkd'):
                assert f'| {method} ' in proc.stdout, proc.stdout
        else:
            assert '| op | vkd ms |' in proc.stdout
    elif tool == 'grad_share':
        # Without the run's checkpoint and the trained teacher (a random
        # one): one batch of the built-in data.
        data = str(shared / 'data')
        proc = run([sys.executable, '-c', 'from mmkd_lab.data import '
                    f'ensure_dataset; ensure_dataset({data!r})'], env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        from mmkd_lab.demo import data_options
        cheap = [a for i, a in enumerate(args) if '--checkpoint' not in (
            a, args[i - 1] if i else '')]
        cheap = _option(cheap, '--batches', ['1'])
        extra = ['model.teacher_ckpt=None'] + data_options(data)
        if '--cfg-options' in cheap:  # the command's own options kept
            i = cheap.index('--cfg-options') + 1
            cheap = cheap[:i] + extra + cheap[i:]
        else:
            cheap = cheap + ['--cfg-options'] + extra
        proc = run([sys.executable, osp.join(ROOT, 'tools', 'analysis',
                                             'grad_share.py')] + cheap, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        for group in ('backbone', 'decoder', 'connectors', 'all'):
            assert f'| {group} |' in proc.stdout, proc.stdout
    elif tool == 'compare':
        work = str(shared / 'compare' /
                   osp.basename(args[args.index('--work-dir') + 1])
                   if '--work-dir' in args else shared / 'compare' / 'default')
        cheap = _option(args, '--work-dir', [work])
        if '--table-only' in cheap:
            os.makedirs(work, exist_ok=True)
        else:
            cheap = cheap + ['--dry-run']
        proc = run(base + cheap, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if '--dry-run' in cheap:
            assert 'seed' in proc.stdout and 'teacher' in proc.stdout
        else:
            assert '| method |' in proc.stdout
    elif tool == 'demo':
        cheap = _option(_option(args, '--work-dir', [str(shared / 'demo')]),
                        '--data-root', [str(shared / 'data')])
        proc = run(base + cheap + ['--cfg-options'] + SHORT_RUN, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        methods = args[args.index('--methods') + 1:] if '--methods' in args \
            else ['student', 'vkd']
        for method in methods:
            assert f'| {method} |' in proc.stdout, proc.stdout[-2000:]
    elif tool == 'lock':  # never rewrites the checkout's lock here
        proc = run(base + ['--check'], env)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        assert 'holds exactly' in proc.stdout
    elif tool in ('make_distill_config', 'config'):
        # Its inputs are the user's own detectors: the whole path runs in
        # tests/test_your_own_detector.py; here the tool answers.
        base = [sys.executable, osp.join(ROOT, 'tools',
                                         'make_distill_config.py')]
        proc = run(base + ['--help'], env)
        assert proc.returncode == 0 and '--teacher-ckpt' in proc.stdout
    elif tool == 'zoo':  # never rewrites the checkout's pages here
        proc = run(base + ['--check'], env)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    elif tool == 'upstream_tests':
        # MMEngine's/MMRazor's sources are downloads: one probe test file
        # instead, which passes plain and fails once mmkd is imported.
        script = osp.join(ROOT, 'tools', 'analysis', 'upstream_tests.py')
        probe = shared / 'upstream' / 'tests'
        probe.mkdir(parents=True, exist_ok=True)
        (probe / 'test_probe.py').write_text(
            "import sys\n\n\ndef test_without_mmkd():\n"
            "    assert 'mmkd' not in sys.modules\n")
        proc = run([sys.executable, script, '--mmengine-tests', str(probe),
                    '--files', 'test_probe.py'], env)
        assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
        assert '| test_probe.py | 1/0/0 | 0/1/0 |' in proc.stdout
        assert 'REGRESSION tests.test_probe::test_without_mmkd' in \
            proc.stdout
    else:
        raise AssertionError(f'no cheap form for {command}')


def check_python(body, env, shared):
    if '...' in body:
        # An illustration with elided parts: it must at least parse.
        ast.parse(body.replace('...', '**{}'))
        return
    named = re.match(r'# (configs/\S+\.py)\n', body)
    if named:
        # "This is configs/x.py": it is, word for word.
        assert open(osp.join(ROOT, named.group(1))).read().strip() == \
            body[named.end():].strip() or _same_config(named.group(1), body)
        return
    if re.search(r'^_base_\s*=|^custom_imports\s*=', body, re.M):
        # A config (or config fragment): load it as MMEngine would.
        path = shared / f'doc_config_{abs(hash(body))}.py'
        path.write_text(body)
        code = ('import mmkd; from mmengine.config import Config; '
                f'Config.fromfile({str(path)!r})')
        proc = run([sys.executable, '-c', code], env)
    else:
        proc = run([sys.executable, '-c', body], env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _same_config(path, body):
    """The file's statements are the snippet's (comments may differ)."""
    ours = ast.dump(ast.parse(open(osp.join(ROOT, path)).read()))
    return ours == ast.dump(ast.parse(body))


def check_script(body, env):
    """A python experiment script (hours to run): it parses, its imports
    work and every ``module.name`` it uses exists."""
    tree = ast.parse(body)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                aliases[name.asname or name.name] = name.name
    code = '\n'.join(ast.unparse(n) for n in tree.body
                     if isinstance(n, (ast.Import, ast.ImportFrom)))
    used = sorted({(node.value.id, node.attr) for node in ast.walk(tree)
                   if isinstance(node, ast.Attribute) and
                   isinstance(node.value, ast.Name) and
                   node.value.id in aliases and not isinstance(
                       node.ctx, ast.Store)})
    code += '\n' + '\n'.join(f'getattr({a}, {n!r})' for a, n in used)
    proc = run([sys.executable, '-c', code], env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_commands_are_found():
    where = {w.split(':')[0].split(' ')[0] for w, _, _ in COMMANDS}
    assert {'README.md', 'docs/benchmarks.md', 'docs/detr.md'} <= where
    assert 'configs/vkd/README.md' in DOCS  # the method pages are read
    shown = {shlex.join(c) for _, k, c in COMMANDS if k == 'shell'}
    for expected in ('make test', 'mmkd list',
                     'python tools/train.py '
                     'configs/vkd_retinanet_r50_r18_coco.py'):
        assert expected in shown, expected


def test_syntax_lines_are_not_run():
    """``tools/train.py CONFIG`` (in a fenced block or inline) shows a
    syntax, not a command; a Slurm partition name is still a command."""
    assert _placeholder(shlex.split('python tools/train.py CONFIG'))
    assert _placeholder(shlex.split('mmkd TOOL [ARGS]'))
    assert not _placeholder(shlex.split(
        'bash tools/slurm_train.sh PARTITION vkd configs/x.py work_dirs/x'))
    assert not any(_placeholder(c) for _, k, c in COMMANDS if k == 'shell')


@pytest.mark.slow
@pytest.mark.parametrize('where, kind, command', COMMANDS,
                         ids=[f'{w}:{str(c)[:60]}' for w, _, c in COMMANDS])
def test_documented_command_runs(where, kind, command, env, shared):
    if where.startswith(DELEGATED):
        # A path whose commands depend on each other (a teacher trained,
        # then its checkpoint used): tests/test_your_own_detector.py runs
        # the page's configs and commands in order. Make sure it still does.
        text = open(osp.join(ROOT, 'tests',
                             'test_your_own_detector.py')).read()
        assert 'def test_the_page_runs_end_to_end' in text
        return
    if kind == 'shell':
        check_shell(command, env, shared)
    elif kind == 'python':
        check_python(command, env, shared)
    elif kind == 'heredoc':
        check_script(command, env)
    else:
        check_bash_line(command, env)


def check_bash_line(line, env):
    """A line with command substitution, run by bash as shown."""
    assert 'mmdet' in line and 'train.py' in line and _is_coco(line.split())
    # MMDetection's own train tool: no mmkd preflight; the dataset names
    # the annotation file it cannot find.
    proc = run(['bash', '-c', line], env)
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'data/coco/annotations/instances_train2017.json' in err, \
        err[-3000:]
