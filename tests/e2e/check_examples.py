#!/usr/bin/env python3
"""Differential test of examples/*.tfm against plain-Python references.

Usage: check_examples.py TFMC_PATH EXAMPLES_DIR

For every example program, reads its vocabulary and max_len from the file,
generates inputs (every sequence of length 1..max_len when there are at most
MAX_EXHAUSTIVE of them, else RANDOM_COUNT seeded random ones), runs
`TFMC eval FILE` once with all inputs on standard input, and compares each
output line with a reference written from the task's definition (not from the
RASP program). Then checks the bad-input behaviour of spec section 3 on
reverse.tfm. Prints one line per check and a final `N passed, M failed`;
exits 1 on any failure.

Header reading and input generation are in inputs.py (shared with
check_compiled.py). Standard library only.
"""

import itertools
import os
import re
import subprocess
import sys

# Header reading and input generation, shared with check_compiled.py.
from inputs import format_input, make_inputs, read_header
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import limits  # noqa: E402  (tests/limits.py: scaled timeouts, confirmed by a rerun)

FLOAT_TOLERANCE = 1e-6
RUN_TIMEOUT_SECONDS = 300

# A reference maps the input tokens (a list of str or int) to the expected
# output list. None stands for an undefined value (printed `_`), bool for
# true/false, float for a numerical output compared within FLOAT_TOLERANCE.


def ref_length(seq):
    return [len(seq)] * len(seq)


def ref_reverse(seq):
    return list(reversed(seq))


def ref_hist(seq):
    return [seq.count(t) for t in seq]


def ref_sort_unique(seq):
    # Sorted order is only defined for unique keys. With repeats, every copy
    # of a value targets the same slot (the number of smaller tokens): that
    # slot shows the value and the slots its other copies would fill are
    # undefined.
    out = []
    for value, group in itertools.groupby(sorted(seq)):
        out.append(value)
        out.extend([None] * (len(list(group)) - 1))
    return out


def ref_sort(seq):
    return sorted(seq)


def ref_sort_freq(seq):
    # Most frequent first; Python's sort is stable, so ties keep input order.
    return sorted(seq, key=lambda t: -seq.count(t))


def ref_frac_prevs(seq):
    out = []
    seen = 0
    for i, t in enumerate(seq):
        seen += t == "x"
        out.append(seen / (i + 1))
    return out


def ref_pair_balance(seq):
    out = []
    depth = 0
    for i, t in enumerate(seq):
        depth += (t == "(") - (t == ")")
        out.append(depth / (i + 1))
    return out


def balanced(seq, pairs):
    """Each bracket pair on its own never goes below zero and ends at zero."""
    for open_token, close_token in pairs:
        depth = 0
        for t in seq:
            if t == open_token:
                depth += 1
            elif t == close_token:
                depth -= 1
                if depth < 0:
                    return False
        if depth != 0:
            return False
    return True


def ref_shuffle_dyck1(seq):
    return [1 if balanced(seq, ["()"]) else 0] * len(seq)


def ref_shuffle_dyck2(seq):
    return [1 if balanced(seq, ["()", "{}"]) else 0] * len(seq)


def ref_count_less_freq(seq):
    # Tracr's make_count_less_freq(2): positions whose token occurs <= 2 times.
    n = sum(1 for t in seq if seq.count(t) <= 2)
    return [n] * len(seq)


def ref_running_max(seq):
    return [max(seq[: i + 1]) for i in range(len(seq))]


def ref_count_a(seq):
    return [seq[: i + 1].count("a") for i in range(len(seq))]


def ref_shift_right(seq):
    return [None] + list(seq[:-1])


def ref_detect_pattern(seq):
    pattern = ["a", "b", "c"]
    out = []
    for i in range(len(seq)):
        if i < len(pattern) - 1:
            out.append(None)
        else:
            out.append(list(seq[i - len(pattern) + 1 : i + 1]) == pattern)
    return out


REFERENCES = {
    "length": ref_length,
    "reverse": ref_reverse,
    "hist": ref_hist,
    "sort_unique": ref_sort_unique,
    "sort": ref_sort,
    "sort_freq": ref_sort_freq,
    "frac_prevs": ref_frac_prevs,
    "pair_balance": ref_pair_balance,
    "shuffle_dyck1": ref_shuffle_dyck1,
    "shuffle_dyck2": ref_shuffle_dyck2,
    "count_less_freq": ref_count_less_freq,
    "running_max": ref_running_max,
    "count_a": ref_count_a,
    "shift_right": ref_shift_right,
    "detect_pattern": ref_detect_pattern,
}

# The program used for the bad-input check.
BAD_INPUT_PROGRAM = "reverse"


# --- comparing -------------------------------------------------------------


def format_expected(value):
    if value is None:
        return "_"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "%.9g" % value
    return str(value)


def value_matches(expected, got):
    if expected is None:
        return got == "_"
    if isinstance(expected, bool):
        return got == ("true" if expected else "false")
    if isinstance(expected, float):
        try:
            return abs(float(got) - expected) <= FLOAT_TOLERANCE
        except ValueError:
            return False
    return got == str(expected)


def line_matches(expected, line):
    got = line.split(" ") if line != "" else []
    if len(got) != len(expected):
        return False
    return all(value_matches(e, g) for e, g in zip(expected, got))


