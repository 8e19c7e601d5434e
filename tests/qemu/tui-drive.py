#!/usr/bin/env python3
"""Drives the TUI on a VM's serial port as a person at the keyboard would: waits for screens,
presses keys. The port is QEMU's serial chardev on a Unix socket (run-vm.sh --serial-sock);
what comes out of it goes through vt.py's terminal, so each step sees the whole screen as
drawn, not the bytes that changed.

usage: tui-drive.py [--timeout S] [--fail-on TEXT]... [--show] SOCKET STEP...

Steps, in order:
  wait TEXT[ && TEXT...]   until one frame shows every TEXT (the frames since the last step)
  keys KEYS                send KEYS: text, with {Enter} {Esc} {Up} {Down} {Tab} {Backspace}
  select REGEX KEY         press KEY (e.g. {Down}) until the selected row (the one marked
                           '>') matches REGEX; at most 30 presses

--fail-on TEXT: any frame showing TEXT fails the run at once (an error screen), printing it.
--show: print the frame that met each wait step.
Each step waits at most --timeout seconds (default 120). Exit 0 when every step was met;
otherwise 1, with the step and the last frame.
"""
import os
import re
import select
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vt import Screen  # noqa: E402

KEYS = {
    "{Enter}": b"\r",
    "{Esc}": b"\x1b",
    "{Up}": b"\x1b[A",
    "{Down}": b"\x1b[B",
    "{Tab}": b"\t",
    "{Backspace}": b"\x7f",
}
TOKEN = re.compile(r"(\{[A-Za-z]+\})")


class Failed(Exception):
    pass


def encode(keys):
    out = b""
    for part in TOKEN.split(keys):
        if part in KEYS:
            out += KEYS[part]
        elif part.startswith("{") and part.endswith("}"):
            raise Failed(f"unknown key {part}")
        else:
            out += part.encode()
    return out


class Driver:
    def __init__(self, path, timeout, fail_on):
        self.sock = self._connect(path)
        self.screen = Screen()
        self.timeout = timeout
        self.fail_on = fail_on
        self.last = self.screen.text()
        self.fresh = []  # frames not yet looked at by a step

    @staticmethod
    def _connect(path):
        end = time.time() + 60
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except OSError as e:
                s.close()
                if time.time() > end:
                    raise Failed(f"cannot connect to the serial socket {path}: {e}")
                time.sleep(0.2)

    def _read(self, until, poll=0.5):
        """Reads what the port sends until `until` (a time), keeping completed frames;
        False when nothing came within `poll` seconds."""
        wait = max(0.0, until - time.time())
        ready, _, _ = select.select([self.sock], [], [], min(wait, poll))
        if not ready:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise Failed("the VM closed its serial port")
        for f in self.screen.feed(data):
            shown = "\n".join(f)
            for bad in self.fail_on:
                if bad in shown:
                    self.last = f
                    raise Failed(f"a screen shows {bad!r}")
            self.fresh.append(f)
            self.last = f
        return True

    def settle(self, quiet=0.5):
        """Reads until the screen has not changed for `quiet` seconds: a frame is cut
        wherever a read ends, so one seen mid-redraw can show a highlight that the
        next bytes move. (The TUI redraws on every tick, so the port itself is never
        quiet; only the picture is.)"""
        end = time.time() + self.timeout
        shown, since = self.screen.text(), time.time()
        while time.time() - since < quiet:
            if time.time() > end:
                raise Failed(f"the screen did not settle within {self.timeout} s")
            self._read(min(end, since + quiet), poll=quiet)
            now = self.screen.text()
            if now != shown:
                shown, since = now, time.time()
        self.last = shown

    def until(self, what, test):
        end = time.time() + self.timeout
        while True:
            while self.fresh:
                f = self.fresh.pop(0)
                if test(f):
                    self.fresh.clear()
                    self.last = f
                    return f
            if time.time() > end:
                raise Failed(f"no screen showed {what} within {self.timeout} s")
            self._read(end)

    def send(self, keys):
        self.sock.sendall(encode(keys))

    def selected(self, f):
        for row in f:
            m = re.match(r"^\|>(.*)", row)
            if m:
                return m.group(1)
        return None

    def step(self, step):
        verb, _, arg = step.partition(" ")
        if verb == "wait":
            texts = arg.split(" && ")
            return self.until(arg, lambda f: all(t in "\n".join(f) for t in texts))
        if verb == "keys":
            self.send(arg)
            return None
        if verb == "select":
            regex, _, key = arg.rpartition(" ")
            pat = re.compile(regex)
            for _ in range(30):
                self.settle()
                row = self.selected(self.last)
                if row is not None and pat.search(row):
                    return self.last
                self.fresh.clear()
                self.send(key)
                self.until("a frame after the key", lambda f: True)
            raise Failed(f"no row matching {regex!r} got selected with {key}")
        raise Failed(f"unknown step {step!r}")


def main(argv):
    timeout, fail_on, show = 120.0, [], False
    while argv and argv[0].startswith("--"):
        if argv[0] == "--show":
            show, argv = True, argv[1:]
            continue
        if argv[0] == "--timeout" and len(argv) > 1:
            timeout = float(argv[1])
        elif argv[0] == "--fail-on" and len(argv) > 1:
            fail_on.append(argv[1])
        else:
            print(__doc__, file=sys.stderr)
            return 2
        argv = argv[2:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        d = Driver(argv[0], timeout, fail_on)
    except Failed as e:
        print(f"tui-drive: {e}")
        return 1
    start = time.time()
    for n, step in enumerate(argv[1:], 1):
        try:
            f = d.step(step)
        except Failed as e:
            print(f"tui-drive: step {n} ({step}): {e}; the last frame:")
            print("\n".join(line for line in d.last if line.strip()))
            return 1
        # keys are not echoed: a step may type a passphrase
        label = " (keys)" if step.startswith("keys") else f": {step}"
        print(f"tui-drive: {time.time() - start:5.1f} s step {n}{label}")
        if show and f is not None and step.startswith("wait"):
            print("\n".join("    " + line for line in f if line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
