"""GenPhys s-generative test from the dispersion relation of a linear PDE.

GenPhys (Liu et al.) calls a PDE s-generative if
  (C1) it can be written as a density flow  dp/dt + div(p v) = R  with p >= 0, and
  (C2) its solutions smooth over time: with phi ~ exp(i(k x - w t)),
       Im w(k) < Im w(0) for all k > 0 (one branch w_j suffices).

This module decides C2 only.  The plane-wave substitution is
  d/dt -> -i w,   lap -> -k^2,   lap lap -> k^4,   (-lap)^beta -> k^(2 beta)   (k > 0),
which turns the PDE into a polynomial in w whose roots are the branches w_j(k).

Public API
  parse(text, params=None)          -> PDE
  dispersion(pde, params=None)      -> list of sympy branches w_j(k, params)
  classify(text, params=None, ...)  -> dict with verdict, branches, region, c1_note
  TALK_PDES, table(...)             -> the talk's eleven PDEs, ours beside the talk's
  plot_im_omega(path, ...)          -> PNG of Im w_j(k), one panel per talk PDE
"""
from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, rationalize, standard_transformations

from pfgmbench.atomic import atomic_path
from pfgmbench.errors import UserError

EXAMPLE = 'e.g. "phi_t = lap phi", "phi_tt + 2 eps phi_t - lap phi", "phi_t + (-lap)^beta phi"'

# Parameter names accepted when the caller declares none.
KNOWN_PARAMS = ("a", "b", "c", "D", "eps", "epsilon", "m", "k0", "beta", "alpha", "gamma",
                "kappa", "mu", "nu", "sigma")
RESERVED = {"k", "w", "t", "x", "y", "z"}

K = sp.Symbol("k", positive=True)      # wavenumber, k > 0
W = sp.Symbol("w")                     # angular frequency omega
LAP = sp.Symbol("LAP")                 # the Laplacian, -> -k^2
NEGLAP = sp.Symbol("NEGLAP")           # (-lap), -> k^2; carries fractional powers

# Talk rows whose C1 verdict rests on the paper's construction, not on anything checked here.
C1_RELIES_ON_PAPER = ("Poisson", "ideal wave", "dissipative wave", "Helmholtz", "screened Poisson (Yukawa)",
                      "Schrodinger", "mixed diffusion-Poisson", "fractional diffusion", "third-order",
                      "biharmonic")
C1_GENERIC = ("C1 (a density flow dp/dt + div(p v) = R with p >= 0) is not decided by this test: "
              "only C2 (Im w(k) < Im w(0) for all k > 0, one branch) is checked. Talk rows whose C1 rests on "
              "the paper's argument: the wave-type ones with p = -phi_t or -(phi_t + 2 eps phi) (Poisson, ideal "
              "wave, dissipative wave, Helmholtz, screened Poisson), the complex-valued Schrodinger (p = |phi|^2), "
              "mixed diffusion-Poisson and third-order (no C1 construction in the talk), and fractional "
              "(beta > 1) and biharmonic diffusion (p = phi is not kept >= 0); only diffusion has C1 directly.")


class PDEParseError(UserError, ValueError):
    """Unparseable or nonlinear PDE text. The message is one line with an accepted example."""

    def __init__(self, problem):
        super().__init__(f"{problem}; accepted input: {EXAMPLE}")


def _phi(n):
    """Symbol for the n-th time derivative of phi (n = 0 is phi itself)."""
    return sp.Symbol("phi" + ("_" + "t" * n if n else ""))


# ----------------------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class PDE:
    """A linear constant-coefficient PDE  sum_n c_n(lap, (-lap)) d^n phi/dt^n = 0.

    coeffs maps the time order n to c_n, a sympy expression in LAP, NEGLAP and the parameters.
    """
    text: str
    coeffs: tuple          # ((n, c_n), ...) sorted by n
    params: tuple          # names of the parameters that occur
    order: int             # highest time derivative

    @property
    def param_symbols(self):
        return tuple(_param_symbol(p) for p in self.params)

    def polynomial(self):
        """The dispersion polynomial P(w, k) = sum_n c_n(-k^2, k^2) (-i w)^n."""
        poly = sum(c.subs({LAP: -K ** 2, NEGLAP: K ** 2}) * (-sp.I * W) ** n for n, c in self.coeffs)
        return sp.expand(sp.powdenest(poly, force=False))


def _param_symbol(name):
    return sp.Symbol(name, positive=True)


_NUM = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN = re.compile(rf"\s*(?:(?P<num>{_NUM})|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|[-+*/^()=]))")
_UNICODE = [("−", "-"), ("Δ", " lap "), ("∇²", " lap "), ("∇^2", " lap "), ("φ", "phi"), ("ϕ", "phi"),
            ("ε", "eps"), ("ϵ", "eps"), ("β", "beta"), ("·", "*")]


