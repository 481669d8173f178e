#!/usr/bin/env bash
# Image push benchmark: `stackci image` of COUNT package layers x SIZE MiB (incompressible)
# from a file mirror to a fresh docker-registry, side by side with `skopeo copy` of the same
# image from an OCI layout to another fresh docker-registry; cold (empty registry) and warm
# (every blob there). Medians of RUNS interleaved rounds.
#
#   bench/image-push.sh [--count N] [--size MIB] [--runs R]
#
# Defaults: 64 layers x 16 MiB, 3 rounds. Rows:
#   stackci cold     empty registry, empty verified-layer cache: every layer is read once to
#                    check it (digest, diff_id, members in their prefix), then uploaded;
#   stackci cold/vc  empty registry, verified-layer cache warm (a second `image` of the
#                    same packages, e.g. another tag): uploads only;
#   stackci warm     every blob present: HEADs, config, manifest;
#   skopeo cold/warm `skopeo copy oci:LAYOUT:TAG docker://...` of the same image.
# Needs skopeo, docker-registry (tests/peers/registry.sh) and GNU time; builds stackci in
# release mode.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
count=64; size=16; runs=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[image-push] %s\n' "$*" >&2; }
for tool in skopeo /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/image-push-bench.XXXXXX")
cleanup() {
  for r in a b; do bash "$root/tests/peers/registry.sh" stop --dir "$work/reg-$r" >/dev/null 2>&1 || true; done
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
  echo "name: push-bench"
  echo "store: $work/store"
  echo "packages:"
  for i in $(seq 0 $((count - 1))); do
    printf '  p%d:\n    version: "1.0"\n    build: |\n      head -c %d /dev/urandom > "$PREFIX/data-%d"\n' "$i" $((size << 20)) "$i"
  done
  echo "images:"
  echo "  big:"
  echo "    base: scratch"
  printf '    packages: ['; seq -s ', ' -f 'p%g' 0 $((count - 1)) | tr -d '\n'; echo ']'
} >"$stack"
"$stackci" --stack "$stack" -q run -j 2 >/dev/null
"$stackci" --stack "$stack" -q image big --to "oci-layout:$work/layout:big" >/dev/null

fresh() { # a|b: a fresh registry; sets HOST_a / HOST_b
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

image=("$stackci" --stack "$stack" -q image big --to)
skopeo_copy=(skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:big")

for round in $(seq "$runs"); do
  log "round $round"
  fresh a; fresh b
  rm -rf "$work/stack/.stackci/verified"
  record "stackci cold" "${image[@]}" "oci+http://$HOST_a/bench/img:big"
  record "skopeo cold" "${skopeo_copy[@]}" "docker://$HOST_b/bench/img:big"
  record "stackci warm" "${image[@]}" "oci+http://$HOST_a/bench/img:big"
  record "skopeo warm" "${skopeo_copy[@]}" "docker://$HOST_b/bench/img:big"
  fresh a
  record "stackci cold/vc" "${image[@]}" "oci+http://$HOST_a/bench/img:big"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '\n%d layers x %d MiB, docker-registry on 127.0.0.1, %d cores, %d rounds, load %s\n\n' \
  "$count" "$size" "$(nproc)" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-18s %10s %12s %s\n' row "median s" "peak RSS" "all runs"
declare -A med
for row in "stackci cold" "stackci cold/vc" "skopeo cold" "stackci warm" "skopeo warm"; do
  med[$row]=$(echo "${walls[$row]}" | median)
  printf '%-18s %10s %8d MiB %s\n' "$row" "${med[$row]}" $((rss[$row] / 1024)) "${walls[$row]}"
done
ratio() { python3 -c "print(round($1 / $2, 2))"; }
printf '\nstackci/skopeo wall-time ratio: cold %s (cold/vc %s), warm %s\n' \
  "$(ratio "${med[stackci cold]}" "${med[skopeo cold]}")" \
  "$(ratio "${med[stackci cold/vc]}" "${med[skopeo cold]}")" \
  "$(ratio "${med[stackci warm]}" "${med[skopeo warm]}")"
