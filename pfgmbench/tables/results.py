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


# One row per (table, model, seed, checkpoint, stress setting), with what produced it.
COLUMNS = ["cell", "table", "preset", "scale", "data", "family", "method", "knobs", "paper_knobs", "variant", "cond", "N",
           "seed", "kimg", "checkpoint", "metric", "value", "value_se", "n", "floor", "floor_n", "sampler", "steps", "nfe",
           "alpha", "quant_bits", "quant_rule", "quantised_tensors", "quantised_params", "out_of_range", "far_out",
           "mode", "reference", "detector", "compute", "train_wall_s", "eval_s", "commit", "timestamp"]
NUMERIC = ("cond", "N", "seed", "kimg", "value", "value_se", "n", "floor", "floor_n", "steps", "nfe", "alpha", "quant_bits",
           "quantised_tensors", "quantised_params", "out_of_range", "far_out", "train_wall_s", "eval_s")


def format_knobs(knobs):
    """{'D': 42.6667} -> 'D=42.6667' (inf as 'inf'); the CSV spelling of a model's knobs."""
    return ";".join(f"{k}={_fmt(float(v)) if isinstance(v, (int, float)) else v}" for k, v in sorted(knobs.items()))


def parse_knobs(text):
    """'D=42.6667;m=0.5' -> {'D': 42.6667, 'm': 0.5}; '' -> {}."""
    out = {}
    for part in str(text or "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def row_from(res, key, table, cfg, paper_knobs, N, train_wall, variant=""):
    """A results row from a scoring result `res` (evaluate.score_snapshot) of the model `cfg`."""
    from pfgmbench.provenance import git_commit, now

    return {
        "cell": key, "table": table, "preset": cfg["preset"], "scale": cfg["scale"], "data": cfg["data"]["name"],
        "family": res["family"],
        "method": res["method"], "knobs": format_knobs(res["knobs"]), "paper_knobs": format_knobs(paper_knobs),
        "variant": variant, "cond": int(bool(cfg["data"]["cond"])), "N": N, "seed": cfg["train"]["seed"],
        "kimg": res["kimg"], "checkpoint": res["checkpoint"], "metric": res["metric"], "value": res["value"],
        "value_se": res.get("value_se"), "n": res["n"], "floor": res.get("floor"), "floor_n": res.get("floor_n"), "sampler": res.get("sampler"),
        "steps": res["steps"], "nfe": res["nfe"], "alpha": res.get("alpha", 0.0),
        "quant_bits": res.get("quant_bits", ""), "quant_rule": res.get("quant_rule", ""),
        "quantised_tensors": res.get("quantised_tensors", ""), "quantised_params": res.get("quantised_params", ""),
        "out_of_range": res.get("out_of_range"), "far_out": res.get("far_out"), "mode": res.get("mode", ""),
        "reference": res.get("ref_stats") or res.get("ref_dataset") or "digits-train",
        "detector": res.get("detector", ""), "compute": res.get("compute", ""), "train_wall_s": train_wall,
        "eval_s": res.get("total_s"), "commit": git_commit(), "timestamp": now(),
    }


def load_results(path, table=None):
    """A results CSV as a DataFrame (numbers parsed), optionally only the rows of `table`."""
    import pandas as pd

    from pfgmbench.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file not found: {path}; run a sweep first (pfgmbench sweep-d / reproduce)")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"knobs": str, "paper_knobs": str,
                                                                         "variant": str})
    missing = [c for c in ("family", "knobs", "paper_knobs", "value") if c not in df]
    if missing:
        raise UserError(f"{path} is not a pfgmbench results file of this version (no {', '.join(missing)} "
                        "column); rerun the sweep into a new file")
    if table is not None and "table" in df:
        df = df[df["table"].astype(str) == str(table)]
    if df.empty:
        raise UserError(f"{path} has no rows for table {table}")
    for c in NUMERIC:
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in ("knobs", "paper_knobs", "variant"):
        df[c] = df[c].fillna("").astype(str)
    return df