def _tokens(text):
    """Split text into (kind, value) tokens; reject any character outside the grammar."""
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            rest = text[pos:].strip()
            if not rest:
                break
            raise PDEParseError(f"unexpected character {rest[0]!r} in {text.strip()!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _check_powers(toks):
    """Exponents must be a number <= 64, a name, or a parenthesised group without powers
    (no towers such as 9^9^9, which would take forever to evaluate)."""
    ops = ("^", "**")
    for i, (_, val) in enumerate(toks):
        if val not in ops:
            continue
        j = i + 1
        if j < len(toks) and toks[j][1] in "+-":
            j += 1
        if j >= len(toks):
            raise PDEParseError("missing exponent after '^'")
        kind, nxt = toks[j]
        if kind == "num" and float(nxt) > 64:
            raise PDEParseError(f"exponent {nxt} is too large (at most 64)")
        if nxt == "(":
            depth, end = 0, j
            for end in range(j, len(toks)):
                depth += {"(": 1, ")": -1}.get(toks[end][1], 0)
                if depth == 0:
                    break
            group = toks[j:end + 1]
        else:
            group, end = [toks[j]], j
        if any(v in ops for _, v in group) or (end + 1 < len(toks) and toks[end + 1][1] in ops):
            raise PDEParseError("nested powers such as a^b^c are not supported")


def _declared(params):
    if params is None:
        return set(KNOWN_PARAMS)
    names = set(params.keys() if isinstance(params, dict) else params)
    bad = sorted(n for n in names if n in RESERVED or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(n)))
    if bad:
        raise PDEParseError(f"parameter name {bad[0]!r} is reserved or not a plain name")
    return names


def parse(text, params=None):
    """Parse a linear constant-coefficient PDE in phi.

    text: an equation "phi_t = lap phi" or an expression meaning "= 0" ("phi_t - lap phi").
    Terms: phi, phi_t, phi_tt, phi_ttt, ... (any order), lap phi, lap^2 phi / lap lap phi,
    (-lap)^beta phi, mass terms (m^2 phi), the imaginary unit i or I, numbers, and parameters.
    params: declared parameter names (a mapping's keys or an iterable); None accepts KNOWN_PARAMS.
    Raises PDEParseError (a ValueError) with a one-line message on bad or nonlinear input.
    """
    if not isinstance(text, str) or not text.strip():
        raise PDEParseError("empty or non-text PDE")
    src = text
    for a, b in _UNICODE:
        src = src.replace(a, b)
    src = re.sub(r"phi_\{(t+)\}", r"phi_\1", src)
    src = re.sub(r"\b(Delta|laplacian|nabla\s*\^\s*2)\b", " lap ", src)
    src = re.sub(r"\(\s*-\s*lap\s*\)", " NEGLAP ", src)
    if len(src) > 500:
        raise PDEParseError("PDE text longer than 500 characters")
    toks = _tokens(src)
    _check_powers(toks)
    declared = _declared(params)

    # Whitelist names; insert explicit '*' for juxtaposition ("2 eps phi_t", "lap lap phi").
    pieces, prev = [], None
    for i, (kind, val) in enumerate(toks):
        if kind == "name":
            nxt = toks[i + 1][1] if i + 1 < len(toks) else None
            if re.fullmatch(r"phi(_t+)?", val) or val in ("lap", "NEGLAP", "i", "I"):
                pass
            elif re.fullmatch(r"phi_\w+", val):
                raise PDEParseError(f"unsupported derivative {val!r} (space enters only through lap)")
            elif nxt == "(":
                raise PDEParseError(f"unknown function {val!r} (only linear terms in phi are allowed)")
            elif val in RESERVED:
                raise PDEParseError(f"{val!r} is reserved (k, w, t, x are not parameters)")
            elif val not in declared:
                raise PDEParseError(f"unknown name {val!r} (declare parameters in params)")
        starts = kind in ("num", "name") or val == "("
        if prev is not None and starts and (prev[0] in ("num", "name") or prev[1] == ")"):
            pieces.append("*")
        pieces.append("**" if val == "^" else val)
        prev = (kind, val)
    code = " ".join(pieces)
    if code.count("=") > 1:
        raise PDEParseError(f"more than one '=' in {text.strip()!r}")
    sides = code.split("=")
    if any(not s.strip() for s in sides):
        raise PDEParseError(f"empty side of '=' in {text.strip()!r}")

    names = {m for kind, m in toks if kind == "name"}
    local = {n: _param_symbol(n) for n in names if n in declared}
    local.update({n: _phi(len(n) - 4 if n != "phi" else 0) for n in names if n.startswith("phi")})
    local.update({"lap": LAP, "NEGLAP": NEGLAP, "i": sp.I, "I": sp.I})
    glob = {"__builtins__": {}, "Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
            "Symbol": sp.Symbol}
    try:
        lhs, *rhs = (parse_expr(s, local_dict=dict(local), global_dict=dict(glob),
                                transformations=standard_transformations + (rationalize,)) for s in sides)
    except PDEParseError:
        raise
    except Exception as e:  # SyntaxError, TokenError, TypeError from malformed input
        raise PDEParseError(f"could not parse {text.strip()!r} ({type(e).__name__})") from None
    expr = sp.expand(lhs - (rhs[0] if rhs else 0))
    return _linear_structure(text.strip(), expr)


