#!/usr/bin/env bash
# The one install path of mmkd (README, `make demo`, `make test`, CI).
#
# Creates .venv/ (ignored by git) and installs exactly requirements/lock.txt,
# every package with its version, transitive ones included (tools/lock.py
# writes it): torch 2.13.0 (the CPU build; a CUDA torch already in .venv, or
# in the base Python when MMKD_SYSTEM_TORCH=1, is kept, and the lock's lines
# marked "# torch" with it), mmcv 2.1.0 built with its ops from source
# without build isolation (CUDA ops when CUDA is available, for the GPUs
# present unless TORCH_CUDA_ARCH_LIST says otherwise), the rest, and mmkd in
# editable mode. Packages .venv holds beyond the lock are removed, and .venv
# is checked against the lock at the end. A stamp makes a second run take
# seconds; delete .venv/ to start over.
#
# MMKD_UNLOCKED=1: resolve requirements/runtime.txt and tests.txt afresh
# instead of the lock (for moving a pin; then python tools/lock.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${MMKD_VENV:-$ROOT/.venv}
PY=${MMKD_BASE_PYTHON:-python3}
TORCH_SPEC=${MMKD_TORCH_SPEC:-torch==2.13.0}
MMCV_VERSION=2.1.0
STAMP=$VENV/.mmkd-installed
LOCK=requirements/lock.txt
UNLOCKED=${MMKD_UNLOCKED:-0}

