#!/usr/bin/env python3
"""Replays what a program drew on a serial port (a QEMU `-serial file:`) as the screens
a terminal would have shown, and checks that they came in an order.

usage: screen-frames.py FILE 'TEXT && TEXT' ['TEXT'...]

The bytes are run through a small ANSI terminal of 80x25 cells (what ratatui's
crossterm backend sends: cursor moves, clears, colours, text); a frame is the screen
as it stands at each end of a draw (ratatui hides the cursor, ESC[?25l, after every
draw). Each argument is one step: substrings joined by ' && ' that one frame must all
contain; the steps must be met by frames in order (a step may share a later step's
frame). Exit 0 and print each step's frame when they are; otherwise exit 1 and print
the last frame and the step that no frame met.

Why not grep the raw bytes: the backend sends only the cells that changed, and a blank
cell it skips with a cursor move, so "waiting for the server" is never one run of
bytes on the wire.
"""
import re
import sys

W, H = 80, 25
CSI = re.compile(rb"\x1b\[([?0-9;]*)([A-Za-z@])")


def frames(data):
    screen = [[" "] * W for _ in range(H)]
    row = col = 0
    out = []
    i = 0
    text = data
    while i < len(text):
        b = text[i]
        if b == 0x1B:
            m = CSI.match(text, i)
            if not m:
                i += 1
                continue
            params, cmd = m.group(1).decode(), m.group(2).decode()
            i = m.end()
            nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params else []
            if cmd == "H" or cmd == "f":
                row = (nums[0] if nums and nums[0] else 1) - 1
                col = (nums[1] if len(nums) > 1 and nums[1] else 1) - 1
            elif cmd == "J":
                mode = nums[0] if nums else 0
                if mode == 2 or mode == 3:
                    screen = [[" "] * W for _ in range(H)]
                elif mode == 0:
                    if 0 <= row < H:
                        screen[row][col:] = [" "] * (W - min(col, W))
                    for r in range(row + 1, H):
                        screen[r] = [" "] * W
            elif cmd == "K":
                if 0 <= row < H:
                    screen[row][col:] = [" "] * (W - min(col, W))
            elif cmd == "l" and params == "?25":
                out.append(["".join(r).rstrip() for r in screen])
            # colours (m), cursor show (?25h) and the rest change no cell
            continue
        if b == 0x0D:
            col = 0
        elif b == 0x0A:
            row += 1
        elif b >= 0x20:
            # One cell per character (UTF-8 continuation bytes take none).
            j = i + 1
            while j < len(text) and 0x80 <= text[j] < 0xC0:
                j += 1
            ch = text[i:j].decode("utf-8", "replace")
            if 0 <= row < H and 0 <= col < W:
                screen[row][col] = ch
            col += 1
            i = j
            continue
        i += 1
    return out


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
