#!/usr/bin/env bash
# The project's test command (what CI runs through .ci/run):
#
#   scripts/test.sh [--no-deps] [-- CARGO_TEST_ARGS...]
#
# 1. scripts/install-test-deps.sh (skipped with --no-deps): tools the tests drive.
# 2. cargo fmt --check
# 3. cargo clippy --all-targets --locked -- -D warnings
# 4. cargo test --locked [CARGO_TEST_ARGS...]
# Steps 2-4 all run even when one fails; the summary lists each with its time, and the
# exit status is non-zero when any step failed. A failed install stops everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

deps=1
test_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-deps) deps=0; shift ;;
    --) shift; test_args=("$@"); break ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

summary=()
failed=0
# step LABEL CMD...: run CMD, record its result and time, keep going.
step() {
  local label="$1"; shift
  local s rc=0
  s=$(date +%s)
  echo "==> $label" >&2
  "$@" || rc=$?
  local t=$(( $(date +%s) - s ))
  if [[ $rc -eq 0 ]]; then
    summary+=("ok     ${t}s  $label")
  else
    summary+=("FAILED ${t}s  $label (exit $rc)")
    failed=1
  fi
  return 0
}

if [[ $deps -eq 1 ]]; then
  step "install test dependencies" bash scripts/install-test-deps.sh
  if [[ $failed -ne 0 ]]; then
    printf '%s\n' "${summary[@]}" >&2
    exit 1
  fi
fi
step "cargo fmt --check" cargo fmt --check
step "cargo clippy" cargo clippy --all-targets --locked -- -D warnings
step "cargo test" cargo test --locked "${test_args[@]}"

echo "==> summary" >&2
printf '%s\n' "${summary[@]}" >&2
exit "$failed"
