#!/usr/bin/env bash
# `spack ci generate` of the real Spack vs `stackci generate gitlab`, on the same concretized
# environment: the SLAC lockfile (tests/fixtures/spack/slac-relmanage.spack.lock, 514 specs).
#
#   bench/spack-generate.sh [--runs N] [--keep DIR]
#
# The Spack environment is the lockfile plus a spack.yaml listing its 88 root specs, a
# build-cache mirror (an empty file:// directory, which `spack ci generate` requires) and a
# `ci:` section with one build job; Spack reads the concrete specs from the lock (nothing is
# concretized) and writes the pipeline for every spec the mirror lacks (all of them).
# stackci plans the same lockfile against an empty file:// mirror and writes its child
# pipeline(s). The two run interleaved, RUNS times each (default 5, after one untimed warm-up
# each); the lockfile is restored before every Spack run (Spack rewrites it). Medians are
# reported, with the speed-up; the target is >= 100x.
#
# Spack: $SPACK_ROOT when set, else the tests' Spack (tests/peers/spack.sh env). The trimmed
# Spack the tests fall back on lacks most builtin packages; the benchmark then uses the full
# snapshot in ../shared/peers/spack when it is there (unpacked into the work directory).
# stackci: $STACKCI, else target/release/stackci (built with cargo build --release).
# Exit status 1 when the target is missed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=5
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) echo "spack-generate.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

work="${keep:-$(mktemp -d)}"
mkdir -p "$work"
[[ -n "$keep" ]] || trap 'rm -rf "$work"' EXIT

if [[ -z "${STACKCI:-}" ]]; then
  (cd "$root" && cargo build --release --locked --quiet --bin stackci)
  STACKCI="$root/target/release/stackci"
fi

# The Spack to run.
if [[ -z "${SPACK_ROOT:-}" ]]; then
  env_file="$(bash "$root/tests/peers/spack.sh" env)" || { echo "no Spack: run scripts/install-test-deps.sh" >&2; exit 1; }
  eval "$(sed -e 's/^/export /' -e 's/=\(.*\)$/="\1"/' <<<"$env_file")"
  if [[ "${STACKCI_TEST_SPACK_SOURCE:-}" == trimmed* ]]; then
    # shellcheck source=../tests/peers/versions.sh
    source "$root/tests/peers/versions.sh"
    full="$root/../shared/peers/spack/spack-$PIN_SPACK_VERSION-${PIN_SPACK_COMMIT:0:10}.tar.gz"
    [[ -f "$full" ]] || { echo "the tests' Spack is trimmed and $full is missing: set SPACK_ROOT to a full Spack" >&2; exit 1; }
    mkdir -p "$work/spack"
    tar -xzf "$full" -C "$work/spack"
    export SPACK_ROOT="$work/spack"
  fi
fi
spack="$SPACK_ROOT/bin/spack"
echo "spack: $spack ($("$spack" --version)); stackci: $STACKCI ($("$STACKCI" --version))" >&2

lock="$root/tests/fixtures/spack/slac-relmanage.spack.lock"
env="$work/env"
mkdir -p "$env" "$work/spack-mirror" "$work/out-spack" "$work/out-stackci" "$work/stackci-mirror"
cp "$lock" "$env/spack.lock.orig"
python3 - "$lock" "$env/spack.yaml" "$work/spack-mirror" <<'PY'
import json, sys
lock, out, mirror = sys.argv[1:]
roots = [r["spec"] for r in json.load(open(lock))["roots"]]
with open(out, "w") as f:
    f.write("spack:\n  specs:\n")
    f.writelines(f"  - {json.dumps(r)}\n" for r in roots)
    f.write(f"""  view: false
  concretizer: {{ unify: true }}
  mirrors:
    buildcache: file://{mirror}
  ci:
    pipeline-gen:
    - build-job:
        tags: [spack]
        image: spack/ubuntu-jammy:latest
        script: ["spack -d ci rebuild"]
""")
PY

# `spack ci generate` writes jobs_scratch_dir/ into the working directory: keep it in $work.
spack_gen() {
  cp "$env/spack.lock.orig" "$env/spack.lock"
  (cd "$work" && "$spack" -e "$env" ci generate --output-file "$work/out-spack/pipeline.yml" >/dev/null 2>&1)
}
stackci_gen() {
  "$STACKCI" --stack "$env/spack.lock.orig" --mirror "file://$work/stackci-mirror" \
    generate gitlab -o "$work/out-stackci/stackci-pipeline.yml" 2>/dev/null
}
# seconds CMD: wall time of one run of a shell function.
seconds() {
  local s e
  s=$(date +%s.%N)
  "$@"
  e=$(date +%s.%N)
  python3 -c "print(f'{$e - $s:.4f}')"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
spack_gen
stackci_gen
t_spack=()
t_stackci=()
for ((i = 1; i <= runs; i++)); do
  t_spack+=("$(seconds spack_gen)")
  t_stackci+=("$(seconds stackci_gen)")
done
jobs_spack=$(grep -c '^  script:' "$work/out-spack/pipeline.yml" || true)
jobs_stackci=$(cat "$work"/out-stackci/*.yml | grep -c '^  - stackci build ' || true)
python3 - "${t_spack[*]}" "${t_stackci[*]}" "$jobs_spack" "$jobs_stackci" \
  "$(du -cb "$work"/out-spack/*.yml | tail -1 | cut -f1)" "$(du -cb "$work"/out-stackci/*.yml | tail -1 | cut -f1)" <<'PY'
import statistics, sys
sp = [float(x) for x in sys.argv[1].split()]
st = [float(x) for x in sys.argv[2].split()]
ms, mt = statistics.median(sp), statistics.median(st)
row = "{:<30} {:>12} {:>24} {:>6} {:>10}"
print(row.format("tool (SLAC lock, 514 specs)", "median (s)", "runs (s)", "jobs", "bytes"))
print(row.format("spack ci generate", f"{ms:.3f}", " ".join(f"{x:.2f}" for x in sp), sys.argv[3], sys.argv[5]))
print(row.format("stackci generate gitlab", f"{mt:.4f}", " ".join(f"{x:.3f}" for x in st), sys.argv[4], sys.argv[6]))
print(f"speed-up: {ms / mt:.0f}x (target >= 100x)")
sys.exit(0 if ms / mt >= 100 else 1)
PY
