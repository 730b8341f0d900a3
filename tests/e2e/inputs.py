"""Shared by the end-to-end checks: reading an example's header and
generating its inputs.

read_header(path) returns the vocabulary (a list of str or int) and max_len
of a .tfm program; make_inputs(name, vocab, max_len) returns every sequence
of length 1..max_len when there are at most MAX_EXHAUSTIVE of them, else
RANDOM_COUNT random ones from a generator seeded with the program's name (so
every run and every checker sees the same inputs).

Standard library only.
"""

import itertools
import random
import re

MAX_EXHAUSTIVE = 6000
RANDOM_COUNT = 400


# --- reading the example's header ------------------------------------------


STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def strip_comments(text):
    """Removes `#` comments, leaving `#` inside string literals alone."""
    return STRING_OR_COMMENT.sub(
        lambda m: m.group(0) if m.group(0).startswith('"') else "", text
    )


def read_header(path):
    """Returns (vocab list, max_len) from the file's `vocab` and `max_len`."""
    with open(path, encoding="utf-8") as f:
        text = strip_comments(f.read())
    vocab_match = re.search(r'\bvocab\s*\{((?:"(?:[^"\\]|\\.)*"|[^}"])*)\}\s*;', text)
    max_len_match = re.search(r"\bmax_len\s+(\d+)\s*;", text)
    if not vocab_match or not max_len_match:
        raise ValueError("no `vocab {...};` or `max_len N;` found")
    body = vocab_match.group(1).strip()
    range_match = re.fullmatch(r"(-?\d+)\s*\.\.\s*(-?\d+)", body)
    if range_match:
        low, high = int(range_match.group(1)), int(range_match.group(2))
        vocab = list(range(low, high + 1))
    else:
        vocab = []
        for item in re.findall(r'"((?:[^"\\]|\\.)*)"|(-?\d+)', body):
            vocab.append(item[0] if item[1] == "" else int(item[1]))
    if not vocab:
        raise ValueError("empty vocabulary")
    return vocab, int(max_len_match.group(1))


# --- inputs ----------------------------------------------------------------


def count_sequences(vocab, max_len):
    """How many sequences of length 1..max_len the vocabulary makes."""
    return sum(len(vocab) ** n for n in range(1, max_len + 1))


def make_inputs(name, vocab, max_len):
    if count_sequences(vocab, max_len) <= MAX_EXHAUSTIVE:
        inputs = []
        for n in range(1, max_len + 1):
            inputs.extend(list(p) for p in itertools.product(vocab, repeat=n))
        return inputs
    rng = random.Random("check_examples:" + name)
    return [
        [rng.choice(vocab) for _ in range(rng.randint(1, max_len))]
        for _ in range(RANDOM_COUNT)
    ]


def format_input(seq):
    return " ".join(str(t) for t in seq)
