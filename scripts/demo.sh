#!/usr/bin/env bash
# Build the bundled example stack (examples/demo) with `stackci run`, on Debian as root.
# Installs the C toolchain the example needs when it is missing, builds stackci, then runs
#   stackci --stack examples/demo/stack.yaml run -j 2
# Extra arguments are passed to `run` (e.g. `scripts/demo.sh -v`). A second call builds nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
missing=()
for p in gcc libc6-dev make pkg-config; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cargo build --quiet
exec target/debug/stackci --stack examples/demo/stack.yaml run -j 2 "$@"
