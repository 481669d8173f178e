#!/usr/bin/env bash
# Make arm64 programs runnable on this machine: registers qemu-user-static's aarch64
# handler with the kernel's binfmt_misc (mounting /proc/sys/fs/binfmt_misc first when it is
# not), with the F flag, so it works inside containers (podman) too. Idempotent; needs root.
#
#   binfmt.sh arm64     register (or confirm) the handler; exit 1 naming why it cannot be
#   binfmt.sh status    print the handler's state
#
# Installs nothing: qemu-user-static is pinned in versions.sh and installed by
# scripts/install-test-deps.sh.
set -euo pipefail
PEER_NAME=binfmt
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=_lib.sh
source "$here/_lib.sh"

dir=/proc/sys/fs/binfmt_misc
entry=$dir/qemu-aarch64
conf=/usr/lib/binfmt.d/qemu-aarch64.conf

case "${1:-}" in
  arm64)
    require_deb qemu-user-static
    [[ -f $conf ]] || die "$conf is missing: qemu-user-static did not install its binfmt entry"
    if [[ ! -e $dir/register ]]; then
      mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null ||
        die "cannot mount binfmt_misc on $dir (needs root, and a kernel and sandbox that allow it): arm64 programs cannot run here"
    fi
    if [[ ! -e $entry ]]; then
      # Several tests may register at once: a second writer gets EEXIST, which is fine.
      cat "$conf" >"$dir/register" 2>/dev/null || [[ -e $entry ]] ||
        die "the kernel refused to register $conf in $dir/register"
    fi
    grep -qx enabled "$entry" || die "$entry is registered but not enabled"
    # podman runs arm64 programs in a container only with the F (fix binary) flag.
    grep -q '^flags:.*F' "$entry" || die "$entry lacks the F flag: podman cannot use it"
    log "qemu-aarch64 registered: $(sed -n 2p "$entry")"
    ;;
  status)
    if [[ -e $entry ]]; then cat "$entry"; else echo "not registered"; fi
    ;;
  -h | --help) header_help "$0" ;;
  *) die "usage: binfmt.sh arm64|status (see --help)" ;;
esac
