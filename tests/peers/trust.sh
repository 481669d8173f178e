#!/usr/bin/env bash
# The independent implementations stackci's signatures and SBOMs are checked against.
#
#   trust.sh check               the pinned PyPI packages are there (cryptography, PyNaCl,
#                                spdx-tools) and pyspdxtools is on PATH
#   trust.sh cosign ARGS...      tests/tools/cosign_compat.py: a cosign key-based signer and
#                                verifier written from cosign's published specs (see its --help)
#   trust.sh spdx FILE           validate an SPDX document with pyspdxtools (spdx-tools)
#   trust.sh versions            print their versions
#
# Only checks versions; scripts/install-test-deps.sh installs them.
set -euo pipefail
PEER_NAME=trust
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_lib.sh
source "$here/_lib.sh"

check() {
  require_pip cryptography
  require_pip PyNaCl
  require_pip spdx-tools
  require_cmd pyspdxtools
}

case "${1:-}" in
  check) check ;;
  cosign) shift; check; exec python3 "$here/../tools/cosign_compat.py" "$@" ;;
  spdx)
    [[ $# -eq 2 ]] || die "usage: trust.sh spdx FILE"
    check
    # pyspdxtools prints problems and still exits 0 on some of them: fail on any output.
    out=$(pyspdxtools --infile "$2" 2>&1) || { echo "$out"; exit 1; }
    if [[ -n "$out" ]]; then echo "$out"; exit 1; fi
    echo "PASS spdx: $2" ;;
  versions)
    for d in cryptography PyNaCl spdx-tools; do echo "$d $(pip_version "$d")"; done ;;
  -h|--help|"") header_help "$0" ;;
  *) die "unknown command: $1 (see --help)" ;;
esac
