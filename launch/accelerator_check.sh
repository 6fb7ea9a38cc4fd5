#!/usr/bin/env bash
# First thing to run on a fresh TPU / GPU VM (after launch/setup_vm.sh tpu|gpu test): does the
# install work, and how fast is it? Writes one JSON report.
#
#   launch/accelerator_check.sh [--dry-run] [OUTDIR]          # default OUTDIR: runs/accelerator_check
#
# 1. the compiled Pallas kernel tests (tests/kernels: TestAdapterMatmul, skipped on CPU);
# 2. the kernel benchmark at the Gemma-2B projection shapes (python -m benchmarks.kernels);
# 3. train-step throughput / MFU of a preset through the real trainer
#    (python -m benchmarks.train_step; PRESET, ADAPTER, BATCH, SEQ_LEN, STEPS override it);
# then benchmarks.accelerator_report merges them into OUTDIR/report.json. A failing stage is
# recorded in the report (its exit code and log) and the others still run.
# PYTHON defaults to the repository's .venv (python3 when there is none). SMALL=1 is a smoke run
# of the script itself on any machine (tiny shapes, interpret-mode kernels: not timings).
set -uo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
if [[ "${1:-}" == --dry-run ]]; then DRY_RUN=1; shift; fi
root=$(repo_root)
out=${1:-${root}/runs/accelerator_check}
py=${PYTHON:-${root}/.venv/bin/python}
if [[ -z "${PYTHON:-}" && ! -x "${py}" ]]; then py=python3; fi
preset=${PRESET:-gemma_2b}
adapter=${ADAPTER:-mode6x4}
batch=${BATCH:-8}
seq_len=${SEQ_LEN:-1024}
steps=${STEPS:-10}
small=()
if [[ "${SMALL:-0}" == 1 ]]; then small=(--small); fi

cd "${root}" || die "cannot cd to ${root}"
run mkdir -p "${out}"

# stage NAME CMD...: run CMD with its output in OUTDIR/NAME.log, its exit code in NAME.rc.
stage() {
  local name=$1
  shift
  if [[ "${DRY_RUN}" == 1 ]]; then
    run "$@"
    return
  fi
  echo "== ${name}"
  run "$@" >"${out}/${name}.log" 2>&1
  echo "$?" >"${out}/${name}.rc"
  tail -n 5 "${out}/${name}.log"
}

stage kernel_tests "${py}" -m pytest -q -p no:cacheprovider -o addopts= \
  "tests/kernels/test_adapter_matmul.py::TestAdapterMatmul" \
  --junitxml="${out}/kernel_tests.xml"
if [[ "${SMALL:-0}" == 1 ]]; then
  stage kernel_bench "${py}" -m benchmarks.kernels --small --interpret --reps=1 \
    --json="${out}/kernel_bench.json"
else
  stage kernel_bench "${py}" -m benchmarks.kernels --json="${out}/kernel_bench.json"
fi
stage train_step "${py}" -m benchmarks.train_step --preset="${preset}" --adapter="${adapter}" \
  --batch="${batch}" --seq_len="${seq_len}" --steps="${steps}" --out="${out}/train_step.json" \
  "${small[@]}"
run "${py}" -m benchmarks.accelerator_report "${out}"
