#!/usr/bin/env python3
"""Write a synthetic stack.yaml of N packages with a realistic dependency DAG.

    bench/gen-synthetic.py N [-o FILE] [--seed S]

Package i depends on 0 to 6 earlier packages, picked with a bias towards the first ones
(index = i * u^2 for u uniform in [0, 1)): a few core libraries end up with a very large
fan-in and chains stay shallow, as in real stacks (the SLAC Spack lockfile: 514 specs,
depth 31). Recipes are `true` and there are no sources, so the file only exercises
planning and generation. Deterministic for a given N and seed.
"""
import argparse
import random
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of packages")
    ap.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    width = len(str(max(args.n - 1, 1)))
    out = [f"name: synthetic-{args.n}", "packages:"]
    for i in range(args.n):
        deps = set()
        if i > 0:
            for _ in range(rng.randint(0, 6)):
                deps.add(int(i * rng.random() ** 2))
        out.append(f"  p{i:0{width}d}:")
        out.append('    version: "1.0"')
        if deps:
            out.append("    depends: [" + ", ".join(f"p{d:0{width}d}" for d in sorted(deps)) + "]")
        out.append("    build: \"true\"")
    text = "\n".join(out) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
