#!/usr/bin/env bash
# Mirror copy benchmark: `stackci mirror copy` of a file mirror of COUNT packages x SIZE MiB
# (incompressible, built by `stackci run`) to a fresh docker-registry, side by side with
# `skopeo copy` of every tag of the same layout to another fresh docker-registry (skopeo
# sync cannot read an OCI layout), one tag after the other as `skopeo sync` does, and 8 at a
# time; cold (empty registry) and warm (every tag there). Medians of RUNS interleaved rounds.
#
#   bench/mirror-copy.sh [--count N] [--size MIB] [--runs R] [--jobs J]
#
# Defaults: 64 packages x 16 MiB, 3 rounds, stackci -j 8. Needs skopeo, docker-registry
# (tests/peers/registry.sh) and GNU time; builds stackci in release mode.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
count=64; size=16; runs=3; jobs=8
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[mirror-copy] %s\n' "$*" >&2; }
for tool in skopeo /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mirror-copy-bench.XXXXXX")
cleanup() {
  for r in a b c; do bash "$root/tests/peers/registry.sh" stop --dir "$work/reg-$r" >/dev/null 2>&1 || true; done
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log "building stackci (release)"
(cd "$root" && cargo build -q --release --bin stackci)
stackci="$root/target/release/stackci"

log "building $count packages of $size MiB into a file mirror"
stack="$work/stack/stack.yaml"
mkdir -p "$work/stack"
{
  echo "name: copy-bench"
  echo "store: $work/store"
  echo "packages:"
  for i in $(seq 0 $((count - 1))); do
    printf '  p%d:\n    version: "1.0"\n    build: |\n      head -c %d /dev/urandom > "$PREFIX/data-%d"\n' "$i" $((size << 20)) "$i"
  done
} >"$stack"
"$stackci" --stack "$stack" -q run -j 2 >/dev/null
layout="$work/stack/.stackci/mirror"
mapfile -t tags < <(python3 -c 'import json,sys; [print(m["annotations"]["org.opencontainers.image.ref.name"]) for m in json.load(open(sys.argv[1]))["manifests"]]' "$layout/index.json")
log "${#tags[@]} tags, $(du -sm "$layout" | cut -f1) MiB"

fresh() { # a|b|c: a fresh registry; sets HOST_a / HOST_b / HOST_c
  bash "$root/tests/peers/registry.sh" stop --dir "$work/reg-$1" >/dev/null 2>&1 || true
  eval "$(bash "$root/tests/peers/registry.sh" start --port 0 --dir "$work/reg-$1" --fresh 2>/dev/null)"
  printf -v "HOST_$1" '%s' "$REGISTRY_HOST"
}

timed() { # name command...: runs it under GNU time, prints "wall rss_kib"
  local name=${1//[ \/]/_}; shift
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>&1 || { cat "$work/$name.out" >&2; exit 1; }
  cat "$work/$name.time"
}

declare -A walls rss
record() { # row command...
  local row=$1 w r; shift
  read -r w r < <(timed "$row" "$@")
  walls[$row]="${walls[$row]:-} $w"
  [[ $r -gt ${rss[$row]:-0} ]] && rss[$row]=$r
  log "$row: ${w}s, $((r / 1024)) MiB"
}

# skopeo, one `skopeo copy` per tag, PAR at a time (1: what `skopeo sync` does).
printf '%s\n' "${tags[@]}" >"$work/tags"
cat >"$work/skopeo-all.sh" <<SH
#!/usr/bin/env bash
# skopeo-all.sh HOST PAR
set -euo pipefail
xargs -P "\$2" -I{} skopeo copy --quiet --dest-tls-verify=false "oci:$layout:{}" "docker://\$1/bench/mirror:{}" <"$work/tags"
SH

for round in $(seq "$runs"); do
  log "round $round"
  fresh a; fresh b; fresh c
  record "stackci cold" "$stackci" mirror copy -j "$jobs" "$layout" "oci+http://$HOST_a/bench/mirror"
  record "skopeo cold" bash "$work/skopeo-all.sh" "$HOST_b" 1
  record "skopeo x8 cold" bash "$work/skopeo-all.sh" "$HOST_c" 8
  record "stackci warm" "$stackci" mirror copy -j "$jobs" "$layout" "oci+http://$HOST_a/bench/mirror"
  record "skopeo warm" bash "$work/skopeo-all.sh" "$HOST_b" 1
  record "skopeo x8 warm" bash "$work/skopeo-all.sh" "$HOST_c" 8
done
"$stackci" mirror verify --quick "oci+http://$HOST_a/bench/mirror" >/dev/null 2>&1 || { echo "the copy does not verify" >&2; exit 1; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '\n%d packages x %d MiB, file mirror -> docker-registry on 127.0.0.1, %d cores, %d rounds, load %s\n\n' \
  "$count" "$size" "$(nproc)" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %10s %12s %s\n' row "median s" "peak RSS" "all runs"
declare -A med
for row in "stackci cold" "skopeo cold" "skopeo x8 cold" "stackci warm" "skopeo warm" "skopeo x8 warm"; do
  med[$row]=$(echo "${walls[$row]}" | median)
  printf '%-16s %10s %8d MiB %s\n' "$row" "${med[$row]}" $((rss[$row] / 1024)) "${walls[$row]}"
done
ratio() { python3 -c "print(round($1 / $2, 2))"; }
printf '\nstackci/skopeo wall-time ratio: cold %s, warm %s (against skopeo x8: cold %s, warm %s)\n' \
  "$(ratio "${med[stackci cold]}" "${med[skopeo cold]}")" \
  "$(ratio "${med[stackci warm]}" "${med[skopeo warm]}")" \
  "$(ratio "${med[stackci cold]}" "${med[skopeo x8 cold]}")" \
  "$(ratio "${med[stackci warm]}" "${med[skopeo x8 warm]}")"