say() { printf '[mmkd install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

want=$(cat requirements/*.txt setup.py tools/install.sh tools/lock.py | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
  exit 0
fi

if [[ ! -x $VENV/bin/python ]]; then
  venv_args=()
  if [[ ${MMKD_SYSTEM_TORCH:-0} == 1 ]]; then
    # Keep the cluster's CUDA torch: see it through the venv.
    venv_args+=(--system-site-packages)
  fi
  say "creating $VENV"
  "$PY" -m venv "${venv_args[@]}" "$VENV"
fi
VPY=$VENV/bin/python
pip_() { "$VPY" -m pip install --disable-pip-version-check "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A CUDA torch in .venv, or the base Python's with MMKD_SYSTEM_TORCH=1, is
# kept; otherwise torch is the lock's.
kept_torch=0
if [[ ${MMKD_SYSTEM_TORCH:-0} == 1 ]] || "$VPY" -c 'import sys, torch; sys.exit(0 if torch.version.cuda else 1)' 2>/dev/null; then
  "$VPY" -c 'import torch' 2>/dev/null || { say "MMKD_SYSTEM_TORCH=1 but $PY has no torch: install your CUDA torch there first"; exit 1; }
  kept_torch=1
  say "keeping installed torch $("$VPY" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)') (the lock's \"# torch\" lines are left out)"
fi
# What this run installs: the lock (without torch's lines when torch is
# kept); the constraints of the steps before the last: the same without
# setuptools, which mmcv's build pins itself (requirements/build.txt).
if [[ $UNLOCKED == 1 ]]; then
  say "MMKD_UNLOCKED=1: resolving requirements/*.txt afresh, not the lock"
  cat requirements/runtime.txt requirements/tests.txt > "$tmp/constraints.txt"
elif [[ $kept_torch == 1 ]]; then
  grep -v '# torch$' "$LOCK" > "$tmp/lock.txt"
else
  cp "$LOCK" "$tmp/lock.txt"
fi
[[ $UNLOCKED == 1 ]] || grep -v '^setuptools==' "$tmp/lock.txt" > "$tmp/constraints.txt"

if [[ $kept_torch == 0 ]]; then
  if [[ $UNLOCKED == 1 ]]; then
    say "installing $TORCH_SPEC"
    pip_ -q "$TORCH_SPEC"
  else
    say "installing torch (the lock's \"# torch\" lines)"
    grep '# torch$' "$LOCK" > "$tmp/torch.txt"
    pip_ -q -r "$tmp/torch.txt"
  fi
fi

if "$VPY" -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '$MMCV_VERSION' else 1)" 2>/dev/null; then
  say "mmcv $MMCV_VERSION with ops already installed"
else
  cuda=$("$VPY" -c 'import torch; print(int(torch.cuda.is_available() and torch.version.cuda is not None))')
  export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
  if [[ $cuda == 1 ]]; then
    export FORCE_CUDA=1
    # Only the architectures of the GPUs this machine has (the default list
    # compiles every one torch supports: several times the build time). Set
    # TORCH_CUDA_ARCH_LIST yourself to build for other nodes' GPUs too.
    if [[ -z ${TORCH_CUDA_ARCH_LIST:-} ]]; then
      TORCH_CUDA_ARCH_LIST=$("$VPY" -c 'import torch; n = torch.cuda.device_count(); print(";".join(sorted({"%d.%d" % torch.cuda.get_device_capability(i) for i in range(n)})))')
      export TORCH_CUDA_ARCH_LIST
    fi
    say "CUDA ops for architectures $TORCH_CUDA_ARCH_LIST"
  fi
  # mmcv 2.1.0's setup.py imports pkg_resources and predates setuptools 70;
  # torch wants setuptools >= 77: build with the old one, restore below.
  # (pip warns about torch's setuptools requirement meanwhile: expected.)
  pip_ -q -c "$tmp/constraints.txt" -r requirements/build.txt wheel ninja numpy 2>&1 | grep -v "setuptools>=77\|dependency resolver\|dependency conflicts" || true
  pip_ -q -c "$tmp/constraints.txt" mmengine opencv-python addict packaging Pillow pyyaml yapf
  say "building mmcv $MMCV_VERSION with ops (CUDA ops: $cuda, $MAX_JOBS jobs): 11-15 min on 2 cores the first time; pip caches the wheel"
  # Progress: ninja prints [done/total] for every compiled file.
  pip_ -v --no-build-isolation -c "$tmp/constraints.txt" "mmcv==$MMCV_VERSION" 2>&1 \
    | grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|Successfully|error:|Error' \
    | sed -u -E 's/^\s*(\[[0-9]+\/[0-9]+\]).*/  mmcv build \1/' || true
  "$VPY" -c 'import mmcv.ops' || { say "mmcv build failed: run '$VPY -m pip install -v --no-build-isolation mmcv==$MMCV_VERSION' to see the compiler error"; exit 1; }
fi

if [[ $UNLOCKED == 1 ]]; then
  say "installing requirements/runtime.txt and tests.txt (resolved afresh)"
  # setuptools 77-80: what torch asks for, still with the pkg_resources that
  # mmengine uses at run time (to find mmdet's configs).
  pip_ -q "setuptools>=77.0.3,<81" -r requirements/runtime.txt -r requirements/tests.txt
else
  say "installing requirements/lock.txt ($(grep -c '==' "$tmp/lock.txt") pinned packages)"
  # The direct requirements beside the lock: a pin moved in
  # requirements/*.txt without `python tools/lock.py` fails here, naming both.
  pip_ -q -r "$tmp/lock.txt" -c requirements/runtime.txt -c requirements/tests.txt
fi
pip_ -q --no-deps --no-build-isolation -e .
"$VPY" -c 'import mmkd; from mmrazor.models import FpnTeacherDistill'
if [[ $UNLOCKED == 0 ]]; then
  torch_flag=()
  [[ $kept_torch == 1 ]] && torch_flag=(--kept-torch)
  extras=$("$VPY" tools/lock.py --extras "${torch_flag[@]}")
  if [[ -n $extras ]]; then
    say "removing what the lock does not hold: $(echo $extras)"
    "$VPY" -m pip uninstall -q -y $extras
  fi
  "$VPY" tools/lock.py --check "${torch_flag[@]}" || {
    say "delete $VENV and run again; if you moved a pin on purpose: MMKD_UNLOCKED=1 bash tools/install.sh, then python tools/lock.py"; exit 1; }
fi
echo "$want" > "$STAMP"
say "done: $VENV"
