#!/usr/bin/env python3
"""The documentation stands alone: check_docs.py REPO_ROOT

README.md and docs/*.md may refer only to files inside the repository: no absolute path to a
machine's folders (/work/..., /home/...), no relative path that climbs out of the repository
(`../x` from the top, `../../x` from docs/), and every relative Markdown link names a file that
exists. Prints one line per problem; exits non-zero on any.
"""
import os
import re
import sys

ABSOLUTE = re.compile(r"(?<![\w.:/])/(?:work|home|tmp|root|mnt|srv)/[\w./-]+")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
CLIMB = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]+(?:/[\w.-]+)*")


def problems_in(root, path):
    rel = os.path.relpath(path, root)
    folder = os.path.dirname(path)
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            for m in ABSOLUTE.finditer(line):
                out.append("%s:%d: a path outside the repository: %s" % (rel, lineno, m.group(0)))
            for m in CLIMB.finditer(line):
                target = os.path.normpath(os.path.join(folder, m.group(0)))
                if os.path.relpath(target, root).startswith(".."):
                    out.append("%s:%d: a path that leaves the repository: %s" % (rel, lineno, m.group(0)))
            for m in LINK.finditer(line):
                link = m.group(1)
                if "://" in link or link.startswith("mailto:"):
                    continue
                target = os.path.normpath(os.path.join(folder, link))
                if os.path.relpath(target, root).startswith("..") or not os.path.exists(target):
                    out.append("%s:%d: a link to no file of the repository: %s" % (rel, lineno, link))
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: check_docs.py REPO_ROOT\n")
        return 2
    root = os.path.abspath(argv[1])
    docs = os.path.join(root, "docs")
    paths = [os.path.join(root, "README.md")] + sorted(
        os.path.join(docs, f) for f in os.listdir(docs) if f.endswith(".md"))
    problems = []
    for p in paths:
        problems += problems_in(root, p)
    for p in problems:
        print(p)
    print("%d files, %d problems" % (len(paths), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
