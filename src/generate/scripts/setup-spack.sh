# stackci: Spack from $SPACK_ROOT or PATH; else a clone of $SPACK_REPO at $SPACK_REF (a
# commit, tag or branch), made once in $STACKCI_SPACK_DIR and exported as SPACK_ROOT.
if [ -z "${SPACK_ROOT:-}" ] && ! command -v spack >/dev/null 2>&1; then
  if [ -z "${SPACK_REF:-}" ]; then
    echo "stackci: no Spack on this runner (no \$SPACK_ROOT, no spack on PATH) and no SPACK_REF to clone; set \`spack: { ref: }\` in the stack or the SPACK_REF variable" >&2
    exit 1
  fi
  SPACK_ROOT="${STACKCI_SPACK_DIR:-$HOME/.stackci/spack}"
  if [ ! -x "$SPACK_ROOT/bin/spack" ] || [ "$(cat "$SPACK_ROOT/.stackci-ref" 2>/dev/null)" != "$SPACK_REPO $SPACK_REF" ]; then
    echo "stackci: cloning Spack $SPACK_REPO at $SPACK_REF into $SPACK_ROOT" >&2
    rm -rf "$SPACK_ROOT"
    mkdir -p "$SPACK_ROOT"
    git -C "$SPACK_ROOT" init -q
    git -C "$SPACK_ROOT" fetch -q --depth 1 "$SPACK_REPO" "$SPACK_REF"
    git -C "$SPACK_ROOT" -c advice.detachedHead=false checkout -q FETCH_HEAD
    echo "$SPACK_REPO $SPACK_REF" >"$SPACK_ROOT/.stackci-ref"
  fi
  export SPACK_ROOT
  if [ -n "${GITHUB_ENV:-}" ]; then echo "SPACK_ROOT=$SPACK_ROOT" >>"$GITHUB_ENV"; fi
fi
