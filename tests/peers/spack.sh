#!/usr/bin/env bash
# The real Spack the Spack tests drive (tests/it/spack.rs), set up once by
# scripts/install-test-deps.sh; this script only checks it and prints its environment.
#
#   spack.sh env   [--dir DIR]   check the setup, print its env file on stdout
#   spack.sh check [--dir DIR]   exit 0 when DIR holds a usable Spack, else 1 with the reason
#   spack.sh dir                 print the default DIR
#
# DIR (default $PEERS_HOME/stackci-spack) holds spack/ (Spack at PIN_SPACK_VERSION, see
# versions.sh), user-config/ (the compilers `spack compiler find` recorded), user-cache/, and
# `source`: where Spack came from (snapshot, git or trimmed). Usable means: bin/spack prints the
# pinned version, clingo is importable by python3, a compiler is recorded.
# The env file sets SPACK_ROOT, SPACK_USER_CONFIG_PATH, SPACK_USER_CACHE_PATH (so nothing in
# ~/.spack is read or written) and STACKCI_TEST_SPACK_SOURCE.
set -euo pipefail
PEER_NAME=spack
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_lib.sh
source "$here/_lib.sh"

cmd="${1:-}"; [[ $# -gt 0 ]] && shift
dir="$PEERS_HOME/stackci-spack"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    *) die "unknown argument: $1" ;;
  esac
done

# problem: why DIR is not usable (empty when it is).
problem() {
  if [[ ! -x "$dir/spack/bin/spack" ]]; then
    echo "no Spack in $dir/spack"; return
  fi
  local have
  have=$(SPACK_USER_CONFIG_PATH="$dir/user-config" SPACK_USER_CACHE_PATH="$dir/user-cache" \
    "$dir/spack/bin/spack" --version 2>&1 | head -1 | cut -d' ' -f1) || true
  if [[ "$have" != "$PIN_SPACK_VERSION" ]]; then
    echo "$dir/spack is Spack ${have:-unknown}, tests need $PIN_SPACK_VERSION"; return
  fi
  if ! python3 -c 'import clingo' 2>/dev/null; then
    echo "clingo is not importable by python3 (Spack's concretizer)"; return
  fi
  if [[ "$(pip_version clingo)" != "$(pip_pin clingo)" ]]; then
    echo "clingo $(pip_version clingo), tests need $(pip_pin clingo)"; return
  fi
  if ! grep -qs 'spec:' "$dir/user-config/linux/compilers.yaml" "$dir"/user-config/*/compilers.yaml 2>/dev/null; then
    echo "no compiler recorded in $dir/user-config"; return
  fi
  if [[ ! -s "$dir/source" ]]; then
    echo "$dir/source is missing (the setup did not finish)"; return
  fi
  # 0.23.0.dev0 names many commits: the source (snapshot, git or trimmed copy) names the one.
  if ! grep -q "${PIN_SPACK_COMMIT:0:10}" "$dir/source"; then
    echo "$dir holds Spack from $(<"$dir/source"), tests need commit ${PIN_SPACK_COMMIT:0:10}"; return
  fi
}

case "$cmd" in
  dir) echo "$dir" ;;
  check)
    why=$(problem)
    if [[ -n "$why" ]]; then log "$why"; exit 1; fi ;;
  env)
    why=$(problem)
    [[ -z "$why" ]] || die "$why: run scripts/install-test-deps.sh"
    cat <<E
SPACK_ROOT=$dir/spack
SPACK_USER_CONFIG_PATH=$dir/user-config
SPACK_USER_CACHE_PATH=$dir/user-cache
STACKCI_TEST_SPACK_SOURCE=$(<"$dir/source")
E
    ;;
  -h|--help|"") header_help "$0" ;;
  *) die "usage: spack.sh env|check|dir [--dir DIR]" ;;
esac
