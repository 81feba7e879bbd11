"""How far a long build has gone, from its first second: files read, then texts embedded, rate and time left.

On a terminal one line is redrawn at least once a second (a clock thread redraws
it when nothing else does, so a file that takes a minute to OCR shows its name and
how long it has taken); on a pipe or a log, where a redrawn line is noise, a
plain line is written every ``LOG_EVERY_S`` seconds and when a stage ends.
File names are the documents' own and pass through ``printable``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from qa.terminal import printable

#: Seconds between redraws on a terminal, and between plain lines on a pipe.
TTY_EVERY_S, LOG_EVERY_S = 0.5, 10.0
#: Seconds between two reports to a listener (qa serve's page and /healthz while it builds).
LISTENER_EVERY_S = 0.25
#: A file read for longer than this is named on the progress line.
SLOW_FILE_S = 2.0
#: Seconds of recent work the rate is measured over: it follows a change of speed, not the first minute.
RATE_WINDOW_S = 30.0


class Progress:
    """One stage at a time: ``start``, ``advance`` (optionally naming the item at work), ``finish``."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, listener=None):
        """``listener``, if given, is told each change as a dict (stage, done, total, current): ``qa serve``
        shows it on its page and in /healthz while it builds."""
        self.listener = listener
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = TTY_EVERY_S if self.tty else LOG_EVERY_S
        self._lock = threading.Lock()
        self._stage: str | None = None
        self._clock: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self, stage: str, total: int, done: int = 0, unit: str = "") -> None:
        """Begin a stage of ``total`` items, ``done`` of them already (resumed)."""
        with self._lock:
            self._stage, self.total, self.done, self.unit = stage, total, done, unit
            self._began = time.monotonic()
            self._samples = [(self._began, done)]
            self._current: tuple[str, float] | None = None
            self._shown = self._told = 0.0
            self._first_done = done
            self._draw(force=True)
        if self._clock is None:
            self._clock = threading.Thread(target=self._tick, name="qa-progress", daemon=True)
            self._clock.start()

    def advance(self, n: int = 1, current: str | None = None) -> None:
        """Count ``n`` more items done; ``current`` names the item now at work (None: none in particular)."""
        with self._lock:
            if self._stage is None:
                return
            self.done += n
            now = time.monotonic()
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW_S:
                self._samples.pop(0)
            self._current = (current, now) if current is not None else None
            self._tell()
            self._draw()

    def working_on(self, current: str | None) -> None:
        """Name the item at work, without counting one done."""
        with self._lock:
            self._current = (current, time.monotonic()) if current is not None else None

    def say(self, line: str) -> None:
        """Print a line of its own, above the progress line."""
        with self._lock:
            self._write(printable(line) + "\n", clear=True)
            self._draw(force=True)

    def finish(self) -> None:
        """End the stage: its last figures on a line of their own."""
        with self._lock:
            if self._stage is None:
                return
            self._draw(force=True, final=True)
            self._stage = None

    def close(self) -> None:
        self.finish()
        self._stopping.set()

    def line(self) -> str:
        """Return the progress line as it would be drawn now."""
        parts = [f"{self._stage}: {self.done:,}/{self.total:,}"]
        rate = self.rate()
        if rate:
            parts.append(f"{rate:,.1f} {self.unit or 'items'}/s" if rate < 10 else f"{rate:,.0f} {self.unit or 'items'}/s")
            left = (self.total - self.done) / rate
            if self.done < self.total:
                parts.append(f"{_duration(left)} left")
        if self._current is not None and time.monotonic() - self._current[1] >= SLOW_FILE_S:
            name, since = self._current
            parts.append(f"{printable(name, keep_newlines=False)} ({_duration(time.monotonic() - since)})")
        return ", ".join(parts)

    def rate(self) -> float | None:
        """Items a second over the recent window; None before there is anything to measure."""
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 and d1 > d0 else None

    def _tick(self) -> None:
        while not self._stopping.wait(min(1.0, self.every)):
            with self._lock:
                if self._stage is not None:
                    self._draw()

    def snapshot(self) -> dict | None:
        """The stage as it stands: what it is, how many of how many, the item at work; None between stages."""
        if self._stage is None:
            return None
        return {"stage": self._stage, "done": self.done, "total": self.total,
                "current": self._current[0] if self._current else None}

    def _tell(self, final: bool = False) -> None:
        """Tell the listener how things stand, at most ``LISTENER_EVERY_S`` apart (and always at a stage's ends)."""
        now = time.monotonic()
        if self.listener is None or (not final and now - self._told < LISTENER_EVERY_S and self.done != self.total
                                     and self.done != self._first_done):
            return
        self._told = now
        try:
            self.listener(None if final else self.snapshot())
        except Exception:  # noqa: BLE001 - a listener's trouble must not stop a build
            pass

    def _draw(self, force: bool = False, final: bool = False) -> None:
        if self._stage is None:
            return
        self._tell(final)
        now = time.monotonic()
        if not force and now - self._shown < self.every:
            return
        self._shown = now
        if self.tty:
            self._write("\r\033[K" + self.line() + ("\n" if final else ""))
        else:
            self._write(self.line() + ("" if not final else f" in {_duration(now - self._began)}") + "\n")

    def _write(self, text: str, clear: bool = False) -> None:
        if clear and self.tty:
            text = "\r\033[K" + text
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not stop a build


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
