#!/usr/bin/env python3
"""Generate a deterministic install prefix for the packing benchmark.

Usage: gen-prefix.py OUT_DIR [--size-mib N] [--seed S]

Creates OUT_DIR/opt/stackci/bench-1.0-<seed> holding about N MiB (default 256) laid out
like a real package:
  - 40 % source-like text (include/, share/doc/, src/): C-like lines from a vocabulary;
  - 35 % binary-like data (lib/, bin/): skewed byte distribution with back-references,
    compressing roughly like machine code;
  - 25 % random bytes (share/data/): already-compressed assets, incompressible;
plus symlinks (lib/libbench.so -> libbench.so.1) and a hard link. The same seed gives
the same bytes on any machine. Prints the prefix path.
"""

import argparse
import os
import random

MIB = 1 << 20

WORDS = (
    "int unsigned char const static struct return if else for while void size_t uint8_t "
    "uint32_t buffer length offset state stream window hash table entry next prev head "
    "tail value result error status flags mode count index data ptr alloc free init "
    "update finish reset level block chunk crc adler deflate inflate huffman tree code "
    "bits match distance literal pending window_size strm avail_in avail_out total_out"
).split()
PUNCT = ["(", ")", ";", "{", "}", " = ", " + ", " - ", "->", ", ", " == ", " < ", "[", "]", "*", "&"]


def text_pool(rng, size):
    """Pseudo C source: indented lines of identifiers (a Zipf-weighted generated vocabulary
    besides C keywords), operators, comments and numbers; gzip -6 gets it to about a
    quarter of its size, like real source."""
    syllables = ["ab", "ac", "al", "an", "ar", "be", "ca", "co", "de", "di", "el", "en", "er", "fo", "ge", "in",
                 "is", "ka", "lo", "ma", "mi", "ne", "no", "or", "pa", "pe", "qu", "ra", "re", "si", "st", "ta",
                 "te", "th", "ti", "to", "un", "ve", "wi", "xo", "ze", "_", "_", "2", "3", "8"]
    ident = ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 6))) for _ in range(300)]
    vocab = WORDS + ident
    cum = []
    acc = 0.0
    for rank in range(len(vocab)):
        acc += 1.0 / (rank + 1) ** 1.1
        cum.append(acc)

    def words(n):
        return rng.choices(vocab, cum_weights=cum, k=n)

    lines = []
    total = 0
    depth = 0
    while total < size:
        kind = rng.random()
        if kind < 0.08:
            line = "/* " + " ".join(words(rng.randint(4, 12))) + " */"
        elif kind < 0.12:
            line = "#define %s 0x%08x" % ("_".join(words(2)).upper(), rng.getrandbits(32))
        elif kind < 0.2:
            depth = max(0, min(6, depth + rng.choice((-1, 1))))
            line = "}" if rng.random() < 0.5 else "if (%s %s %d) {" % (words(1)[0], rng.choice(PUNCT), rng.randint(0, 99999))
        else:
            line = "".join(w + rng.choice(PUNCT) for w in words(rng.randint(3, 10))).rstrip() + ";"
        line = "    " * depth + line + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def binary_pool(rng, size):
    """Machine-code-like bytes: a skewed byte distribution (many zeros and small values)
    with frequent copies of recent stretches, as LZ77 finds in real binaries."""
    # Map uniform bytes onto a skewed alphabet: ~30 % zero, the rest weighted towards
    # low values; `translate` keeps this fast.
    table = bytearray(256)
    for i in range(256):
        if i < 77:
            table[i] = 0
        elif i < 150:
            table[i] = (i - 77) % 16
        elif i < 200:
            table[i] = 0x40 + (i % 32)
        else:
            table[i] = rng.randrange(256)
    table = bytes(table)
    out = bytearray()
    while len(out) < size:
        if len(out) > 4096 and rng.random() < 0.45:
            n = rng.randint(8, 200)
            start = len(out) - rng.randint(n, 4096)
            out += out[start:start + n]
        else:
            out += rng.randbytes(rng.randint(16, 256)).translate(table)
    return bytes(out[:size])


def slice_of(rng, pool, n):
    """n bytes from pool at a random offset, wrapping around."""
    start = rng.randrange(len(pool))
    data = pool[start:start + n]
    while len(data) < n:
        data += pool[: n - len(data)]
    return data


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def fill(rng, prefix, sub, budget, sizes, make, ext, mode=0o644):
    """Files under prefix/sub with sizes drawn from `sizes` until `budget` bytes."""
    i = 0
    while budget > 0:
        n = min(budget, rng.randint(*sizes))
        d = os.path.join(prefix, sub, "d%02d" % (i % 7)) if sizes[1] < MIB else os.path.join(prefix, sub)
        write(os.path.join(d, "f%05d%s" % (i, ext)), make(n), mode)
        budget -= n
        i += 1
    return i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    total = args.size_mib * MIB
    prefix = os.path.join(os.path.abspath(args.out), "opt/stackci/bench-1.0-%d" % args.seed)
    if os.path.exists(prefix):
        raise SystemExit("%s exists" % prefix)

    text = text_pool(rng, 2 * MIB)
    binary = binary_pool(rng, 16 * MIB)
    t, b = total * 40 // 100, total * 35 // 100
    r = total - t - b
    fill(rng, prefix, "include", t // 4, (512, 40_000), lambda n: slice_of(rng, text, n), ".h")
    fill(rng, prefix, "src", t // 2, (2_000, 200_000), lambda n: slice_of(rng, text, n), ".c")
    fill(rng, prefix, "share/doc", t - t // 4 - t // 2, (1_000, 2 * MIB), lambda n: slice_of(rng, text, n), ".txt")
    fill(rng, prefix, "bin", b // 3, (100_000, 5 * MIB), lambda n: slice_of(rng, binary, n), "", 0o755)
    fill(rng, prefix, "lib", b - b // 3, (1 * MIB, 24 * MIB), lambda n: slice_of(rng, binary, n), ".so.1", 0o755)
    fill(rng, prefix, "share/data", r, (200_000, 16 * MIB), rng.randbytes, ".bin")
    os.symlink("f00000.so.1", os.path.join(prefix, "lib/libbench.so"))
    os.link(os.path.join(prefix, "lib/f00000.so.1"), os.path.join(prefix, "lib/libbench-hard.so.1"))
    print(prefix)


if __name__ == "__main__":
    main()
