"""Names of the builtin Spack packages a trimmed Spack must keep, one per line.

Run with Spack's own interpreter: `spack python scripts/spack-closure.py ROOT...`.
Kept: every package that can appear in the dependency graph of a ROOT (virtual
dependencies expanded to all their providers), then, recursively, every package whose
module a kept package.py imports (`from spack.pkg.builtin.X import ...`), with its own
closure. The concretizer only loads packages that can be possible dependencies, so a
repository reduced to this set concretizes the roots exactly as the full one does.
Used by scripts/vendor-spack.sh.
"""
import os
import re
import sys

import spack.repo

IMPORT = re.compile(r"^\s*(?:from|import)\s+spack\.pkg\.builtin\.([A-Za-z0-9_]+)", re.M)


def main(roots):
    repo = spack.repo.PATH
    builtin = repo.get_repo("builtin")
    todo = list(roots)
    keep, virtuals = set(), set()
    while todo:
        name = todo.pop()
        if name in keep or name in virtuals:
            continue
        if repo.is_virtual(name):
            virtuals.add(name)
            todo.extend(p.name for p in repo.providers_for(name))
            continue
        if not repo.exists(name):
            continue
        keep.add(name)
        todo.extend(repo.get_pkg_class(name).dependency_names())
        with open(builtin.filename_for_package_name(name)) as f:
            for module in IMPORT.findall(f.read()):
                dashed = module.replace("_", "-")
                todo.append(dashed if repo.exists(dashed) else module)
    print("\n".join(sorted(keep)))


if __name__ == "__main__":
    main(sys.argv[1:])
