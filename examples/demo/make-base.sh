#!/usr/bin/env bash
# Make the demo's base image, offline: an OCI image layout (default: base/ beside this
# script) whose tag `glibc` is a multi-platform image index over one tiny image per
# platform, each holding only the C runtime the demo's `hello` is linked against (libc.so.6
# and the dynamic loader), copied from this machine:
#   linux/amd64  from /lib/x86_64-linux-gnu (Debian's libc6)
#   linux/arm64  from /usr/aarch64-linux-gnu (Debian's libc6-arm64-cross), when installed
# Needs only bash, coreutils, tar and gzip. The same files give the same digests.
#
#   examples/demo/make-base.sh [DIR]
#
# stack.yaml names it as `base: oci-layout:base:glibc`. With a registry at hand, a real
# distribution base (`base: docker://debian:12-slim`) works the same way.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/base}"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/layout/blobs/sha256"
blobs="$tmp/layout/blobs/sha256"

# put FILE: store FILE as a blob; prints "DIGEST SIZE".
put() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$blobs/$hex"
  echo "sha256:$hex $size"
}

# image ARCH LIB:DEST...: one image for linux/ARCH whose only layer holds each LIB at DEST;
# prints the manifest descriptor.
image() {
  local arch=$1; shift
  local root="$tmp/root-$arch"
  mkdir -p "$root"
  local spec src dest
  for spec in "$@"; do
    src=${spec%%:*}; dest=${spec#*:}
    [[ -e "$src" ]] || { echo "make-base.sh: $src is missing (for linux/$arch)" >&2; return 1; }
    mkdir -p "$root/$(dirname "$dest")"
    cp -L "$src" "$root/$dest"
  done
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$tmp/layer-$arch.tar" .
  gzip -n -9 -c "$tmp/layer-$arch.tar" >"$tmp/layer-$arch.tar.gz"
  local diff_id layer config manifest
  diff_id="sha256:$(sha256sum "$tmp/layer-$arch.tar" | cut -d' ' -f1)"
  read -r layer_digest layer_size < <(put "$tmp/layer-$arch.tar.gz")
  printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$arch" "$diff_id" >"$tmp/config-$arch.json"
  read -r config_digest config_size < <(put "$tmp/config-$arch.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$tmp/manifest-$arch.json"
  read -r manifest_digest manifest_size < <(put "$tmp/manifest-$arch.json")
  printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}' \
    "$manifest_digest" "$manifest_size" "$arch"
}

entries=()
entries+=("$(image amd64 \
  /lib/x86_64-linux-gnu/libc.so.6:lib/x86_64-linux-gnu/libc.so.6 \
  /lib64/ld-linux-x86-64.so.2:lib64/ld-linux-x86-64.so.2)")
if [[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ]]; then
  entries+=("$(image arm64 \
    /usr/aarch64-linux-gnu/lib/libc.so.6:lib/aarch64-linux-gnu/libc.so.6 \
    /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1:lib/ld-linux-aarch64.so.1)")
fi
joined=$(IFS=,; echo "${entries[*]}")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$joined" >"$tmp/index.json"
read -r index_digest index_size < <(put "$tmp/index.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/layout/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"glibc"}}]}' \
  "$index_digest" "$index_size" >"$tmp/layout/index.json"
rm -rf "$out.tmp"
mv "$tmp/layout" "$out.tmp"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out: oci-layout:$out:glibc = $index_digest (${#entries[@]} platforms)"
