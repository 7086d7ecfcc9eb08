#!/usr/bin/env bash
# The GPU self-check in one command, on a connected or an air-gapped CUDA
# machine (docs/gpu.md):
#
#   bash tools/gpu_check.sh             # install from offline/ if needed, check
#   bash tools/gpu_check.sh --dry-run   # print what it would run
#
# Which Python: .venv-gpu/ when it has mmkd; else, when offline/ holds the
# files of tools/offline/fetch.sh, tools/offline/install.sh makes .venv-gpu/
# first (timed, in the report); else .venv/ (`make install`); else python3
# (the report then says what is missing). Own options: --from DIR (the
# fetched files, default offline/), --ops cpu|cuda (mmcv's ops, see
# install.sh), --dry-run; every other option goes to tools/gpu_check.py
# (--steps, --budget, --work-dir, --out).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MMKD_GPU_VENV:-$PWD/.venv-gpu}
FROM=${MMKD_OFFLINE_DIR:-offline}
OPS=cpu
DRY=0
check_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --from) FROM=$2; shift 2 ;;
    --ops) OPS=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) check_args+=("$1"); shift ;;
  esac
done
say() { printf '[mmkd gpu_check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
has_mmkd() { [[ -x $1 ]] && "$1" -c 'import mmkd' 2>/dev/null; }

install_note=
if has_mmkd "$VENV/bin/python"; then
  PY=$VENV/bin/python
elif [[ -f $FROM/requirements.txt ]]; then
  dry=(); [[ $DRY == 1 ]] && dry=(--dry-run)
  say "installing from $FROM/ into $VENV (mmcv ops: $OPS)"
  start=$SECONDS
  if MMKD_GPU_VENV=$VENV bash tools/offline/install.sh --from "$FROM" \
      --ops "$OPS" ${dry[@]+"${dry[@]}"}; then
    install_note="tools/offline/install.sh --ops $OPS from $FROM/, $((SECONDS - start)) s, passed"
  else
    install_note="tools/offline/install.sh --ops $OPS from $FROM/, $((SECONDS - start)) s, FAILED (its output is above the check's)"
  fi
  PY=$VENV/bin/python
  [[ -x $PY ]] || PY=python3
elif has_mmkd .venv/bin/python; then
  PY=.venv/bin/python
else
  PY=python3
fi
say "checking with $PY"
dry=(); [[ $DRY == 1 ]] && dry=(--dry-run)
MMKD_GPU_CHECK_INSTALL=$install_note \
  exec "$PY" tools/gpu_check.py ${check_args[@]+"${check_args[@]}"} \
  ${dry[@]+"${dry[@]}"}