def run_eval(tfmc, path, stdin_text):
    return limits.sprun(
        [tfmc, "eval", path],
        input=stdin_text,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )


def first_lines(text, count=5):
    lines = text.splitlines()
    shown = "\n      ".join(lines[:count])
    if len(lines) > count:
        shown += "\n      ... (%d lines)" % len(lines)
    return shown


def check_program(tfmc, path, name):
    """Returns (ok, message)."""
    reference = REFERENCES.get(name)
    if reference is None:
        return False, "no reference function for %s" % name
    try:
        vocab, max_len = read_header(path)
    except (OSError, ValueError) as e:
        return False, "cannot read header: %s" % e
    inputs = make_inputs(name, vocab, max_len)
    stdin_text = "".join(format_input(seq) + "\n" for seq in inputs)
    try:
        result = run_eval(tfmc, path, stdin_text)
    except subprocess.TimeoutExpired:
        return False, "timed out after %d s (twice)" % limits.scaled(RUN_TIMEOUT_SECONDS)
    except OSError as e:
        return False, "cannot run %s: %s" % (tfmc, e)
    problems = []
    if result.returncode != 0:
        problems.append(
            "exit status %d, stderr:\n      %s"
            % (result.returncode, first_lines(result.stderr))
        )
    lines = result.stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(inputs):
        problems.append("%d output lines for %d inputs" % (len(lines), len(inputs)))
    mismatches = []
    for seq, line in zip(inputs, lines):
        expected = reference(seq)
        if not line_matches(expected, line):
            mismatches.append((seq, expected, line))
    if mismatches:
        problems.append("%d of %d inputs differ" % (len(mismatches), len(inputs)))
        for seq, expected, line in mismatches[:5]:
            problems.append(
                "input %r: expected %r, got %r"
                % (
                    format_input(seq),
                    " ".join(format_expected(v) for v in expected),
                    line,
                )
            )
    if problems:
        return False, "\n    ".join(problems)
    return True, "%d inputs" % len(inputs)


def check_bad_input(tfmc, path):
    """Spec section 3: bad lines give an empty stdout line, one stderr line
    naming the input line, exit status 1 at the end; other lines answered."""
    vocab, max_len = read_header(path)
    unknown = "zz"
    while unknown in [str(v) for v in vocab]:
        unknown += "z"
    good_first = vocab[:2] if len(vocab) >= 2 else vocab[:1]
    good_last = [vocab[-1]]
    lines = [
        (format_input(good_first), True),                      # line 1
        (format_input([vocab[0], unknown]), False),            # line 2: unknown token
        (format_input([vocab[0]] * (max_len + 1)), False),     # line 3: too long
        ("", False),                                           # line 4: empty
        (format_input(good_last), True),                       # line 5
    ]
    stdin_text = "".join(text + "\n" for text, _ in lines)
    try:
        result = run_eval(tfmc, path, stdin_text)
    except (subprocess.TimeoutExpired, OSError) as e:
        return False, "cannot run: %s" % e
    problems = []
    if result.returncode != 1:
        problems.append("exit status %d, expected 1" % result.returncode)
    out_lines = result.stdout.split("\n")
    if out_lines and out_lines[-1] == "":
        out_lines.pop()
    expected_out = [
        format_input(ref_reverse(good_first)),
        "",
        "",
        "",
        format_input(ref_reverse(good_last)),
    ]
    if out_lines != expected_out:
        problems.append("stdout %r, expected %r" % (out_lines, expected_out))
    err_lines = [l for l in result.stderr.split("\n") if l.strip() != ""]
    bad_numbers = [n for n, (_, good) in enumerate(lines, start=1) if not good]
    if len(err_lines) != len(bad_numbers):
        problems.append(
            "%d stderr lines, expected %d: %r"
            % (len(err_lines), len(bad_numbers), err_lines)
        )
    else:
        for number, err in zip(bad_numbers, err_lines):
            if not re.search(r"(?<![0-9])%d(?![0-9])" % number, err):
                problems.append("stderr line %r does not name input line %d" % (err, number))
    if problems:
        return False, "\n    ".join(problems)
    return True, "unknown token, too long and empty lines rejected"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: check_examples.py TFMC_PATH EXAMPLES_DIR\n")
        return 2
    tfmc, examples_dir = argv[1], argv[2]
    limits.configure(tfmc)
    files = sorted(f for f in os.listdir(examples_dir) if f.endswith(".tfm"))
    passed = failed = 0

    def report(ok, label, message):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print("%s %s: %s" % ("ok" if ok else "FAIL", label, message), flush=True)

    names = []
    for file_name in files:
        name = file_name[: -len(".tfm")]
        names.append(name)
        ok, message = check_program(tfmc, os.path.join(examples_dir, file_name), name)
        report(ok, name, message)
    for name in sorted(set(REFERENCES) - set(names)):
        report(False, name, "example %s.tfm is missing" % name)

    bad_path = os.path.join(examples_dir, BAD_INPUT_PROGRAM + ".tfm")
    if os.path.exists(bad_path):
        ok, message = check_bad_input(tfmc, bad_path)
        report(ok, BAD_INPUT_PROGRAM + " (bad input)", message)

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
