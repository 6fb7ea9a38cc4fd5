# Shared by the launch scripts (sourced, not run). `--dry-run` as the first argument of a
# script sets DRY_RUN=1: `run` then prints each command, shell-quoted, instead of running it.
# shellcheck shell=bash

DRY_RUN=${DRY_RUN:-0}

# run CMD [ARGS...]: print "+ CMD ARGS" (quoted so it can be pasted); execute unless dry-run.
run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [[ "${DRY_RUN}" != 1 ]]; then
    "$@"
  fi
}

die() {
  echo "error: $*" >&2
  exit 2
}

# The repository root (the launch/ folder's parent), for scripts run from anywhere.
repo_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}