def _show(term):
    """A term as the user wrote it (internal operator symbols renamed)."""
    return str(term).replace("NEGLAP", "(-lap)").replace("LAP", "lap")


def _linear_structure(text, expr):
    """Check linearity term by term and collect c_n, the coefficient of d^n phi/dt^n."""
    if not isinstance(expr, sp.Expr) or expr == 0:
        raise PDEParseError(f"{text!r} is not a PDE in phi")
    coeffs = {}
    for term in sp.Add.make_args(expr):
        powers = term.as_powers_dict()
        phis = [b for b in powers if isinstance(b, sp.Symbol) and b.name.startswith("phi")]
        hidden = [s for s in term.free_symbols if s.name.startswith("phi")]
        if not hidden:
            raise PDEParseError(f"term {_show(term)!r} has no phi (source terms are not supported)")
        if len(phis) != 1 or powers[phis[0]] != 1 or len(hidden) != 1:
            raise PDEParseError(f"nonlinear term {_show(term)!r} (phi must enter linearly)")
        p = phis[0]
        c = sp.cancel(term / p)
        for op, b in ((LAP, "lap"), (NEGLAP, "(-lap)")):
            e = c.as_powers_dict().get(op, 0) if op in c.free_symbols else 0
            if op in c.free_symbols and (sp.cancel(c / op ** e).has(op)):
                raise PDEParseError(f"{b} must act on phi as a power, got {_show(term)!r}")
            if op is LAP and op in c.free_symbols and not (e.is_Integer and e > 0):
                raise PDEParseError(f"lap needs a positive integer power (use (-lap)^beta), got {_show(term)!r}")
            if op is NEGLAP and op in c.free_symbols and e.is_number and not e > 0:
                raise PDEParseError(f"(-lap) needs a positive power, got {_show(term)!r}")
        n = len(p.name) - 4 if p.name != "phi" else 0
        coeffs[n] = coeffs.get(n, 0) + c
    coeffs = {n: c for n, c in coeffs.items() if sp.simplify(c) != 0}
    if not coeffs or max(coeffs) < 1:
        raise PDEParseError(f"{text!r} has no time derivative of phi")
    params = sorted({s.name for c in coeffs.values() for s in c.free_symbols} - {"LAP", "NEGLAP"})
    return PDE(text=text, coeffs=tuple(sorted(coeffs.items())), params=tuple(params), order=max(coeffs))


# -------------------------------------------------------------------------------------- dispersion

def _tidy(expr):
    """sqrt(-X) -> i sqrt(X) when X > 0, so w = +-i sqrt(k^2 + m^2) reads as in the talk."""
    return expr.replace(lambda e: e.is_Pow and e.exp == sp.S.Half and (-e.base).is_positive,
                        lambda e: sp.I * sp.sqrt(sp.expand(-e.base)))


@functools.lru_cache(maxsize=256)
def _branches(pde):
    poly = sp.Poly(pde.polynomial(), W)
    n = poly.degree()
    cs = poly.all_coeffs()
    if n >= 2 and all(c == 0 for c in cs[1:-1]) and cs[-1] != 0:
        # binomial c_n w^n + c_0 = 0: the n roots r^(1/n) exp(i(arg + 2 pi j)/n), when arg is known
        ratio = sp.simplify(-cs[-1] / cs[0])
        arg, mod = sp.arg(ratio), sp.Abs(ratio)
        if not arg.has(sp.arg) and not mod.has(sp.Abs):
            return [sp.simplify(mod ** sp.Rational(1, n)) * sp.exp(sp.I * (arg + 2 * sp.pi * j) / n)
                    for j in range(n)]
    if n > 4:
        raise PDEParseError(f"time order {n} has no closed-form dispersion branches (at most 4)")
    roots = sp.solve(poly.as_expr(), W)
    if len(roots) != n or any(r.has(sp.RootOf) for r in roots):
        raise PDEParseError(f"could not solve the dispersion polynomial of {pde.text!r}")
    return [_tidy(sp.simplify(r)) for r in roots]


