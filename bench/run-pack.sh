#!/usr/bin/env bash
# `stackci run` of a one-package stack holding a generated tree, side by side with
# `tar --sort=name ... | pigz -p THREADS` of the same tree, then `stackci install` of that
# package from the file mirror side by side with `tar -xzf` of the same layer blob.
#
# Usage: bench/run-pack.sh            (from anywhere in the repository)
# Environment:
#   SIZE_MIB   size of the generated tree (default 256)
#   RUNS       runs per tool, interleaved; medians are reported (default 3)
#   THREADS    pigz threads (default: nproc; stackci packs with every core too)
#   KEEP=1     keep the work directory (printed)
#
# The package's recipe hard-links the tree into its prefix (`cp -al`, a few ms), so a run
# measures what stackci adds: planning, packing and pushing into the `file://` mirror
# (`<stack dir>/.stackci/mirror`, on the state directory's file system, so the packed layer
# is renamed into place). Before each run the mirror and the store (or the install roots)
# are emptied and `sync` is run, untimed.
# Wall time and peak RSS come from GNU time; for a pipeline the RSS is its largest process.
# The last lines are the wall-time ratios (medians): `run/pigz` and `install/tar-xzf`.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-3}
THREADS=${THREADS:-$(nproc)}
for tool in pigz python3 /usr/bin/time strace; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install pigz python3 time strace)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stackci-run-bench.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"; fi; }
trap cleanup EXIT

echo "generating a ${SIZE_MIB} MiB tree in $WORK" >&2
TREE=$(python3 bench/gen-prefix.py "$WORK/src" --size-mib "$SIZE_MIB")
REL=${TREE#/}

echo "building stackci (release)" >&2
cargo build --release --quiet --bin stackci
STACKCI=$(pwd)/target/release/stackci

mkdir -p "$WORK/stack"
cat >"$WORK/stack/stack.yaml" <<EOF
name: bench
store: $WORK/store
env: { TREE: "$TREE" }
packages:
  tree:
    version: "1.0"
    build: |
      cp -al "\$TREE"/. "\$PREFIX"/
EOF

# Warm the page cache so every tool reads from memory.
tar -C / -cf - "$REL" >/dev/null

declare -A CMD=(
    [run]="$STACKCI --stack $WORK/stack/stack.yaml -q run"
    [pigz]="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C / -cf - $REL | pigz -p $THREADS > $WORK/pigz.tar.gz"
    [install]="$STACKCI --stack $WORK/stack/stack.yaml -q install tree --root $WORK/root"
    [tar-xzf]="mkdir -p $WORK/xroot && tar -xzf \$(cat $WORK/blob) -C $WORK/xroot"
)
reset() { # tool: what each run starts from, untimed
    case $1 in
        run) chmod -R u+w "$WORK/store" 2>/dev/null || true; rm -rf "$WORK/stack/.stackci" "$WORK/store" ;;
        install|tar-xzf) chmod -R u+w "$WORK/root" "$WORK/xroot" 2>/dev/null || true; rm -rf "$WORK/root" "$WORK/xroot" ;;
    esac
    # No run pays for the previous one's dirty pages being written back.
    sync
}

measure() { # tool run -> "wall rss_kib"
    local out="$WORK/$1.$2.time"
    reset "$1"
    /usr/bin/time -v -o "$out" bash -c "${CMD[$1]}" >/dev/null
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$out")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
    echo "$wall $rss"
}

declare -A WALLS RSS
record() { # tool run
    local wall rss
    read -r wall rss < <(measure "$1" "$2")
    WALLS[$1]="${WALLS[$1]:-} $wall"
    if [ "$rss" -gt "${RSS[$1]:-0}" ]; then RSS[$1]=$rss; fi
    echo "run $2 $1: ${wall}s, ${rss} KiB" >&2
}

for run in $(seq "$RUNS"); do
    record run "$run"
    record pigz "$run"
done
# The package's layer, as the last run pushed it: install reads it, tar -xzf reads the same file.
MIRROR=$WORK/stack/.stackci/mirror
LAYER=$(python3 - "$MIRROR" <<'EOF'
import json, sys
m = sys.argv[1]
index = json.load(open(f"{m}/index.json"))
manifest = json.load(open(f"{m}/blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]))
print(manifest["layers"][-1]["digest"].split(":")[1])
EOF
)
echo "$MIRROR/blobs/sha256/$LAYER" >"$WORK/blob"
for run in $(seq "$RUNS"); do
    record install "$run"
    record tar-xzf "$run"
done

# How many times install opens the layer blob (each blob must be read once).
reset install
strace -f -qq -e trace=openat -o "$WORK/install.strace" bash -c "${CMD[install]}" >/dev/null
OPENS=$(grep -c "sha256/$LAYER\"" "$WORK/install.strace" || true)

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

INPUT=$(du -sb "$TREE" | cut -f1)
echo
echo "input: $INPUT bytes in $(find "$TREE" | wc -l) entries; $(nproc) cores; pigz threads $THREADS; runs $RUNS; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %10s %12s\n' tool "wall (s)" "peak RSS"
declare -A MED
for tool in run pigz install tar-xzf; do
    MED[$tool]=$(echo "${WALLS[$tool]}" | median)
    printf '%-8s %10.2f %8d MiB\n' "$tool" "${MED[$tool]}" $(( RSS[$tool] / 1024 ))
done
echo "layer: $(stat -c %s "$MIRROR/blobs/sha256/$LAYER") bytes (pigz: $(stat -c %s "$WORK/pigz.tar.gz")); install opened it $OPENS time(s)"
awk -v a="${MED[run]}" -v b="${MED[pigz]}" 'BEGIN {printf "run/pigz wall-time ratio: %.2f\n", a/b}'
awk -v a="${MED[install]}" -v b="${MED[tar-xzf]}" 'BEGIN {printf "install/tar-xzf wall-time ratio: %.2f\n", a/b}'
