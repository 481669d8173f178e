#!/usr/bin/env bash
# S3 store benchmark: ~1 GiB of blob files (2 x 200 MiB, 8 x 50 MiB, 32 x 5 MiB, 64 x 512 KiB,
# random bytes, named by their sha256 like layout blobs) pushed to a local moto S3 server
# with stackci's S3Store (HEAD, then one streamed PUT, or a multipart upload of 16 MiB parts
# 4 at a time; THREADS files at a time) versus `aws s3 cp --recursive` of the same files.
# Cold (empty bucket) and warm (every blob already there: stackci re-pushes, aws runs
# `s3 sync`). Reports wall time and peak RSS.
#
#   bench/s3-store.sh [--threads N] [--release]
#
# Defaults: 8 threads, the dev profile (dependencies are built with opt-level 2 there, and
# the work is in them: the network stack, signing, hashing). Needs the aws CLI and moto
# (tests/peers/s3.sh installs moto).
#
# Measured (2 shared cores, load 4, two runs): stackci cold 11.3-11.9 s / 28-30 MiB peak RSS,
# aws s3 cp 10.9-11.9 s / 89-90 MiB; warm: stackci 0.45-0.47 s / 17 MiB, aws s3 sync
# 1.2-1.5 s / 61 MiB. Cold pushes are bound by moto (one Python process) on both sides.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
threads=8; profile=dev
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --release) profile=release; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[s3-store] %s\n' "$*" >&2; }
command -v aws >/dev/null || { echo "the aws CLI is missing: pip install awscli" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time missing: apt-get install time" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/s3-store-bench.XXXXXX")
cleanup() {
  bash "$root/tests/peers/s3.sh" stop --dir "$work/s3" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

log "building the driver ($profile)"
if [[ $profile == release ]]; then
  (cd "$root" && cargo build -q --release --example s3_store_push)
  bin="$root/target/release/examples/s3_store_push"
else
  (cd "$root" && cargo build -q --example s3_store_push)
  bin="$root/target/debug/examples/s3_store_push"
fi

log "writing the blobs"
mkdir -p "$work/blobs"
i=0
for spec in 2:200M 8:50M 32:5M 64:512K; do
  for _ in $(seq 1 "${spec%%:*}"); do
    head -c "${spec#*:}" /dev/urandom >"$work/blob-$i"
    i=$((i + 1))
  done
done
for f in "$work"/blob-*; do
  mv "$f" "$work/blobs/$(sha256sum "$f" | cut -d' ' -f1)"
done
total=$(find "$work/blobs" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
log "$(ls "$work/blobs" | wc -l) blobs, $total bytes"

eval "$(bash "$root/tests/peers/s3.sh" start --port 0 --dir "$work/s3" 2>/dev/null)"
export AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION
aws s3 mb s3://stackci >/dev/null
aws s3 mb s3://awscli >/dev/null

# Runs a command under GNU time; prints "WALL MAX_RSS_KB".
timed() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  log "$* -> $(tail -1 "$work/out")"
  cat "$work/time"
}

declare -A wall rss
for phase in cold warm; do
  read -r wall[stackci-$phase] rss[stackci-$phase] < <(timed "$bin" "$work/blobs" s3://stackci/mirror "$threads")
done
read -r wall[aws-cold] rss[aws-cold] < <(timed aws s3 cp --recursive --only-show-errors "$work/blobs" s3://awscli/mirror/blobs/sha256/)
read -r wall[aws-warm] rss[aws-warm] < <(timed aws s3 sync --only-show-errors "$work/blobs" s3://awscli/mirror/blobs/sha256/)

echo "input: $total bytes in $(ls "$work/blobs" | wc -l) blobs; $(nproc) cores; stackci threads $threads ($profile)"
printf '%-22s %10s %12s\n' run "wall (s)" "peak RSS"
for k in stackci-cold aws-cold stackci-warm aws-warm; do
  printf '%-22s %10s %8s MiB\n' "$k" "${wall[$k]}" "$(( ${rss[$k]} / 1024 ))"
done
python3 -c "print(f'stackci/aws cold wall-time ratio: {${wall[stackci-cold]} / ${wall[aws-cold]}:.2f}')"
