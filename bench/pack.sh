#!/usr/bin/env bash
# Packing benchmark: stackci's layer packer against `tar | gzip -6` and `tar | pigz`.
#
# Usage: bench/pack.sh            (from anywhere in the repository)
# Environment:
#   SIZE_MIB   size of the generated prefix (default 256)
#   RUNS       runs per tool, interleaved; the median wall time is reported (default 3)
#   THREADS    threads for stackci and pigz (default: nproc)
#   LEVEL      stackci deflate level (default: the packer's default)
#   KEEP=1     keep the work directory (printed)
#
# Prints one table row per tool (median wall time, peak RSS of the run with the largest
# peak, compressed size) and, as the last line, `stackci/pigz wall-time ratio: X.XX`.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-3}
THREADS=${THREADS:-$(nproc)}

need() { # command, apt package
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2" >&2
    apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
}
need pigz pigz
[ -x /usr/bin/time ] || need /usr/bin/time time
need python3 python3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stackci-pack-bench.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

echo "generating a ${SIZE_MIB} MiB prefix in $WORK" >&2
PREFIX=$(python3 bench/gen-prefix.py "$WORK/src" --size-mib "$SIZE_MIB")
REL=${PREFIX#/}

echo "building the packer (release)" >&2
cargo build --release --quiet --example pack-bench
PACK=$(pwd)/target/release/examples/pack-bench

# Warm the page cache so every tool reads from memory.
tar -C / -cf - "$REL" >/dev/null

TAR="tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C / -cf - $REL"
LEVEL_ARG=${LEVEL:+--level $LEVEL}
declare -A CMD=(
    [stackci]="$PACK $PREFIX $WORK/stackci.tar.gz --threads $THREADS $LEVEL_ARG"
    [gzip-6]="$TAR | gzip -6 > $WORK/gzip-6.tar.gz"
    [pigz]="$TAR | pigz -p $THREADS > $WORK/pigz.tar.gz"
)
TOOLS=(stackci gzip-6 pigz)

# One measurement: wall seconds and peak RSS (KiB) from GNU time. For a pipeline, GNU time
# reports the largest peak among the processes of the pipeline (not their sum).
measure() { # tool run
    local out="$WORK/$1.$2.time"
    /usr/bin/time -v -o "$out" bash -c "${CMD[$1]}" >/dev/null
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$out")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
    echo "$wall $rss"
}

declare -A WALLS RSS
for run in $(seq "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
        read -r wall rss < <(measure "$tool" "$run")
        WALLS[$tool]="${WALLS[$tool]:-} $wall"
        if [ "$rss" -gt "${RSS[$tool]:-0}" ]; then RSS[$tool]=$rss; fi
        echo "run $run $tool: ${wall}s, ${rss} KiB" >&2
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

INPUT=$(du -sb "$PREFIX" | cut -f1)
echo
echo "input: $INPUT bytes in $(find "$PREFIX" | wc -l) entries; $(nproc) cores; threads $THREADS; runs $RUNS"
printf '%-8s %10s %12s %14s %7s\n' tool "wall (s)" "peak RSS" "compressed" ratio
declare -A MED
for tool in "${TOOLS[@]}"; do
    MED[$tool]=$(echo "${WALLS[$tool]}" | median)
    size=$(stat -c %s "$WORK/$tool.tar.gz")
    printf '%-8s %10.2f %8d MiB %14d %7.3f\n' "$tool" "${MED[$tool]}" $(( RSS[$tool] / 1024 )) "$size" \
        "$(awk -v s="$size" -v i="$INPUT" 'BEGIN {print s/i}')"
done
gzip -t "$WORK/stackci.tar.gz"
awk -v a="${MED[stackci]}" -v b="${MED[pigz]}" 'BEGIN {printf "stackci/pigz wall-time ratio: %.2f\n", a/b}'
