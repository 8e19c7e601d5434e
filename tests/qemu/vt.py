"""A small ANSI terminal of 80x25 cells: what ratatui's crossterm backend sends (cursor moves,
clears, colours, text) replayed as the screens a terminal would have shown. A frame is the
screen as it stands at each end of a draw (ratatui hides the cursor, ESC[?25l, after every
draw). Used by screen-frames.py (a finished serial log) and tui-drive.py (a live serial port,
fed as bytes arrive: a sequence cut between two reads waits for the rest).

Why not grep the raw bytes: the backend sends only the cells that changed, and a blank cell it
skips with a cursor move, so "waiting for the server" is never one run of bytes on the wire.
"""
import re

W, H = 80, 25
CSI = re.compile(rb"\x1b\[([?0-9;]*)([A-Za-z@])")
# An escape sequence that may still be arriving: ESC, or ESC [ and parameters so far.
PARTIAL_CSI = re.compile(rb"\x1b(\[[?0-9;]*)?\Z")


class Screen:
    def __init__(self):
        self.cells = [[" "] * W for _ in range(H)]
        self.row = self.col = 0
        self.pending = b""

    def text(self):
        return ["".join(r).rstrip() for r in self.cells]

    def feed(self, data):
        """Applies DATA (bytes) and returns the frames it completed, each a list of rows."""
        text = self.pending + data
        self.pending = b""
        out = []
        i = 0
        while i < len(text):
            b = text[i]
            if b == 0x1B:
                m = CSI.match(text, i)
                if not m:
                    if PARTIAL_CSI.match(text, i):
                        self.pending = text[i:]
                        break
                    i += 1
                    continue
                i = m.end()
                if self._csi(m.group(1).decode(), m.group(2).decode()):
                    out.append(self.text())
                continue
            if b == 0x0D:
                self.col = 0
            elif b == 0x0A:
                self.row += 1
            elif b >= 0x20:
                # One cell per character (UTF-8 continuation bytes take none).
                j = i + 1
                while j < len(text) and 0x80 <= text[j] < 0xC0:
                    j += 1
                if j == len(text) and b >= 0xC0 and j - i < (2 if b < 0xE0 else 3 if b < 0xF0 else 4):
                    self.pending = text[i:]
                    break
                ch = text[i:j].decode("utf-8", "replace")
                if 0 <= self.row < H and 0 <= self.col < W:
                    self.cells[self.row][self.col] = ch
                self.col += 1
                i = j
                continue
            i += 1
        return out

    def _csi(self, params, cmd):
        """Applies one CSI sequence; True when it ends a frame."""
        nums = [int(p) if p.isdigit() else 0 for p in params.lstrip("?").split(";")] if params else []
        if cmd in ("H", "f"):
            self.row = (nums[0] if nums and nums[0] else 1) - 1
            self.col = (nums[1] if len(nums) > 1 and nums[1] else 1) - 1
        elif cmd == "J":
            mode = nums[0] if nums else 0
            if mode in (2, 3):
                self.cells = [[" "] * W for _ in range(H)]
            elif mode == 0:
                self._clear_line_from_cursor()
                for r in range(self.row + 1, H):
                    self.cells[r] = [" "] * W
        elif cmd == "K":
            self._clear_line_from_cursor()
        elif cmd == "l" and params == "?25":
            return True
        # colours (m), cursor show (?25h) and the rest change no cell
        return False

    def _clear_line_from_cursor(self):
        if 0 <= self.row < H:
            self.cells[self.row][self.col :] = [" "] * (W - min(self.col, W))


def frames(data):
    """Every frame of a whole serial log."""
    return Screen().feed(data)
