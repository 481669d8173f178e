#!/usr/bin/env bash
# What signing and verification cost, side by side with the independent cosign
# implementation (tests/tools/cosign_compat.py, Python cryptography + PyNaCl).
#
#   bench/trust.sh            N=50 packages, RUNS=3, STACKCI=target/debug/stackci
#
# For a stack of N trivial packages (a chain, so each manifest names its whole closure):
#   run-unsigned   stackci run into a fresh file mirror
#   run-signed     the same with STACKCI_SIGNING_KEY (one signature per package)
#   verify-stackci stackci verify: every package's signature, one process
#   verify-python  the independent verifier, once per package (as `cosign verify` is run)
# Runs are interleaved; the medians are printed. Needs tests/peers/trust.sh's tools.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N=${N:-50}
RUNS=${RUNS:-3}
S=${STACKCI:-$root/target/debug/stackci}
[[ -x "$S" ]] || { echo "build stackci first (cargo build)" >&2; exit 2; }
bash "$root/tests/peers/trust.sh" check
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "name: bench"; echo "store: $work/store"; echo "packages:"
  for i in $(seq 1 "$N"); do
    echo "  p$i:"; echo "    version: \"1.0\""
    [[ $i -gt 1 ]] && echo "    depends: [p$((i - 1))]"
    echo "    build: |"; echo "      mkdir -p \"\$PREFIX/bin\" && echo $i > \"\$PREFIX/bin/p$i\""
  done
} >"$work/stack.yaml"
export STACKCI_SIGNING_PASSWORD=bench
"$S" keygen --out "$work/k" 2>/dev/null >/dev/null
now() { date +%s.%N; }
declare -A times
measure() { # measure NAME CMD...
  local name=$1 s e
  shift
  s=$(now); "$@" >/dev/null 2>&1; e=$(now)
  times[$name]+="$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }') "
}
for r in $(seq 1 "$RUNS"); do
  rm -rf "$work/m1" "$work/m2" "$work/store"
  measure run-unsigned "$S" --stack "$work/stack.yaml" --mirror "file://$work/m1" run
  rm -rf "$work/store"
  measure run-signed env STACKCI_SIGNING_KEY="$work/k.key" "$S" --stack "$work/stack.yaml" --mirror "file://$work/m2" run
  measure verify-stackci env STACKCI_TRUST_KEYS="$work/k.pub" "$S" --stack "$work/stack.yaml" --mirror "file://$work/m2" verify
  tags=$("$S" --stack "$work/stack.yaml" --mirror "file://$work/m2" plan --json | python3 -c 'import json,sys; print("\n".join(p["tag"] for p in json.load(sys.stdin)["packages"]))')
  py() { for t in $tags; do python3 "$root/tests/tools/cosign_compat.py" verify --key "$work/k.pub" "layout:$work/m2" "$t" || return 1; done; }
  measure verify-python py
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "N=$N packages, RUNS=$RUNS, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in run-unsigned run-signed verify-stackci verify-python; do
  printf '%-15s median %6.2f s   (%s)\n' "$k" "$(echo "${times[$k]}" | median)" "${times[$k]}"
done
