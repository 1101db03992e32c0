#!/usr/bin/env bash
# The GPU checks in one go, on a machine with an NVIDIA GPU: install what is missing, print the
# device, run tests/gpu, then bench/gpu.py. Every step has its own time limit; a failing step is
# reported and the next one still runs. Output goes to the terminal and, when $OUT is set, to
# files in $OUT (install.txt, device.txt, pytest.txt, pytest.xml, bench.txt, summary.txt).
#
#   bash tests/gpu/run_on_device.sh                 # from the repository root
#   OUT=results BENCH_ARGS="--batches 100 --repeats 3" bash tests/gpu/run_on_device.sh
#
# Settings (environment): PYTHON (default .venv/bin/python if present, else python3);
# INSTALL_TIMEOUT, TEST_TIMEOUT, BENCH_TIMEOUT in seconds (300, 300, 300);
# INSTALL=0 to install nothing (installs happen only where nvidia-smi lists a GPU);
# PIP_ARGS (extra pip arguments, e.g. "--find-links wheels/" on a machine without internet);
# TORCH_SPEC (default torch==2.13.0, the tested version; PyPI's Linux wheels are CUDA builds);
# TORCH_INDEX (a PyTorch wheel index, e.g. https://download.pytorch.org/whl/cu126);
# PYTEST_ARGS (e.g. "-x -k op_matches"); BENCH_ARGS (arguments of bench/gpu.py).
set -u
cd "$(dirname "$0")/../.."

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3
fi
INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-300}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-300}
OUT_DIR=${OUT:-}
[ -n "$OUT_DIR" ] && mkdir -p "$OUT_DIR"
SUMMARY=()

# log NAME: tee stdin to $OUT/NAME when $OUT is set
log() { if [ -n "$OUT_DIR" ]; then tee -a "$OUT_DIR/$1"; else cat; fi; }

# step NAME LIMIT COMMAND...: run with a time limit, record its exit status in the summary
step() {
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s): $*" | log "$name.txt"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | log "$name.txt"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - start))
    [ "$rc" = 124 ] && echo "== $name: timed out after ${limit}s" | log "$name.txt"
    SUMMARY+=("$name: exit $rc after ${took}s")
    return "$rc"
}

has() { "$PY" -c "$1" >/dev/null 2>&1; }

# -- install what is missing, only where there is a GPU to use it ---------------------------------
if [ "${INSTALL:-1}" = 0 ]; then
    echo "== install: skipped (INSTALL=0)"
elif ! nvidia-smi -L >/dev/null 2>&1; then
    echo "== install: skipped: no NVIDIA GPU here (nvidia-smi -L fails); nothing is changed"
else
    if ! has "import chainrule, pytest, numpy"; then
        step install "$INSTALL_TIMEOUT" "$PY" -m pip install ${PIP_ARGS:-} -e ".[test]"
    fi
    if ! has "import cupy"; then
        step install "$INSTALL_TIMEOUT" "$PY" -m pip install ${PIP_ARGS:-} -e ".[gpu]"
    fi
    if ! has "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
        step install "$INSTALL_TIMEOUT" "$PY" -m pip install ${PIP_ARGS:-} \
            ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "${TORCH_SPEC:-torch==2.13.0}"
    fi
fi

# -- the device -----------------------------------------------------------------------------------
step device 60 bash -c "
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo 'no nvidia-smi'
'$PY' - <<'PY'
import chainrule as cr
from chainrule import backend
print('chainrule sees CUDA:', cr.cuda_available())
print(backend.describe_device('cuda') if cr.cuda_available()
      else backend.describe_device('cpu') + ' only')
try:
    import torch
    print('PyTorch', torch.__version__, 'CUDA', torch.version.cuda, 'available:',
          torch.cuda.is_available(),
          torch.cuda.get_device_name() if torch.cuda.is_available() else '')
except ImportError as error:
    print('PyTorch missing:', error)
PY"

# -- the tests, then the benchmark ----------------------------------------------------------------
step pytest "$TEST_TIMEOUT" "$PY" -m pytest tests/gpu -q -rs -p no:cacheprovider \
    ${OUT_DIR:+--junitxml "$OUT_DIR/pytest.xml"} ${PYTEST_ARGS:-}
step bench "$BENCH_TIMEOUT" "$PY" bench/gpu.py ${BENCH_ARGS:-}

printf '%s\n' "== summary" "${SUMMARY[@]}" | log summary.txt
for line in "${SUMMARY[@]}"; do
    case $line in *"exit 0 "*) ;; *) exit 1 ;; esac
done
