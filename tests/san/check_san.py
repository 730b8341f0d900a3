#!/usr/bin/env python3
"""check_san.py CANARY: in a sanitizer build, a sanitizer finding must fail its test.

Runs CANARY (tests/san/canary.c, built with the build's -fsanitize flags) in the environment that
`meson test` gives tests (with no --setup, the `san` test setup is the default in a sanitizer
build): `ok` must exit 0, and `ub` (UBSan), `heap` (ASan) and `leak` (LeakSanitizer) must each
print their report and exit 99, the status meson always counts as an error. Without the setup a
UBSan report exits 0 and a leak in a should_fail test passes as an expected failure.
Prints a line per check and `N passed, M failed`."""
import os
import subprocess
import sys

CHECKS = [("ok", 0, None), ("ub", 99, "runtime error"), ("heap", 99, "AddressSanitizer: heap-buffer-overflow"),
          ("leak", 99, "LeakSanitizer: detected memory leaks")]


def main(argv):
    canary = argv[1]
    passed = failed = 0
    env = {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}
    print("environment: " + (" ".join("%s=%s" % kv for kv in sorted(env.items())) or "no *SAN_OPTIONS"))
    for mode, want_rc, marker in CHECKS:
        p = subprocess.run([canary, mode], capture_output=True, text=True, timeout=120)
        problems = []
        if p.returncode != want_rc:
            problems.append("exit status %d, expected %d" % (p.returncode, want_rc))
        if marker and marker not in p.stderr:
            problems.append("no `%s` on stderr" % marker)
        if problems:
            failed += 1
            print("FAIL %s: %s" % (mode, "; ".join(problems)))
            for line in p.stderr.splitlines()[:8]:
                print("    | " + line)
        else:
            passed += 1
            print("ok   %s: exit %d%s" % (mode, p.returncode, ", " + marker if marker else ""))
    if failed:
        print("(is the `san` test setup of meson.build the default, with ASAN_OPTIONS exitcode=99 and "
              "UBSAN_OPTIONS halt_on_error=1:exitcode=99?)")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