def dispersion(pde, params=None):
    """Branches w_j(k) (sympy expressions in k > 0 and the parameters) of the PDE.

    From phi = exp(i(k x - w t)): sum_n c_n(-k^2, k^2) (-i w)^n = 0, solved for w.
    pde: a PDE or its text (parsed with `params` as the declared names).
    """
    if isinstance(pde, str):
        pde = parse(pde, params)
    return list(_branches(pde))


def lambdify_branches(branches, params):
    args = [K] + [_param_symbol(p) for p in params]
    fns = [sp.lambdify(args, b, modules=[{"sqrt": np.emath.sqrt}, "numpy"]) for b in branches]

    def evaluate(k, pv):
        """Complex array (n_branch, P, K) at wavenumbers k (K,) and parameter arrays pv[name] (P,)."""
        kk = np.asarray(k, float)[None, :]
        cols = [np.asarray(pv[p], float)[:, None] for p in params]
        P = len(cols[0]) if cols else 1
        out = np.empty((len(fns), P, kk.shape[1]), complex)
        with np.errstate(all="ignore"):
            for j, f in enumerate(fns):
                v = np.asarray(f(kk, *cols), complex)
                if not np.all(np.isfinite(v)):  # a fractional power of a negative real: go complex
                    v = np.asarray(f(kk + 0j, *[c + 0j for c in cols]), complex)
                out[j] = np.broadcast_to(v, (P, kk.shape[1]))
        return out
    return evaluate


# -------------------------------------------------------------------------------------- C2 scanning

def _param_grid(params, names, n_scan):
    """Fixed values and ranges -> arrays of parameter points (product grid over the ranges)."""
    params = dict(params or {})
    missing = [n for n in names if n not in params]
    if missing:
        m = missing[0]
        raise PDEParseError(f"parameter {m!r} has no value; give it one with --param {m}=VALUE (or a range {m}=LO:HI) "
                            f"(params={{{m!r}: ...}} in Python)")
    axes, ranges = [], {}
    for n in names:
        v = params[n]
        if isinstance(v, (tuple, list)):
            if len(v) != 2 or not (0 < float(v[0]) <= float(v[1])):
                raise PDEParseError(f"range for {n!r} must be (lo, hi) with 0 < lo <= hi, got {v!r}")
            ranges[n] = (float(v[0]), float(v[1]))
            axes.append(np.linspace(float(v[0]), float(v[1]), n_scan))
        else:
            if not float(v) > 0:
                raise PDEParseError(f"parameter {n!r} must be positive, got {v!r}")
            axes.append(np.array([float(v)]))
    mesh = [a.ravel() for a in np.meshgrid(*axes, indexing="ij")] if axes else []
    return {n: m for n, m in zip(names, mesh)}, ranges


def _bands(k, mask):
    """Contiguous runs of True in mask -> [[k_lo, k_hi], ...]."""
    out, start = [], None
    for i, f in enumerate(list(mask) + [False]):
        if f and start is None:
            start = i
        if not f and start is not None:
            out.append([float(k[start]), float(k[i - 1])])
            start = None
    return out


def _im_w0(evaluate, pv, k_max):
    """Im w_j(0), the limit k -> 0+ (evaluated at k = 0, or at a tiny k if that is not finite)."""
    v = evaluate(np.array([0.0]), pv)[..., 0]
    bad = ~np.isfinite(v)
    if bad.any():
        v = np.where(bad, evaluate(np.array([1e-12 * k_max]), pv)[..., 0], v)
    return v.imag


def _c2_scan(evaluate, names, params, k_max, n_k, k_min, n_scan):
    """C2 per branch and parameter point. Returns grid, k, holds (B,P), fail (B,P,K), im0 (B,P)."""
    grid, ranges = _param_grid(params, names, n_scan)
    k = np.linspace(k_min if k_min else k_max / n_k, k_max, n_k)
    im = evaluate(k, grid).imag                       # (B, P, K)
    im0 = _im_w0(evaluate, grid, k_max)               # (B, P)
    tol = 1e-9 * (1.0 + np.abs(im0))
    fail = ~(im < (im0 - tol)[..., None])             # also True where im is nan
    return grid, ranges, k, ~fail.any(-1), fail, im0


def _fmt(x):
    return f"{x:.4g}"


