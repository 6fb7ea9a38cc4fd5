#!/usr/bin/env bash
# OmegaPRM collection on GSM8K against a served policy (vLLM / SGLang / JetStream, or
# `python -m mode_jax.serve.server --model=...`), any OpenAI-compatible /v1/completions endpoint:
#
#   launch/recipes/omegaprm_served_policy.sh [--dry-run] POLICY_URL MODEL [WORKDIR]
#
# QUESTIONS (default ../shared/data/gsm8k/train.jsonl) is a JSONL of {"question", "answer"}.
# The run resumes where it stopped when started again with the same WORKDIR.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
if [[ "${1:-}" == --dry-run ]]; then DRY_RUN=1; shift; fi
[[ $# -ge 2 ]] || die "usage: $0 [--dry-run] POLICY_URL MODEL [WORKDIR]"
url=$1 model=$2 workdir=${3:-runs/omegaprm_gsm8k}
root=$(repo_root)
run "${root}/.venv/bin/python" -m prm_jax.collect --config="${root}/configs/omegaprm_arith.py" \
    --workdir="${workdir}" --config.questions.source=jsonl \
    --config.questions.path="${QUESTIONS:-../shared/data/gsm8k/train.jsonl}" \
    --config.questions.num=0 --config.questions.grader=gsm8k --config.policy.kind=http \
    --config.policy.url="${url}" --config.policy.model="${model}" \
    --config.policy.max_concurrency="${CONCURRENCY:-32}" --config.concurrency=64
