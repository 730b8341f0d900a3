#!/usr/bin/env python3
"""check_layers.py NM LAYER=LIB[,LIB...] ...

The layers of libtfmc, bottom to top (support, frontend, ir, passes, backends, lib), each built
as its own static library. A layer's object files may use symbols of its own layer and of the
layers below it, never of a layer above (docs/design.md, section 3): every undefined symbol of a
layer's objects that some tfmc layer defines must be defined at or below it. As a check of the
check, the layers read top to bottom must show violations (the layers do use each other).
Standard library and `nm` only."""
import subprocess, sys


def symbols(nm, lib):
    """(defined, undefined) global symbols of a static library."""
    out = subprocess.run([nm, "-g", "--no-sort", lib], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCVWG":
            defined.add(parts[2])
    return defined, undefined


def violations(nm, layers):
    """[(layer, symbol, owner)] for symbols a layer takes from a layer after it in `layers`."""
    owner, needs = {}, []
    for i, (name, libs) in enumerate(layers):
        undef = set()
        for lib in libs:
            d, u = symbols(nm, lib)
            for s in d:
                owner.setdefault(s, i)
            undef |= u
        needs.append(undef)
    found = []
    for i, (name, _) in enumerate(layers):
        for s in sorted(needs[i]):
            if s in owner and owner[s] > i:
                found.append((name, s, layers[owner[s]][0]))
    return found


def main():
    nm = sys.argv[1]
    layers = []
    for arg in sys.argv[2:]:
        name, libs = arg.split("=", 1)
        layers.append((name, libs.split(",")))
    bad = violations(nm, layers)
    for layer, sym, above in bad:
        print("FAIL: %s uses `%s` of %s, a layer above it" % (layer, sym, above))
    upside_down = violations(nm, list(reversed(layers)))
    if not upside_down:
        print("FAIL: read top to bottom the layers show no use of each other: the check sees nothing")
    print("%d layers, %d upward uses (%d when read upside down)" % (len(layers), len(bad), len(upside_down)))
    return 1 if bad or not upside_down else 0


if __name__ == "__main__":
    sys.exit(main())
