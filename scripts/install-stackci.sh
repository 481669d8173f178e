#!/usr/bin/env bash
# Install stackci for the GitHub action (action.yml); usable alone on any Linux machine.
#
#   INPUT_VERSION=latest|X.Y.Z  INPUT_SHA256=HEX  INPUT_CARGO_FALLBACK=true|false
#   INPUT_REPOSITORY=OWNER/NAME  scripts/install-stackci.sh
#
# 1. When this script runs from a local checkout of stackci (the action used as `uses: ./`),
#    build that checkout with `cargo install --path`.
# 2. Else download stackci-<target>.tar.gz of the release from
#    https://github.com/<repository>/releases and check its sha256 (INPUT_SHA256, else the
#    published stackci-<target>.tar.gz.sha256) before unpacking it. Targets:
#    x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu.
# 3. When there is no binary for this machine or the download or check fails, and
#    INPUT_CARGO_FALLBACK is true: `cargo install --git https://github.com/<repository>`
#    (at tag vX.Y.Z unless latest).
# The binary goes to $RUNNER_TEMP/stackci/bin (else ~/.local/stackci/bin), which is added to
# $GITHUB_PATH; `version` and `path` are written to $GITHUB_OUTPUT when set.
set -euo pipefail

log() { printf 'stackci install: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

version="${INPUT_VERSION:-latest}"
version="${version#v}"
fallback="${INPUT_CARGO_FALLBACK:-true}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${RUNNER_TEMP:-$HOME/.local}/stackci"
bin="$root/bin"
mkdir -p "$bin"

# The repository: given, else taken from where GitHub unpacked the action
# (.../_actions/OWNER/NAME/REF; github.action_repository is empty in composite actions).
repo="${INPUT_REPOSITORY:-}"
case "$here" in
  */_actions/*/*/*)
    if [[ -z "$repo" ]]; then
      rest="${here#*/_actions/}"
      repo="$(cut -d/ -f1-2 <<< "$rest")"
    fi
    local_checkout=0 ;;
  *) local_checkout=$([[ -f "$here/Cargo.toml" && -z "$repo" ]] && echo 1 || echo 0) ;;
esac

target=""
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-gnu ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
esac

download() {
  [[ -n "$repo" ]] || { log "no repository to download from"; return 1; }
  [[ -n "$target" ]] || { log "no release binary for $(uname -s) $(uname -m)"; return 1; }
  local base asset tmp expected actual
  if [[ "$version" == latest ]]; then
    base="https://github.com/$repo/releases/latest/download"
  else
    base="https://github.com/$repo/releases/download/v$version"
  fi
  asset="stackci-$target.tar.gz"
  tmp="$(mktemp -d)"
  log "downloading $base/$asset"
  curl -fsSL --retry 3 -o "$tmp/$asset" "$base/$asset" || { log "download failed"; return 1; }
  if [[ -n "${INPUT_SHA256:-}" ]]; then
    expected="$INPUT_SHA256"
  else
    expected="$(curl -fsSL --retry 3 "$base/$asset.sha256" | cut -d' ' -f1)" || { log "no checksum file"; return 1; }
  fi
  actual="$(sha256sum "$tmp/$asset" | cut -d' ' -f1)"
  if [[ "$actual" != "$expected" ]]; then
    log "sha256 mismatch for $asset: expected $expected, got $actual"
    return 1
  fi
  tar -xzf "$tmp/$asset" -C "$tmp"
  install -m 0755 "$tmp/stackci" "$bin/stackci"
  rm -rf "$tmp"
}

build() {
  command -v cargo >/dev/null 2>&1 || die "cargo is needed to build stackci from source"
  if [[ "$local_checkout" == 1 ]]; then
    log "building the local checkout $here"
    cargo install --locked --root "$root" --path "$here"
  elif [[ "$version" == latest ]]; then
    STACKCI_SOURCE_REPOSITORY="$repo" cargo install --locked --root "$root" --git "https://github.com/$repo" stackci
  else
    STACKCI_SOURCE_REPOSITORY="$repo" cargo install --locked --root "$root" --git "https://github.com/$repo" --tag "v$version" stackci
  fi
}

if [[ "$local_checkout" == 1 ]]; then
  build
elif ! download; then
  [[ "$fallback" == true ]] || die "could not install a release binary and cargo-fallback is off"
  [[ -n "$repo" ]] || die "no repository to build from: set the repository input"
  build
fi

"$bin/stackci" --version >&2
if [[ -n "${GITHUB_PATH:-}" ]]; then echo "$bin" >> "$GITHUB_PATH"; fi
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  {
    echo "version=$("$bin/stackci" --version | awk '{print $2}')"
    echo "path=$bin/stackci"
  } >> "$GITHUB_OUTPUT"
fi
