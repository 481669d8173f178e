#!/usr/bin/env bash
# Installs the third-party checkers that tests/it/status.rs validates stackci's output against:
#   - GitHub's published OpenAPI description of its REST API: npm package @octokit/openapi
#     (generated/api.github.com.json and generated/ghes-3.19.json are kept; the other
#     descriptions, ~360 MB, are deleted);
#   - junitparser (PyPI), a JUnit XML reader, in a virtualenv.
# Versions are pinned. Installs into $STACKCI_TEST_TOOLS (default: <repo>/target/test-tools)
# and does nothing for a tool already installed at the pinned version.
# Usage: tests/tools/install.sh     (then `cargo test --test it status::`)
set -euo pipefail

OPENAPI_VERSION=23.0.2
JUNITPARSER_VERSION=5.0.3

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${STACKCI_TEST_TOOLS:-$root/target/test-tools}
mkdir -p "$dir"

spec="$dir/npm/node_modules/@octokit/openapi/generated"
if [ "$(cat "$dir/openapi.version" 2>/dev/null)" != "$OPENAPI_VERSION" ] || [ ! -f "$spec/api.github.com.json" ]; then
    command -v npm >/dev/null || { echo "install.sh: npm is required" >&2; exit 1; }
    rm -rf "$dir/npm" "$dir/openapi.version"
    mkdir -p "$dir/npm"
    npm install --prefix "$dir/npm" --no-audit --no-fund --no-save --loglevel=error \
        "@octokit/openapi@$OPENAPI_VERSION"
    find "$spec" -name '*.json' ! -name api.github.com.json ! -name ghes-3.19.json -delete
    test -f "$spec/api.github.com.json" && test -f "$spec/ghes-3.19.json"
    echo "$OPENAPI_VERSION" >"$dir/openapi.version"
fi

venv="$dir/venv"
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('junitparser') != '$JUNITPARSER_VERSION')" 2>/dev/null; then
    command -v python3 >/dev/null || { echo "install.sh: python3 is required" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "junitparser==$JUNITPARSER_VERSION"
fi

echo "STACKCI_TEST_TOOLS=$dir"
