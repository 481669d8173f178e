#!/usr/bin/env bash
# Build the trimmed Spack that the Spack tests fall back on when neither the full snapshot
# (../shared) nor github.com is available: tests/fixtures/spack/spack-<version>-<commit>-trimmed.tar.xz.
#
#   scripts/vendor-spack.sh [--from FULL.tar.gz] [--out FILE.tar.xz]
#
# --from  `git archive` of Spack at the pinned commit (tests/peers/versions.sh: PIN_SPACK_*);
#         default ../shared/peers/spack/spack-<version>-<commit10>.tar.gz beside the repository.
# Removed from the tree: lib/spack/docs, lib/spack/spack/test, share/spack/{qa,docker,gitlab,docs},
# var/spack/gpg.mock, every package repository but `builtin`, the repository's CI/editor files,
# and every builtin package outside the possible-dependency closure of $ROOTS (computed by
# scripts/spack-closure.py with the unpacked Spack itself). Kept: bin, etc, lib (code and vendored
# libraries), share (shell setup, templates, bootstrap, keys), and Spack's license files
# (LICENSE-APACHE, LICENSE-MIT, COPYRIGHT, NOTICE; Spack is Apache-2.0 OR MIT), plus
# STACKCI-TRIMMED.md saying what was removed and how to rebuild it.
# The archive is deterministic: sorted names, mtime of the commit, uid/gid 0, xz -9 single-threaded.
# Takes about a minute (loading every package class once).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER_NAME=vendor-spack
# shellcheck source=../tests/peers/_lib.sh
source "$root/tests/peers/_lib.sh"

short="${PIN_SPACK_COMMIT:0:10}"
from="$root/../shared/peers/spack/spack-$PIN_SPACK_VERSION-$short.tar.gz"
out="$root/tests/fixtures/spack/spack-$PIN_SPACK_VERSION-$short-trimmed.tar.xz"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) header_help "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ -f "$from" ]] || die "no Spack snapshot at $from (give --from)"
# The packages whose graphs the tests concretize: the compiler runtime and libc providers
# every spec depends on, and the build tools a compiler may pull in.
ROOTS=(gcc-runtime glibc musl gcc gmake)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/spack"
tar -xzf "$from" -C "$work/spack"
sp="$work/spack"
[[ "$("$sp/bin/spack" --version | cut -d' ' -f1)" == "$PIN_SPACK_VERSION" ]] ||
  die "$from is not Spack $PIN_SPACK_VERSION"

export SPACK_USER_CONFIG_PATH="$work/config" SPACK_USER_CACHE_PATH="$work/cache" SPACK_DISABLE_LOCAL_CONFIG=1
timed "closure of ${ROOTS[*]}" "$sp/bin/spack" python "$root/scripts/spack-closure.py" "${ROOTS[@]}" >"$work/keep.txt"
kept=$(wc -l <"$work/keep.txt")
[[ $kept -gt 100 ]] || die "the closure has only $kept packages: something went wrong"

rm -rf "$sp/lib/spack/docs" "$sp/lib/spack/spack/test" \
  "$sp/share/spack/qa" "$sp/share/spack/docker" "$sp/share/spack/gitlab" "$sp/share/spack/docs" \
  "$sp/var/spack/gpg.mock" "$sp/.github" "$sp/.devcontainer" "$sp/.codecov.yml" "$sp/.dockerignore" \
  "$sp/.flake8" "$sp/.git-blame-ignore-revs" "$sp/.mailmap" "$sp/.readthedocs.yml" \
  "$sp/CHANGELOG.md" "$sp/CITATION.cff" "$sp/pytest.ini"
for repo in "$sp"/var/spack/repos/*; do
  [[ "$(basename "$repo")" == builtin ]] || rm -rf "$repo"
done
pkgs="$sp/var/spack/repos/builtin/packages"
for dir in "$pkgs"/*; do
  grep -qxF "$(basename "$dir")" "$work/keep.txt" || rm -rf "$dir"
done
find "$sp" -name __pycache__ -type d -prune -exec rm -rf {} +

cat >"$sp/STACKCI-TRIMMED.md" <<MD
# Trimmed Spack $PIN_SPACK_VERSION ($PIN_SPACK_COMMIT)

A reduced copy of Spack (https://github.com/spack/spack, commit $PIN_SPACK_COMMIT; Spack is
licensed Apache-2.0 OR MIT, see LICENSE-APACHE, LICENSE-MIT, COPYRIGHT and NOTICE here),
made by stackci's scripts/vendor-spack.sh as a test peer for machines without network access.

Removed: Spack's documentation and test suite, its CI files, every package repository but
\`builtin\`, and every builtin package outside the possible-dependency closure of
${ROOTS[*]} ($kept packages kept, listed by \`ls var/spack/repos/builtin/packages\`).
Everything else is unchanged. Environments whose packages only need those concretize with
the same DAG hashes as with the full Spack.
MD

epoch=$(python3 - "$from" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    print(max(m.mtime for m in t.getmembers()[:50]))
PY
)
mkdir -p "$(dirname "$out")"
tar -C "$work" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --format=posix -cf - spack |
  xz -9 -T1 >"$out.tmp"
mv "$out.tmp" "$out"
log "wrote $out ($(du -h "$out" | cut -f1), $kept builtin packages)"
