#!/usr/bin/env bash
# Benchmark `stackci generate gitlab` on the SLAC Spack lockfile (514 specs) and on a
# synthetic 20,000-package stack, next to Python merely parsing the lockfile's JSON.
#
#   bench/generate.sh [--runs N] [--keep DIR]
#
# Builds the release binary (cargo build --release) unless STACKCI=/path/to/stackci is set.
# Times with hyperfine when installed (else a loop of N runs, mean), measures peak RSS of
# one run (getrusage of the child), prints output sizes, and checks the targets:
#   lockfile generation <= 1/4 of Python's json.load of the same file
#   20k packages: < 1 s and < 200 MiB peak RSS
# Exit status 1 when a target is missed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=10
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "generate.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [[ -z "${STACKCI:-}" ]]; then
  (cd "$root" && cargo build --release --locked --quiet)
  STACKCI="$root/target/release/stackci"
fi
work="${keep:-$(mktemp -d)}"
mkdir -p "$work/mirror" "$work/out-slac" "$work/out-20k"
[[ -n "$keep" ]] || trap 'rm -rf "$work"' EXIT

lock="$root/tests/fixtures/spack/slac-relmanage.spack.lock"
big="$work/synthetic-20000.yaml"
python3 "$root/bench/gen-synthetic.py" 20000 -o "$big"
mirror="file://$work/mirror"

gen_slac=("$STACKCI" generate gitlab --stack "$lock" --mirror "$mirror" -o "$work/out-slac/pipeline.yml")
gen_big=("$STACKCI" generate gitlab --stack "$big" --mirror "$mirror" -o "$work/out-20k/pipeline.yml")
py_parse=(python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$lock")

# Each command once first: it must succeed (and this warms the page cache).
"${gen_slac[@]}" >/dev/null
"${gen_big[@]}" >/dev/null
"${py_parse[@]}"

# mean_seconds CMD...: mean wall time over $runs runs.
mean_seconds() {
  if command -v hyperfine >/dev/null 2>&1; then
    local json="$work/hyperfine.json"
    hyperfine --style none --warmup 1 --runs "$runs" --export-json "$json" -N -- "$(printf '%q ' "$@")" >/dev/null 2>&1 \
      || hyperfine --style none --warmup 1 --runs "$runs" --export-json "$json" -- "$(printf '%q ' "$@")" >/dev/null
    python3 -c 'import json,sys; print("%.6f" % json.load(open(sys.argv[1]))["results"][0]["mean"])' "$json"
  else
    python3 - "$runs" "$@" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1]); cmd = sys.argv[2:]
t = time.perf_counter()
for _ in range(n):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
print("%.6f" % ((time.perf_counter() - t) / n))
PY
  fi
}

# peak_rss_mib CMD...: peak resident set size of one run, MiB.
peak_rss_mib() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print("%.1f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))
PY
}

sizes() { du -cb "$1"/*.yml | tail -1 | cut -f1; }

t_slac=$(mean_seconds "${gen_slac[@]}")
t_py=$(mean_seconds "${py_parse[@]}")
t_big=$(mean_seconds "${gen_big[@]}")
r_slac=$(peak_rss_mib "${gen_slac[@]}")
r_big=$(peak_rss_mib "${gen_big[@]}")
count() { find "$1" -name '*.yml' | wc -l; }
n_slac=$(count "$work/out-slac")
n_big=$(count "$work/out-20k")

echo "timer: $(command -v hyperfine >/dev/null 2>&1 && hyperfine --version || echo "loop of $runs runs")"
python3 - "$t_py" "$(stat -c %s "$lock")" \
  "$t_slac" "$r_slac" "$n_slac" "$(sizes "$work/out-slac")" \
  "$t_big" "$r_big" "$n_big" "$(sizes "$work/out-20k")" <<'PY'
import sys
a = sys.argv[1:]
row = "{:<46} {:>10} {:>10} {:>6} {:>12}"
print(row.format("what", "mean (ms)", "RSS (MiB)", "files", "bytes"))
print(row.format("python3 json.load(slac lockfile)", "%.1f" % (float(a[0]) * 1000), "-", "-", a[1]))
print(row.format("stackci generate gitlab (slac lockfile, 514)", "%.1f" % (float(a[2]) * 1000), a[3], a[4], a[5]))
print(row.format("stackci generate gitlab (synthetic, 20,000)", "%.1f" % (float(a[6]) * 1000), a[7], a[8], a[9]))
PY

fail=0
check() { # check LABEL PYTHON_CONDITION
  if python3 -c "import sys; sys.exit(0 if ($2) else 1)"; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi
}
check "lockfile generation <= 1/4 of python json.load ($t_slac s vs $t_py s)" "$t_slac * 4 <= $t_py"
check "20k generation < 1 s ($t_big s)" "$t_big < 1.0"
check "20k peak RSS < 200 MiB ($r_big MiB)" "$r_big < 200"
exit "$fail"