def _summarise(grid, ranges, k, holds_bp, fail, im0):
    """Verdict, qualifying branch and a readable region report from a C2 scan."""
    holds = holds_bp.any(0)                            # one branch suffices
    P = holds.shape[0]
    best = np.where(holds_bp.any(0), holds_bp.argmax(0), fail.sum(-1).argmin(0))  # (P,)
    points = []
    for p in range(P):
        b = int(best[p])
        points.append({"params": {n: float(grid[n][p]) for n in grid}, "holds": bool(holds[p]),
                       "qualifying_branch": b if holds[p] else None,
                       "im_w0": [float(x) for x in im0[:, p]],
                       "fail_band": [] if holds[p] else _bands(k, fail[b, p]),
                       "fail_band_branch": None if holds[p] else b})
    verdict = "yes" if holds.all() else ("no" if not holds.any() else "conditional")
    counts = holds_bp.sum(1)
    qual = int(counts.argmax()) if counts.max() > 0 else None
    region = {"k_grid": [float(k[0]), float(k[-1]), len(k)], "scanned": ranges,
              "holds_fraction": float(holds.mean()), "points": points}
    lines = []
    if len(ranges) == 1:
        (name, _), = ranges.items()
        vals = grid[name]
        hold_iv = _bands(vals, holds)
        fail_iv = _bands(vals, ~holds)
        if hold_iv:
            lines.append(f"C2 holds for {name} in " + ", ".join(f"[{_fmt(a)}, {_fmt(b)}]" for a, b in hold_iv))
        if fail_iv:
            lines.append(f"C2 fails for {name} in " + ", ".join(f"[{_fmt(a)}, {_fmt(b)}]" for a, b in fail_iv))
            fp = [pt for pt in points if not pt["holds"]]
            for pt in (fp[0], fp[-1]) if len(fp) > 1 else fp:
                band = "; ".join(f"k in [{_fmt(a)}, {_fmt(b)}]" for a, b in pt["fail_band"])
                lines.append(f"at {name}={_fmt(pt['params'][name])} it fails on {band} "
                             f"(best branch {pt['fail_band_branch']})")
    elif P == 1:
        at = ", ".join(f"{n}={_fmt(v)}" for n, v in points[0]["params"].items())
        at = f" at {at}" if at else ""
        if holds[0]:
            lines.append(f"C2 holds{at} (branch {points[0]['qualifying_branch']})")
        else:
            band = "; ".join(f"k in [{_fmt(a)}, {_fmt(b)}]" for a, b in points[0]["fail_band"])
            lines.append(f"C2 fails{at}: best branch {points[0]['fail_band_branch']} fails on {band}")
    else:
        lines.append(f"C2 holds at {int(holds.sum())} of {P} parameter points scanned over "
                     + ", ".join(f"{n} in [{_fmt(a)}, {_fmt(b)}]" for n, (a, b) in ranges.items()))
    region["summary"] = "; ".join(lines)
    return verdict, qual, region


def _im_w0_symbolic(branches):
    out = []
    for b in branches:
        try:
            v = sp.limit(b, K, 0, "+")
        except Exception:  # sympy cannot take the limit: fall back to substitution
            v = b.subs(K, 0)
        out.append(str(sp.simplify(sp.im(v))))
    return out


def _same_pde(pde, other):
    """True when both PDEs have the same dispersion polynomial up to a constant factor."""
    a, b = sp.Poly(pde.polynomial(), W), sp.Poly(other.polynomial(), W)
    if a.degree() != b.degree():
        return False
    ratio = sp.simplify(a.LC() / b.LC())
    return sp.simplify(a.as_expr() - ratio * b.as_expr()) == 0


@functools.lru_cache(maxsize=None)
def _talk_pde(i):
    return parse(TALK_PDES[i]["equation"], TALK_PDES[i]["params"])


def classify(text, params=None, k_max=10.0, n_k=400, k_min=None, n_scan=25):
    """C2 verdict of the PDE `text` over k in [k_min, k_max] (k_min defaults to k_max / n_k).

    k_min stands for the lowest nonzero wavenumber present (2 pi / L for a periodic box of side L);
    it matters where C2 fails on a band reaching down to k -> 0+ (Helmholtz: 0 < k <= k0).

    params: {name: value} or {name: (lo, hi)}; ranges are scanned with n_scan points each
    (product grid). Verdict: "yes" if C2 holds at every parameter point, "no" at none,
    "conditional" in between. A single point gives yes/no.
    C2: some branch j has Im w_j(k) < Im w_j(0) for every k on the grid (Im w_j(0) is the limit k->0+).
    Returns {"verdict", "branches", "branches_latex", "qualifying_branch", "im_w0", "region", "c1_note"}.
    """
    pde = parse(text, params)
    branches = dispersion(pde)
    evaluate = lambdify_branches(branches, pde.params)
    grid, ranges, k, holds_bp, fail, im0 = _c2_scan(evaluate, pde.params, params, k_max, n_k, k_min, n_scan)
    verdict, qual, region = _summarise(grid, ranges, k, holds_bp, fail, im0)
    note = C1_GENERIC
    for i, row in enumerate(TALK_PDES):
        if set(row["params"]) == set(pde.params) and _same_pde(pde, _talk_pde(i)):
            note += f" This is the talk's {row['name']}: {row['c1']}"
            break
    return {"verdict": verdict, "pde": pde.text, "branches": [str(b) for b in branches],
            "branches_latex": [sp.latex(b) for b in branches], "qualifying_branch": qual,
            "im_w0": _im_w0_symbolic(branches), "region": region, "c1_note": note}


