"""The GenPhys outputs users read: the talk's two tables with our derivations beside them, the
Im w(k) figure, simulations of a PDE, and parameter parsing for the command line."""
import json
from pathlib import Path

from pfgmbench.atomic import write_json, write_text
from pfgmbench.errors import UserError
from pfgmbench.genphys import dispersion, simulate


def parse_params(items):
    """['eps=0.5', 'k0=0.1:3'] -> {'eps': 0.5, 'k0': (0.1, 3.0)} (a value, or a range LO:HI)."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise UserError(f"--param expects NAME=VALUE or NAME=LO:HI, got '{item}' (e.g. --param eps=0.1:3)")
        name, text = item.split("=", 1)
        try:
            if ":" in text:
                lo, hi = (float(v) for v in text.split(":", 1))
                if not lo < hi:
                    raise ValueError
                out[name.strip()] = (lo, hi)
            else:
                out[name.strip()] = float(text)
        except ValueError:
            raise UserError(f"--param {name}: '{text}' is not a number or a range LO:HI with LO < HI") from None
    return out


def classify_text(result):
    """A few readable lines for one classify() result."""
    lines = [f"{result['pde']}: s-generative (C2)? {result['verdict']}",
             "dispersion relation: " + "; ".join(f"w{j} = {b}" for j, b in enumerate(result["branches"]))]
    if result["qualifying_branch"] is not None:
        lines.append(f"qualifying branch: w{result['qualifying_branch']}")
    lines.append(f"where: {result['region']['summary']}")
    lines.append(result["c1_note"])
    return "\n".join(lines)


def table_markdown(rows):
    head = ["PDE", "equation", "ω(k), ours (derived)", "ω(k), talk", "ours", "talk", "differs, and why"]
    lines = ["## GenPhys: dispersion relations and the s-generative test (C2), ours beside the talk's", "",
             "Ours: ω(k) derived with sympy from φ ~ exp(i(kx − ωt)); C2 checked numerically for k in "
             "(0, 10] (and over each parameter range). The talk's columns are the talk's, not ours. "
             "C1 (a density flow with p >= 0) is not decided by C2: " + dispersion.C1_GENERIC.split(": ", 1)[-1], "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in (r["params"] or {}).items())
        lines.append("| " + " | ".join([r["name"] + (f" ({params})" if params else ""), f"`{r['equation']}`",
                                        "; ".join(f"`{b}`" for b in r["derived_w"]), r["talk_w"], r["our_verdict"],
                                        r["talk_verdict_text"], r["differs"] or "–"]) + " |")
    return "\n".join(lines) + "\n"


def write_table(out):
    """genphys_table.md, genphys_table.json and genphys_im_omega.png in `out`; returns the Markdown."""
    out = Path(out)
    rows = dispersion.table()
    md = table_markdown(rows)
    write_text(out / "genphys_table.md", md)
    write_json(out / "genphys_table.json", json.loads(json.dumps(rows, default=str)))
    dispersion.plot_im_omega(str(out / "genphys_im_omega.png"))
    return md


def run_simulation(text, params, dims, t_max, mode, out):
    res = simulate.simulate(text, params, dims=dims, t_max=t_max, mode=mode)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        simulate.plot_simulation(res, str(Path(out) / f"simulate_{dims}d.png"))
    return {"pde": text, "dims": dims, "behaviour": res["behaviour"], "message": res["message"],
            "t_stop": res["t_stop"], "high_k_power_end": float(res["high_k_power"][-1]),
            "branches": [str(b) for b in res["branches"]], "mode": res["mode"],
            "figure": str(Path(out) / f"simulate_{dims}d.png") if out else None}
