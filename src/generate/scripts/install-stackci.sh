# stackci: install stackci unless it is on PATH: the release binary of
# $STACKCI_INSTALL_VERSION for this machine from $STACKCI_INSTALL_REPOSITORY, checked against
# its published sha256; without one (or when the check fails), cargo install --git.
if ! command -v stackci >/dev/null 2>&1; then
  STACKCI_INSTALL_ROOT="${STACKCI_INSTALL_ROOT:-$HOME/.stackci}"
  (
    set -eu
    v="${STACKCI_INSTALL_VERSION#v}"
    repo="$STACKCI_INSTALL_REPOSITORY"
    if [ -z "$repo" ]; then
      echo "stackci: not on PATH, and no repository to install it from: set \`ci: { install: { repository: OWNER/stackci } }\` in the stack (or the STACKCI_INSTALL_REPOSITORY variable)" >&2
      exit 1
    fi
    base="${STACKCI_RELEASE_URL:-https://github.com/$repo/releases/download}/v$v"
    case "$(uname -s)-$(uname -m)" in
      Linux-x86_64 | Linux-amd64) target=x86_64-unknown-linux-gnu ;;
      Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-gnu ;;
      *) target="" ;;
    esac
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    ok=0
    if [ -z "$target" ]; then
      echo "stackci: no release binary for $(uname -s) $(uname -m)" >&2
    elif ! curl -fsSL --retry 3 -o "$tmp/stackci.tar.gz" "$base/stackci-$target.tar.gz" ||
      ! curl -fsSL --retry 3 -o "$tmp/sha256" "$base/stackci-$target.tar.gz.sha256"; then
      echo "stackci: could not download stackci-$target.tar.gz and its .sha256 from $base" >&2
    else
      want="$(cut -d' ' -f1 "$tmp/sha256")"
      have="$(sha256sum "$tmp/stackci.tar.gz" | cut -d' ' -f1)"
      if [ "$want" = "$have" ]; then
        tar -xzf "$tmp/stackci.tar.gz" -C "$tmp"
        mkdir -p "$STACKCI_INSTALL_ROOT/bin"
        install -m 0755 "$tmp/stackci" "$STACKCI_INSTALL_ROOT/bin/stackci"
        ok=1
      else
        echo "stackci: sha256 mismatch for stackci-$target.tar.gz: expected $want, got $have" >&2
      fi
    fi
    if [ "$ok" = 0 ]; then
      echo "stackci: building stackci $v with cargo install --git https://github.com/$repo" >&2
      cargo install --locked --root "$STACKCI_INSTALL_ROOT" --git "https://github.com/$repo" --tag "v$v" stackci
    fi
  )
  export PATH="$STACKCI_INSTALL_ROOT/bin:$PATH"
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$STACKCI_INSTALL_ROOT/bin" >>"$GITHUB_PATH"; fi
fi
stackci --version
