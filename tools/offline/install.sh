#!/usr/bin/env bash
# On the GPU node, offline: install mmkd's stack from the files that
# tools/offline/fetch.sh put in offline/, into a virtual environment that
# sees the node's own (CUDA) torch (--system-site-packages). Nothing is
# downloaded: pip runs with --no-index --find-links offline/.
#
#   bash tools/offline/install.sh                  # mmcv with CPU ops (default)
#   bash tools/offline/install.sh --ops cuda       # mmcv with CUDA ops (slower)
#   bash tools/offline/install.sh --dry-run        # print what it would run
#
# mmcv 2.1.0 is built from its source: --ops cpu (default) compiles its 77
# C++ files (about 2 min on 16 cores, estimated from 15 min on 2 here); the
# check then uses pure-PyTorch versions of the CUDA kernels it needs (focal
# loss, deformable attention, NMS; docs/gpu.md says why). --ops cuda adds 58
# CUDA files for this node's GPU architecture only (TORCH_CUDA_ARCH_LIST
# from the GPU, or set it): estimated 5-6 min more, and it needs nvcc.
#
# Options: --from DIR (default offline/, or $MMKD_OFFLINE_DIR), --venv DIR (default .venv-gpu/),
# --python PY (the Python that has the node's torch; default python3),
# --ops cpu|cuda, --dry-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
FROM=${MMKD_OFFLINE_DIR:-offline}
VENV=${MMKD_GPU_VENV:-$ROOT/.venv-gpu}
PY=${MMKD_BASE_PYTHON:-python3}
OPS=cpu
DRY=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --from) FROM=$2; shift 2 ;;
    --venv) VENV=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $OPS == cpu || $OPS == cuda ]] || {
  echo "install.sh: --ops $OPS: choose cpu or cuda" >&2; exit 2; }

say() { printf '[mmkd offline install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { say "$*" >&2; exit 2; }
run() {  # print, then run unless --dry-run
  printf '+'; printf ' %q' "$@"; echo
  [[ $DRY == 1 ]] || "$@"
}

[[ -f $FROM/requirements.txt ]] || die "no $FROM/requirements.txt: run
  bash tools/offline/fetch.sh --python-version X.Y
on a connected machine first (X.Y: this node's Python), then copy $FROM/ here"
"$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch: give
  --python PY, the Python that has this node's torch"
node_py=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
fetched_py=$(sed -n 's/^python=//p' "$FROM/FETCHED" 2>/dev/null || true)
[[ -z $fetched_py || $fetched_py == "$node_py" ]] || die "$FROM/ holds wheels
  for Python $fetched_py but $PY is Python $node_py: fetch again with
  bash tools/offline/fetch.sh --python-version $node_py"
mmcv_src=$(ls "$FROM"/mmcv-2.1.0.tar.gz 2>/dev/null || true)

if [[ ! -x $VENV/bin/python ]]; then
  run "$PY" -m venv --system-site-packages "$VENV"
fi
VPY=$VENV/bin/python
# ninja from the fetched wheel lands in the venv's bin/: torch's extension
# builder finds it on PATH (without it the build is serial).
export PATH=$VENV/bin:$PATH
pip_=("$VPY" -m pip install --disable-pip-version-check --no-index
      --find-links "$FROM" --no-deps)

say "installing $(grep -c . "$FROM/requirements.txt") pinned packages from $FROM/ (no index)"
run "${pip_[@]}" -q -r "$FROM/requirements.txt"

# Built already (with CUDA ops when those are asked for)? Then keep it.
have_mmcv="import mmcv, sys; from mmcv.ops import get_compiling_cuda_version as v
sys.exit(mmcv.__version__ != '2.1.0' or ('$OPS' == 'cuda' and v() == 'not available'))"
if [[ $DRY == 0 ]] && "$VPY" -c "$have_mmcv" 2>/dev/null; then
  say "mmcv 2.1.0 with $OPS ops already installed"
else
  [[ -n $mmcv_src || $DRY == 1 ]] || die "no $FROM/mmcv-2.1.0.tar.gz: run fetch.sh again"
  jobs=${MAX_JOBS:-$(nproc)}
  if [[ $OPS == cuda ]]; then
    arch=${TORCH_CUDA_ARCH_LIST:-}
    if [[ -z $arch ]]; then
      # Only this node's GPU architecture: a fraction of the default list.
      arch=$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())' 2>/dev/null || true)
    fi
    [[ -n $arch || $DRY == 1 ]] || die "--ops cuda: torch sees no GPU here;
  set TORCH_CUDA_ARCH_LIST (e.g. 9.0 for H100/H200, 8.0 for A100)"
    build_env=(env FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=${arch:-GPU_ARCH}")
  else
    # mmcv's setup.py builds CUDA ops whenever torch sees a GPU: hide it.
    build_env=(env CUDA_VISIBLE_DEVICES= FORCE_CUDA=0)
  fi
  build_env+=(MMCV_WITH_OPS=1 "MAX_JOBS=$jobs")
  say "building mmcv 2.1.0 from source with $OPS ops ($jobs jobs)"
  run "${build_env[@]}" "${pip_[@]}" --force-reinstall --no-build-isolation \
    "${mmcv_src:-$FROM/mmcv-2.1.0.tar.gz}"
fi

if [[ $DRY == 0 ]] && "$VPY" -c "import importlib.util as u, os, sys; s = u.find_spec('mmkd')
sys.exit(not (s and os.path.realpath(s.origin).startswith(os.path.realpath('$ROOT') + os.sep)))" 2>/dev/null; then
  say "mmkd of this checkout already imports in $VENV"
else
  say "installing mmkd (editable, no dependencies)"
  run "${pip_[@]}" -q --no-build-isolation -e "$ROOT"
fi
if [[ $DRY == 0 ]]; then
  "$VPY" -c 'import mmkd; from mmrazor.models import FpnTeacherDistill' \
    || die "mmkd does not import in $VENV (see above)"
fi
say "done: $VENV (run the check: bash tools/gpu_check.sh)"
