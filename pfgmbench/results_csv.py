"""Append-only CSV of results, one row per cell, keyed by a hash of the cell's resolved config.

Rows are appended with one write + fsync each; on open, a torn last line (a kill mid-write)
is dropped and the file rewritten atomically, so a restarted sweep sees only whole rows.
"""
import csv
import hashlib
import io
import json
from pathlib import Path

from pfgmbench.atomic import append_line, write_text


def cell_key(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ResultsCSV:
    def __init__(self, path, columns, write=True):
        """write=False (ranks other than 0 under torchrun): read, keep rows in memory, never write."""
        self.path, self.columns, self.write = Path(path), list(columns), write
        self.rows = []
        if self.path.exists():
            self._load()
        elif write:
            write_text(self.path, self._line(dict(zip(self.columns, self.columns))))

    def _line(self, row):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([_fmt(row.get(c, "")) for c in self.columns])
        return buf.getvalue()

    def _load(self):
        text = self.path.read_text()
        lines = text.splitlines(keepends=True)
        if not lines:
            write_text(self.path, self._line(dict(zip(self.columns, self.columns))))
            return
        header = next(csv.reader([lines[0]]))
        good, torn = [], False
        for ln in lines[1:]:
            vals = next(csv.reader([ln]), [])
            if not ln.endswith("\n") or len(vals) != len(header):
                torn = True
                continue
            good.append(dict(zip(header, vals)))
        if header != self.columns:
            # an older file with other columns: keep its rows, rewrite in the current layout
            torn = True
        self.rows = good
        if torn and self.write:
            write_text(self.path, self._line(dict(zip(self.columns, self.columns)))
                       + "".join(self._line(r) for r in good))

    def keys(self):
        return {r.get("cell") for r in self.rows}

    def append(self, row):
        if self.write:
            append_line(self.path, self._line(row))
        self.rows.append({c: _fmt(row.get(c, "")) for c in self.columns})


def _fmt(v):
    if isinstance(v, float):
        return "inf" if v == float("inf") else repr(v)
    return "" if v is None else str(v)
