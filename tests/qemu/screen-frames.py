#!/usr/bin/env python3
"""Replays what a program drew on a serial port (a QEMU `-serial file:`) as the screens
a terminal would have shown, and checks that they came in an order.

usage: screen-frames.py FILE 'TEXT && TEXT' ['TEXT'...]

The bytes are run through the small terminal of vt.py (which says why frames, not raw
bytes). Each argument is one step: substrings joined by ' && ' that one frame must all
contain; the steps must be met by frames in order (a step may share a later step's
frame). Exit 0 and print each step's frame when they are; otherwise exit 1 and print
the last frame and the step that no frame met.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vt import frames  # noqa: E402


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        fs = frames(f.read())
    steps = [s.split(" && ") for s in sys.argv[2:]]
    at = 0
    for step in steps:
        while at < len(fs) and not all(t in "\n".join(fs[at]) for t in step):
            at += 1
        if at == len(fs):
            print(f"screen-frames: {len(fs)} frame(s); none (in order) shows: {' && '.join(step)}")
            if fs:
                print("the last frame:")
                print("\n".join(l for l in fs[-1] if l.strip()))
            return 1
        print(f"--- frame {at + 1} of {len(fs)} shows: {' && '.join(step)}")
        print("\n".join(l for l in fs[at] if l.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