# ------------------------------------------------------------------------------ the talk's tables

def _pm(x):
    return [x, -x]


def _sq(x):
    return np.emath.sqrt(x)


def _talk_dissipative(k, eps):
    """Printed in the talk: i(-eps +- sqrt(eps^2 - k^2)) for k <= eps, i eps +- sqrt(k^2 - eps^2) for k > eps."""
    low = k <= eps
    return [np.where(low, 1j * (-eps + s * _sq(eps ** 2 - k ** 2)), 1j * eps + s * _sq(k ** 2 - eps ** 2))
            for s in (1, -1)]


def _talk_helmholtz(k, k0):
    """Printed: +-sqrt(k0^2 - k^2) for k <= k0, +-i sqrt(k^2 - k0^2) for k > k0."""
    low = k <= k0
    return [np.where(low, s * np.sqrt(np.clip(k0 ** 2 - k ** 2, 0, None)),
                     s * 1j * np.sqrt(np.clip(k ** 2 - k0 ** 2, 0, None))) for s in (1, -1)]


# Each row: the equation (our grammar), the talk's printed w(k) as numpy branches, the talk's
# verdict, default parameter ranges, and how the talk/paper argues C1.
TALK_PDES = [
    dict(name="diffusion", table=3, equation="phi_t - lap phi", params=(), ranges={},
         talk_w="w = -i k^2", talk_fn=lambda k: [-1j * k ** 2],
         talk_verdict="yes", talk_verdict_text="Yes (diffusion models)",
         c1="p = phi, v = -grad log phi; the heat flow keeps p >= 0, so C1 holds directly."),
    dict(name="Poisson", table=3, equation="phi_tt + lap phi", params=(), ranges={},
         talk_w="w = +-i k", talk_fn=lambda k: _pm(1j * k),
         talk_verdict="yes", talk_verdict_text="Yes (Poisson flow)",
         c1="p = -phi_t, v = grad phi / phi_t; p >= 0 relies on the paper's construction (positive charges)."),
    dict(name="ideal wave", table=3, equation="phi_tt - lap phi", params=(), ranges={},
         talk_w="w = +-k", talk_fn=lambda k: _pm(k + 0j),
         talk_verdict="no", talk_verdict_text="No",
         c1="p = -phi_t can change sign; the talk lists C1 as No."),
    dict(name="dissipative wave", table=3, equation="phi_tt + 2 eps phi_t - lap phi", params=("eps",),
         ranges={"eps": (0.1, 3.0)},
         talk_w="w = i(-eps +- sqrt(eps^2 - k^2)) (k <= eps); i eps +- sqrt(k^2 - eps^2) (k > eps)",
         talk_fn=_talk_dissipative,
         talk_verdict="conditional", talk_verdict_text="Conditionally yes (large eps)",
         c1="p = -(phi_t + 2 eps phi); its positivity is the paper's C1 argument (talk: C1 conditionally yes)."),
    dict(name="Helmholtz", table=3, equation="phi_tt + lap phi + k0^2 phi", params=("k0",),
         ranges={"k0": (0.1, 3.0)},
         talk_w="w = +-sqrt(k0^2 - k^2) (k <= k0); +-i sqrt(k^2 - k0^2) (k > k0)", talk_fn=_talk_helmholtz,
         talk_verdict="conditional", talk_verdict_text="Conditionally yes (small k0^2)",
         c1="p = -phi_t with a source R = k0^2 phi; positivity is the paper's argument (talk: conditional)."),
    dict(name="screened Poisson (Yukawa)", table=3, equation="phi_tt + lap phi - m^2 phi", params=("m",),
         ranges={"m": (0.1, 3.0)},
         talk_w="w = +-i sqrt(k^2 + m^2)", talk_fn=lambda k, m: _pm(1j * np.sqrt(k ** 2 + m ** 2)),
         talk_verdict="yes", talk_verdict_text="Yes",
         c1="p = -phi_t with R = -m^2 phi (or the Yukawa model's p = m phi - phi_t with uniform R = -m p); "
            "positivity relies on the paper's construction (positive K kernel). With the latter the density "
            "at t = 0+ is rho/2 + m phi: half its mass is the data blurred by the plane's Green's function, so "
            "the flow returns the data only in part (pfgmbench/physics/yukawa.py)."),
    dict(name="Schrodinger", table=3, equation="i phi_t + lap phi", params=(), ranges={},
         talk_w="w = k^2", talk_fn=lambda k: [k ** 2 + 0j],
         talk_verdict="no", talk_verdict_text="No",
         c1="phi is complex, p = |phi|^2; the talk lists C1 as No."),
    dict(name="mixed diffusion-Poisson", table=4, equation="a phi_tt - b phi_t + lap phi", params=("a", "b"),
         ranges={"a": (0.5, 2.0), "b": (0.5, 2.0)},
         talk_w="w = i/(2a) (b +- sqrt(b^2 + 4 a k^2))",
         talk_fn=lambda k, a, b: [1j / (2 * a) * (b + s * np.sqrt(b ** 2 + 4 * a * k ** 2)) for s in (1, -1)],
         talk_verdict="yes", talk_verdict_text="s-generative (Table 4)",
         c1="second order in time; the talk gives no C1 construction (relies on the paper)."),
    dict(name="fractional diffusion", table=4, equation="phi_t + (-lap)^beta phi", params=("beta",),
         ranges={"beta": (0.25, 2.0)},
         talk_w="w = -i k^(2 beta)", talk_fn=lambda k, beta: [-1j * k ** (2 * beta)],
         talk_verdict="yes", talk_verdict_text="s-generative (Table 4)",
         c1="p = phi stays >= 0 only for beta <= 1 (stable-law kernel); for beta > 1 C1 relies on the paper."),
    dict(name="third-order", table=4, equation="phi_ttt - lap phi", params=(), ranges={},
         talk_w="w = (-i, e^(i pi/6), e^(i 5pi/6)) k^(2/3)",
         talk_fn=lambda k: [c * k ** (2 / 3) for c in (-1j, np.exp(1j * np.pi / 6), np.exp(5j * np.pi / 6))],
         talk_verdict="yes", talk_verdict_text="s-generative (Table 4)",
         c1="third order in time; the talk gives no C1 construction (relies on the paper)."),
    dict(name="biharmonic", table=4, equation="phi_t + lap lap phi", params=(), ranges={},
         talk_w="w = -i k^4", talk_fn=lambda k: [-1j * k ** 4],
         talk_verdict="yes", talk_verdict_text="s-generative (Table 4)",
         c1="p = phi is not kept >= 0 (the biharmonic kernel changes sign); C1 relies on the paper."),
]

