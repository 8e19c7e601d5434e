#!/usr/bin/env python3
"""A scripted "day of use" on a mounted filesystem (issue 19), for scripts/dedup-fixtures.sh.

Usage: dedup_day.py MOUNTPOINT SCALE

At SCALE 1: 300 files appended to (4 KiB to 400 KiB each), 100 edited (half overwritten
in place by a few KiB in the middle, half rewritten with one inserted line through a new
file and a rename, as an editor saves), 100 deleted, 40 MiB of new files (half copies of
existing files under new names, half fresh text and incompressible bytes). Counts and the
new bytes scale with SCALE (at least one of each). Seeded: the same tree gives the same day.
"""

import os
import random
import sys

ROOT, SCALE = sys.argv[1], float(sys.argv[2])
r = random.Random(19)
KIB, MIB = 1 << 10, 1 << 20


def count(n):
    return max(1, round(n * SCALE))


def log_size(lo, hi):
    """A size between lo and hi, spread evenly on a log scale (many small, few large)."""
    return int(lo * (hi / lo) ** r.random())


WORDS = "ok error warn user login session request reply cache disk net timer job".split()


def text(n):
    """Log-like lines: what an application appends to its files in a day."""
    out, t = [], 1_700_000_000
    size = 0
    while size < n:
        t += r.randrange(1, 90)
        words = " ".join(r.choice(WORDS) for _ in range(r.randrange(3, 12)))
        line = f"{t} host{r.randrange(4)} svc[{r.randrange(100, 9999)}]: {words} id={r.getrandbits(32):08x}\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def slice_of(files, n):
    """n bytes from one of the existing files: data that looks like the rest of the disk."""
    path = r.choice(files)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(r.randrange(max(1, size - n)))
        return f.read(n)


def content(files, n):
    return text(n) if r.random() < 0.5 else slice_of(files, n)


files = sorted(
    os.path.join(d, name)
    for d, _, names in os.walk(ROOT)
    for name in names
    if os.path.isfile(os.path.join(d, name)) and not os.path.islink(os.path.join(d, name))
)
n_append, n_edit, n_delete = count(300), count(100), count(100)
# Editors touch files of moderate size; appends and deletes hit any file.
editable = [f for f in files if 16 * KIB <= os.path.getsize(f) <= 2 * MIB]
edit = r.sample(editable, n_edit)
edited = set(edit)
rest = [f for f in files if f not in edited]
picked = r.sample(rest, n_append + n_delete)
append, delete = picked[:n_append], picked[n_append:]

for path in append:
    data = content(files, log_size(4 * KIB, 400 * KIB))
    with open(path, "ab") as f:
        f.write(data)

for i, path in enumerate(edit):
    size = os.path.getsize(path)
    if i % 2 == 0:
        # A program updating a record in place: a few KiB in the middle change.
        n = log_size(1 * KIB, 8 * KIB)
        with open(path, "r+b") as f:
            f.seek(r.randrange(size // 4, max(size // 4 + 1, 3 * size // 4 - n)))
            f.write(r.randbytes(n) if r.random() < 0.3 else text(n))
    else:
        # An editor's save: the whole file written anew with one line inserted.
        with open(path, "rb") as f:
            old = f.read()
        at = old.find(b"\n", r.randrange(len(old)))
        at = len(old) if at < 0 else at + 1
        line = f"# edited: {r.getrandbits(64):016x} {' '.join(r.choices(WORDS, k=6))}\n"
        tmp = path + ".new~"
        with open(tmp, "wb") as f:
            f.write(old[:at] + line.encode() + old[at:])
        os.replace(tmp, path)

for path in delete:
    os.remove(path)

# New files: downloads, documents, a copied folder; some next to old files, some in a new one.
new_dir = os.path.join(ROOT, "home", "user", "day")
os.makedirs(new_dir, exist_ok=True)
deleted = set(delete)
survivors = [f for f in files if f not in deleted]
dirs = sorted({os.path.dirname(f) for f in survivors})
budget, i = max(MIB, round(40 * MIB * SCALE)), 0
while budget > 0:
    n = min(budget, log_size(8 * KIB, 4 * MIB))
    where = new_dir if r.random() < 0.5 else r.choice(dirs)
    kind = r.random()
    if kind < 0.5:
        with open(r.choice(survivors), "rb") as f:
            data = f.read(n)
    elif kind < 0.75:
        data = text(n)
    else:
        data = r.randbytes(n)  # photos, archives: incompressible
    with open(os.path.join(where, f"new{i:04d}.dat"), "wb") as f:
        f.write(data)
    # A short copy source still uses up its slot, so the loop always ends.
    budget, i = budget - max(len(data), n // 2), i + 1
os.sync()
