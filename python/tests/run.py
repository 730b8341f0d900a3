#!/usr/bin/env python3
"""run.py LIBTFMC TFMC_EXE [SANITIZED]: the Python package's pytest tests, as the suite runs them.

Runs `python -m pytest -q python/tests` with TFMC_LIBRARY and TFMC_EXE set, under the
interpreter running this script (the suite gives it Debian's /usr/bin/python3, which has numpy
and pytest). Prints `skipped: ...` and exits 77 (meson's skip code) when numpy or pytest is
missing, or in a sanitizer build (an ASan-instrumented libtfmc.so cannot load into an
uninstrumented Python)."""
import os
import subprocess
import sys


def main(argv):
    lib, exe = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    if len(argv) > 3 and argv[3] == "sanitized":
        print("skipped: a sanitizer build's libtfmc.so cannot load into an uninstrumented Python")
        return 77
    for module in ("numpy", "pytest"):
        try:
            __import__(module)
        except ImportError:
            print("skipped: %s has no %s (Debian: apt-get install python3-numpy python3-pytest)" % (sys.executable, module))
            return 77
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, TFMC_LIBRARY=lib, TFMC_EXE=exe, PYTHONPATH=os.path.dirname(here),
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", here], env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