# Why a row differs, written after deriving each w(k); shown only when the difference is detected.
_REASONS = {
    "dissipative wave": {
        "formula": ("talk prints +i eps for k > eps; substituting d/dt -> -i w, lap -> -k^2 into "
                    "phi_tt + 2 eps phi_t - lap phi gives w^2 + 2i eps w - k^2 = 0, w = -i eps +- sqrt(k^2 - eps^2) "
                    "(Im w = -eps), as the talk's own G(k,t) = exp(-eps t + i sqrt(k^2 - eps^2) t) says"),
        "verdict": ("with the derived sign C2 holds for every eps > 0 (branch -i eps + sqrt(k^2 - eps^2): "
                    "Im w < 0 = Im w(0) for all k > 0); the talk's 'large eps' condition follows from its printed "
                    "+i eps, which fails on k > eps (a band that moves up as eps grows), or from C1 "
                    "(p = -(phi_t + 2 eps phi) >= 0), which this C2 test does not decide"),
    },
    "Helmholtz": {
        "verdict": ("C2 fails on the band 0 < k <= k0 (Im w = 0 = Im w(0) there) for every k0 > 0; it holds only "
                    "when k0 is below the lowest wavenumber present (k_min), so 'small k0' means k0 < k_min"),
    },
}


def _match_error(a, b):
    """Per (P, K): smallest max |a_j - b_pi(j)| over branch orderings; inf if counts differ."""
    if a.shape[0] != b.shape[0]:
        return np.full(a.shape[1:], np.inf)
    errs = [np.max(np.abs(a - b[list(perm)]), axis=0) for perm in itertools.permutations(range(a.shape[0]))]
    return np.min(errs, axis=0)


def talk_evaluator(row):
    """evaluate(k, pv) -> (B, P, K) complex array of the talk's printed branches for a TALK_PDES row."""
    def evaluate(k, pv):
        kk = np.asarray(k, float)[None, :]
        cols = {p: np.asarray(pv[p], float)[:, None] for p in row["params"]}
        P = len(next(iter(cols.values()))) if cols else 1
        with np.errstate(all="ignore"):
            vals = row["talk_fn"](kk, **cols)
        return np.stack([np.broadcast_to(np.asarray(v, complex), (P, kk.shape[1])) for v in vals])
    return evaluate


