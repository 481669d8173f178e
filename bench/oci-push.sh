#!/usr/bin/env bash
# Push benchmark: COUNT packages x SIZE MiB of incompressible data to a local docker-registry,
# with stackci's registry client (RegistryMirror: HEAD, POST, one streamed PUT per blob, JOBS
# at a time, then the manifests) versus `skopeo copy` of the same images from an OCI layout,
# one skopeo per image, sequential and PAR at a time. Cold (fresh registry) and warm (every
# blob already there). Reports wall time, peak RSS and the ratios.
#
#   bench/oci-push.sh [--count N] [--size MIB] [--jobs J] [--par P]
#
# Defaults: 64 packages x 16 MiB, -j 8, skopeo 8 at a time. Needs skopeo (installed with apt
# when missing and root) and builds the `oci_push` example in release mode.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
count=64; size=16; jobs=8; par=8
while [[ $# -gt 0 ]]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --par) par="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[oci-push] %s\n' "$*" >&2; }

if ! command -v skopeo >/dev/null; then
  [[ $(id -u) -eq 0 ]] || { echo "skopeo missing: apt-get install skopeo" >&2; exit 1; }
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo >/dev/null
fi
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time missing: apt-get install time" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/oci-push-bench.XXXXXX")
cleanup() {
  bash "$root/tests/peers/registry.sh" stop --dir "$work/reg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

log "building the driver (release)"
(cd "$root" && cargo build -q --release --example oci_push)
bin="$root/target/release/examples/oci_push"
log "writing $count images x $size MiB to an OCI layout"
"$bin" make-layout "$work/layout" "$count" "$size"
mapfile -t tags < <(python3 -c 'import json,sys; [print(m["annotations"]["org.opencontainers.image.ref.name"]) for m in json.load(open(sys.argv[1]))["manifests"]]' "$work/layout/index.json")

fresh_registry() {
  bash "$root/tests/peers/registry.sh" stop --dir "$work/reg" >/dev/null 2>&1 || true
  eval "$(bash "$root/tests/peers/registry.sh" start --port 0 --dir "$work/reg" --fresh 2>/dev/null)"
}

now() { date +%s.%N; }

# stackci: one process; prints "WALL RSS_KB".
run_stackci() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$bin" push "$work/layout" "oci+http://$REGISTRY_HOST/stackci" "$jobs" >"$work/out" 2>&1 \
    || { cat "$work/out" >&2; exit 1; }
  log "stackci: $(cat "$work/out")"
  read -r wall rss <"$work/time"
  echo "$wall $rss"
}

# skopeo: one process per image, N at a time; prints "WALL MAX_RSS_KB".
run_skopeo() {
  local n="$1" repo="$2" start end
  rm -f "$work"/skopeo-*.time
  start=$(now)
  printf '%s\n' "${tags[@]}" | xargs -P "$n" -I{} /usr/bin/time -f '%M' -o "$work/skopeo-{}.time" \
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:{}" "docker://$REGISTRY_HOST/$repo:{}" >"$work/out" 2>&1 \
    || { cat "$work/out" >&2; exit 1; }
  end=$(now)
  echo "$(python3 -c "print(round($end - $start, 2))") $(cat "$work"/skopeo-*.time | sort -n | tail -1)"
}

declare -A wall rss
for phase in cold warm; do
  [[ $phase == cold ]] && fresh_registry
  read -r wall[stackci-$phase] rss[stackci-$phase] < <(run_stackci)
done
for n in 1 "$par"; do
  for phase in cold warm; do
    [[ $phase == cold ]] && fresh_registry
    read -r wall[skopeo$n-$phase] rss[skopeo$n-$phase] < <(run_skopeo "$n" "skopeo$n")
  done
done

mib() { python3 -c "print(round($1 / 1024, 1))"; }
ratio() { python3 -c "print(round($1 / $2, 2))"; }
total=$((count * size))
printf '\n%d packages x %d MiB = %d MiB, docker-registry on 127.0.0.1, %s\n\n' "$count" "$size" "$total" "$(nproc) cores"
printf '%-22s %10s %10s %12s %10s %12s\n' tool cold_s cold_MiB/s cold_rss_MiB warm_s warm_rss_MiB
for t in stackci skopeo1 "skopeo$par"; do
  label=$t
  case $t in stackci) label="stackci -j $jobs" ;; skopeo1) label="skopeo x1" ;; *) label="skopeo x$par" ;; esac
  printf '%-22s %10s %10s %12s %10s %12s\n' "$label" "${wall[$t-cold]}" "$(python3 -c "print(round($total / ${wall[$t-cold]}, 1))")" \
    "$(mib "${rss[$t-cold]}")" "${wall[$t-warm]}" "$(mib "${rss[$t-warm]}")"
done
printf '\nratios (skopeo / stackci, >1 means stackci is faster or smaller):\n'
for t in skopeo1 "skopeo$par"; do
  printf '  %-10s cold time %sx  warm time %sx  peak RSS %sx\n' "$t" \
    "$(ratio "${wall[$t-cold]}" "${wall[stackci-cold]}")" "$(ratio "${wall[$t-warm]}" "${wall[stackci-warm]}")" \
    "$(ratio "${rss[$t-cold]}" "${rss[stackci-cold]}")"
done
