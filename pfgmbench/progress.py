"""Progress of long work (training, sampling, scoring, sweeps): one implementation for all.

On a terminal: a rich progress bar on stderr. Otherwise (Slurm, nohup, CI): a plain line on
stderr every PFGMBENCH_PROGRESS_S seconds (default 30) and at the end, e.g.
  train: 12.3/30 kimg (41%) loss 0.412, 253 img/s, 2m10s left
A run folder's log.txt receives the same plain lines whatever stderr is. stdout carries results
only. Under torchrun only rank 0 speaks.
"""
import math
import os
import sys
import time

from pfgmbench import distributed


def interval_s():
    try:
        return max(0.0, float(os.environ.get("PFGMBENCH_PROGRESS_S", "30")))
    except ValueError:
        return 30.0


def log(message):
    """One line of progress or status on stderr (rank 0 only)."""
    if distributed.is_main():
        print(message, file=sys.stderr, flush=True)


def duration(seconds):
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """Progress from `start` to `total` (in `unit`s); update() with the absolute position."""

    def __init__(self, desc, total, unit="", start=0.0, enabled=True, logfile=None, rate_unit=None, rate_scale=1.0):
        self.desc, self.total, self.unit, self.start = desc, float(total), unit, float(start)
        self.rate_unit, self.rate_scale = rate_unit or f"{unit}/s", rate_scale
        self.logfile = logfile if distributed.is_main() else None
        self.enabled = enabled and distributed.is_main()
        self.bar = None
        self.done, self.info = self.start, ""
        self.t0 = self.t_line = time.time()
        self.every = interval_s()
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn(f"[bold]{desc}"), BarColumn(), TextColumn("{task.fields[text]}"),
                                    TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self.bar.start()
            self.task = self.bar.add_task(desc, total=self.total, completed=self.start, text=self._position())

    def _position(self):
        return f"{self.done:g}/{self.total:g} {self.unit}".rstrip()

    def line(self):
        elapsed = time.time() - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else float("nan")
        left = (self.total - self.done) / rate if rate and rate > 0 else float("inf")
        pct = 100 * self.done / self.total if self.total else 100.0
        parts = [f"{self.desc}: {self._position()} ({pct:.0f}%)"]
        if self.info:
            parts.append(self.info)
        if math.isfinite(rate):
            parts.append(f"{rate * self.rate_scale:.3g} {self.rate_unit}")
        parts.append(f"{duration(left)} left" if self.done < self.total else f"done in {duration(elapsed)}")
        return " ".join(parts[:1]) + " " + ", ".join(parts[1:])

    def update(self, done, info=""):
        self.done, self.info = float(done), info or self.info
        now = time.time()
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, text=f"{self._position()} {self.info}")
        if now - self.t_line >= self.every:
            self.t_line = now
            self._emit(plain=self.bar is None)

    def advance(self, n=1, info=""):
        self.update(self.done + n, info)

    def _emit(self, plain):
        text = self.line()
        if plain and self.enabled:
            print(text, file=sys.stderr, flush=True)
        if self.logfile is not None:
            with open(self.logfile, "a") as f:
                f.write(text + "\n")

    def close(self):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
            self._emit(plain=False)
        else:
            self._emit(plain=True)