def compare_with_talk(row, params=None, k_max=10.0, n_k=400, n_scan=7):
    """Max |w_derived - w_talk| (best branch matching) over a k grid and parameter points, and where."""
    pde = parse(row["equation"], row["params"])
    ours = lambdify_branches(dispersion(pde), pde.params)
    theirs = talk_evaluator(row)
    grid, _ = _param_grid(params if params is not None else row["ranges"], pde.params, n_scan)
    k = np.linspace(k_max / n_k, k_max, n_k)
    a, b = ours(k, grid), theirs(k, grid)
    err = _match_error(a, b) / (1.0 + np.abs(b).max(0))
    bad = err > 1e-8
    return {"max_rel_error": float(err.max()), "agrees": not bad.any(),
            "k_band": _bands(k, bad.any(0)), "n_points": int(bad.shape[0])}


def table(k_max=10.0, n_k=400, k_min=None, n_scan=25, ranges=None):
    """The talk's eleven PDEs: our derived w and C2 verdict beside the talk's.

    ranges: optional {row name: {param: value or (lo, hi)}} overriding the default ranges.
    Each row: name, equation, derived_w, talk_w, formula_agrees, our_verdict, talk_verdict,
    talk_formula_verdict (C2 applied to the talk's printed w), region, differs ('' or a reason), c1.
    """
    rows = []
    for row in TALK_PDES:
        pr = (ranges or {}).get(row["name"], row["ranges"])
        res = classify(row["equation"], pr if row["params"] else None, k_max=k_max, n_k=n_k, k_min=k_min,
                       n_scan=n_scan)
        cmp_ = compare_with_talk(row, pr, k_max=k_max, n_k=n_k)
        tg, tr, tk, th, tf, t0 = _c2_scan(talk_evaluator(row), row["params"], pr, k_max, n_k, k_min, n_scan)
        talk_formula_verdict, _, talk_region = _summarise(tg, tr, tk, th, tf, t0)
        reasons = []
        if not cmp_["agrees"]:
            band = "; ".join(f"k in [{_fmt(a)}, {_fmt(b)}]" for a, b in cmp_["k_band"])
            reasons.append(f"w differs on {band}: " + _REASONS.get(row["name"], {}).get(
                "formula", "the printed formula does not match the derivation"))
        if res["verdict"] != row["talk_verdict"]:
            reasons.append(f"verdict {res['verdict']} vs talk {row['talk_verdict']}: " + _REASONS.get(
                row["name"], {}).get("verdict", res["region"]["summary"]))
        rows.append({"name": row["name"], "table": row["table"], "equation": row["equation"],
                     "params": pr, "derived_w": res["branches"], "talk_w": row["talk_w"],
                     "formula_agrees": cmp_["agrees"], "formula_max_rel_error": cmp_["max_rel_error"],
                     "our_verdict": res["verdict"], "talk_verdict": row["talk_verdict"],
                     "talk_verdict_text": row["talk_verdict_text"],
                     "talk_formula_verdict": talk_formula_verdict,
                     "region": res["region"]["summary"], "talk_formula_region": talk_region["summary"],
                     "qualifying_branch": res["qualifying_branch"], "im_w0": res["im_w0"],
                     "differs": " | ".join(reasons), "c1": row["c1"]})
    return rows


# --------------------------------------------------------------------------------------- plotting

EXAMPLE_VALUES = {"eps": 1.0, "k0": 1.0, "m": 1.0, "a": 1.0, "b": 1.0, "beta": 0.75}


def plot_im_omega(path, k_max=3.0, n_k=300, values=None):
    """PNG of Im w_j(k) for each talk PDE (one panel each, every branch; dashed: the talk's
    printed formula where it differs). values: parameter values (default EXAMPLE_VALUES)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vals = dict(EXAMPLE_VALUES, **(values or {}))
    k = np.linspace(0.0, k_max, n_k)
    fig, axes = plt.subplots(3, 4, figsize=(14, 9), constrained_layout=True)
    for ax, row in zip(axes.ravel(), TALK_PDES):
        pde = parse(row["equation"], row["params"])
        pv = {p: np.array([vals[p]]) for p in pde.params}
        ours = lambdify_branches(dispersion(pde), pde.params)(k, pv)[:, 0]
        theirs = talk_evaluator(row)(k, pv)[:, 0]
        for j, v in enumerate(ours):
            ax.plot(k, v.imag, lw=1.8, label=f"w{j}")
        if _match_error(ours[:, None], theirs[:, None]).max() > 1e-8:
            for j, v in enumerate(theirs):
                ax.plot(k, v.imag, "k--", lw=1, label="talk" if j == 0 else None)
        ax.axhline(0, color="0.7", lw=0.6)
        ps = ", ".join(f"{p}={vals[p]:g}" for p in pde.params)
        ax.set_title(f"{row['name']}" + (f" ({ps})" if ps else ""), fontsize=9)
        ax.set_xlabel("k", fontsize=8)
        ax.set_ylabel("Im w", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(TALK_PDES):]:
        ax.axis("off")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return str(path)
