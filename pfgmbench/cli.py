"""Command line: parse, validate, call one function. Bad input -> one line, exit code 2."""
import json
import os
import sys

import click

from pfgmbench.errors import UserError


def to_json(obj, **kw):
    """JSON without the non-standard Infinity: D = inf is written as the string "inf"."""
    def clean(v):
        if isinstance(v, float) and v == float("inf"):
            return "inf"
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), **kw)


def _relaunch(nproc):
    """`--nproc N` outside torchrun: run this same command under torchrun, then stop here."""
    import os

    from pfgmbench import distributed

    if nproc is None or nproc == 1 or "WORLD_SIZE" in os.environ:
        return False
    if nproc < 1:
        raise UserError(f"--nproc must be >= 1, got {nproc}")
    code = distributed.launch_torchrun(nproc, distributed.strip_nproc(sys.argv[1:]))
    if code:
        raise UserError(f"torchrun exited with code {code}; see the messages above")
    return True


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """pfgmbench: train, sample and score PFGM++ / EDM models (paper presets on GPUs, proxies on a CPU)."""


@cli.command()
@click.option("--preset", default="digits", show_default=True, help="Preset name (see `pfgmbench presets`).")
@click.option("--D", "D", default=None, help="Augmented dimension D >= 1, or 'inf' (EDM). Default: the preset's.")
@click.option("--out", required=True, type=click.Path(), help="Run folder.")
@click.option("--kimg", type=float, default=None, help="Training duration in thousands of images.")
@click.option("--seed", type=int, default=None, help="Run seed (network init, data order, noise).")
@click.option("--cond", is_flag=True, default=None, help="Class-conditional training (labelled data).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset key, e.g. train.lr=1e-3.")
@click.option("--resume", type=click.Choice(["auto", "no"]), default="no", show_default=True,
              help="auto: continue the run in --out if it has a checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--nproc", type=int, default=None, help="Launch torchrun with N processes on this node.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and a cost estimate; train nothing.")
def train(preset, D, out, kimg, seed, cond, sets, resume, quiet, nproc, dry_run):
    """Train a PFGM++ model (D = inf is EDM). Works unchanged under torchrun."""
    from pfgmbench.config import dump, parse_D, resolve
    from pfgmbench.train import train as run_train

    cfg = resolve(preset, D=parse_D(D) if D is not None else None, sets=sets, kimg=kimg, seed=seed, cond=cond)
    if dry_run:
        from pfgmbench.train import cost_estimate

        click.echo(dump(cfg) + "\n# cost estimate\n" + dump(cost_estimate(cfg, nproc or 1)))
        return
    if _relaunch(nproc):
        return
    kimg_done = run_train(cfg, out, resume=resume == "auto", progress=not quiet)
    click.echo(f"trained {kimg_done:g} kimg -> {out}")


@cli.command()
@click.option("--run", "--run-dir", "run", type=click.Path(), default=None, help="Run folder (uses its latest snapshot).")
@click.option("--ckpt", type=click.Path(), default=None, help="A network-snapshot-*.pt file instead of --run.")
@click.option("--seeds", default="0-63", show_default=True, help="Seeds, e.g. 0-255 or 0,5,7-9.")
@click.option("--steps", type=int, default=None, help="Sampler steps T (NFE = 2T - 1). Default: the preset's.")
@click.option("--out", required=True, type=click.Path(), help="Output folder.")
@click.option("--format", "fmt", type=click.Choice(["png", "npz"]), default="png", show_default=True)
@click.option("--batch", type=int, default=None, help="Seeds per batch (does not change the samples).")
@click.option("--alpha", type=float, default=0.0, show_default=True, help="Step noise x += alpha t_i eps.")
@click.option("--quant-bits", type=int, default=None, help="Fake-quantise weights to B bits first.")
@click.option("--quant-rule", type=click.Choice(["paper", "output", "all"]), default="paper", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--nproc", type=int, default=None, help="Launch torchrun with N processes on this node.")
def sample(run, ckpt, seeds, steps, out, fmt, batch, alpha, quant_bits, quant_rule, device, as_json, nproc):
    """Sample with EDM's Heun sampler, one generator per seed (seeds sharded over ranks)."""
    from pfgmbench.checkpoint import latest_snapshot
    from pfgmbench.generate import sample_run
    from pfgmbench.seeds import parse_seeds

    if (run is None) == (ckpt is None):
        raise UserError("give exactly one of --run RUN or --ckpt FILE")
    if steps is not None and steps < 2:
        raise UserError(f"--steps must be >= 2, got {steps}")
    if alpha < 0:
        raise UserError(f"--alpha must be >= 0, got {alpha}")
    seed_list = parse_seeds(seeds)
    ckpt = ckpt or latest_snapshot(run)
    if quant_bits is not None and not 2 <= quant_bits <= 16:
        raise UserError(f"--quant-bits must be between 2 and 16, got {quant_bits}")
    if _relaunch(nproc):
        return
    res = sample_run(ckpt, seed_list, out, steps=steps, fmt=fmt, batch=batch, device=device, alpha=alpha,
                     progress=not as_json, quant_bits=quant_bits, quant_rule=quant_rule)
    from pfgmbench import distributed

    if not distributed.is_main():
        return
    if as_json:
        click.echo(to_json(res))
    else:
        q = (f", {res['quant_bits']}-bit weights ({res['quantised_params']} of {res['total_params']} params)"
             if quant_bits else "")
        click.echo(f"{res['images']} samples (NFE {res['nfe']}{q}) -> {out}  [grid: {out}/grid.png]")


@cli.command()
def presets():
    """List presets with data set, N, network and budget."""
    from rich.console import Console
    from rich.table import Table

    from pfgmbench.config import list_presets, load_preset

    table = Table("preset", "scale", "data", "N", "network", "D", "budget", "description")
    for name in list_presets():
        c = load_preset(name)
        n = {"digits": 64, "cifar10": 3072, "imagefolder": 12288, "gmm1000": 1000}.get(c["data"]["name"], 2)
        net = c["net"]
        desc = (f"SongUNet {net['model_channels']}ch x{net['channel_mult']} {net['embedding_type']}"
                if net["arch"] == "songunet" else f"MLP {net['hidden']}x{net['depth']}")
        table.add_row(name, c["scale"], c["data"]["name"], str(n), desc, str(c["physics"]["D"]),
                      f"{c['train']['kimg']:g} kimg, batch {c['train']['batch']}", c["description"])
    Console(width=200).print(table)


@cli.command("eval")
@click.option("--samples", type=click.Path(), default=None, help="A folder of PNGs or a samples.npz.")
@click.option("--run", "--run-dir", "run", type=click.Path(), default=None, help="Generate from this run in memory.")
@click.option("--ckpt", type=click.Path(), default=None, help="A snapshot file instead of --run.")
@click.option("--all-snapshots", is_flag=True, help="Score every snapshot of --run: Min and Top-3 average.")
@click.option("--metric", required=True, help="fid | is | fd-digits | is-digits | mmd | swd | energy")
@click.option("--num", "--num-samples", "num", type=int, default=None, help="Samples to generate (with --run); default: all seeds.")
@click.option("--seeds", default=None, help="Seeds to generate (with --run), default 0-(num-1).")
@click.option("--seed-ranges", type=int, default=1, show_default=True,
              help="Repeat over K consecutive seed ranges (EDM reports the min of 3).")
@click.option("--steps", type=int, default=None)
@click.option("--ref-stats", type=click.Path(), default=None, help="Reference statistics .npz (mu, sigma).")
@click.option("--ref-dataset", default=None, help="Data set for reference statistics / toy metrics.")
@click.option("--mode", type=click.Choice(["legacy_tensorflow", "clean"]), default="legacy_tensorflow",
              show_default=True, help="FID mode: legacy_tensorflow is what EDM / PFGM++ used.")
@click.option("--inception", type=click.Path(), default=None, help="Path of inception-2015-12-05.pt.")
@click.option("--download", is_flag=True, help="Allow downloading the Inception detector.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--nproc", type=int, default=None, help="Launch torchrun with N processes on this node.")
def eval_cmd(samples, run, ckpt, all_snapshots, metric, num, seeds, seed_ranges, steps, ref_stats, ref_dataset,
             mode, inception, download, device, as_json, nproc):
    """Score samples (FID / IS with the Inception detector; offline proxy and toy metrics)."""
    from pfgmbench import checkpoint
    from pfgmbench.evaluate import Scorer, default_ref_dataset, device_for, min_and_top3, score_snapshot
    from pfgmbench.seeds import parse_seeds

    if sum(x is not None for x in (samples, run, ckpt)) != 1:
        raise UserError("give exactly one of --samples DIR, --run RUN or --ckpt FILE")
    if _relaunch(nproc):
        return
    from pfgmbench import distributed

    distributed.init()
    dev = device_for(device)
    if samples is not None:
        scorer = Scorer(metric, ref_stats, ref_dataset, mode, inception, download, str(dev))
        res = scorer.score_folder(samples)
    else:
        if run is not None and not all_snapshots:
            ckpt = checkpoint.latest_snapshot(run)
        snaps = [p for _, p in checkpoint.list_snapshots(run)] if all_snapshots else [ckpt]
        if all_snapshots and not snaps:
            checkpoint.latest_snapshot(run)   # raises the clear error
        cfg = checkpoint.load(snaps[-1], checkpoint.SNAPSHOT_FORMAT)["config"]
        ref_dataset = ref_dataset or (default_ref_dataset(cfg) if metric not in ("fd-digits", "is-digits") else None)
        scorer = Scorer(metric, ref_stats, ref_dataset, mode, inception, download, str(dev))
        base = parse_seeds(seeds) if seeds else list(range(num or 1000))
        if num is not None and seeds is None:
            base = list(range(num))
        rows = []
        for snap in snaps:
            for k in range(seed_ranges):
                shifted = [s + k * len(base) for s in base]
                rows.append(score_snapshot(scorer, snap, shifted, steps, str(dev), progress=not as_json))
        if len(rows) == 1:
            res = rows[0]
        else:
            higher = metric in ("is", "is-digits")
            per_ckpt = {}   # EDM: the best of the seed ranges for each checkpoint
            for r in rows:
                v = per_ckpt.get(r["checkpoint"])
                per_ckpt[r["checkpoint"]] = r["value"] if v is None else (max if higher else min)(v, r["value"])
            vals = list(per_ckpt.values())
            best, top3 = (max(vals), None) if higher else min_and_top3(vals)
            res = {"metric": metric, "rows": rows, "min": best, "top3_mean": top3, "n": rows[0]["n"],
                   "per_checkpoint": per_ckpt, "value": best}
    if not distributed.is_main():
        return
    if as_json:
        click.echo(to_json(res))
    else:
        _print_eval(res)


def _print_eval(res):
    rows = res.get("rows", [res])
    for r in rows:
        extra = f"  (floor {r['floor']:.3f} at n={r['floor_n']})" if "floor" in r else ""
        where = f"  {r['checkpoint']}" if "checkpoint" in r else ""
        click.echo(f"{r['metric']} = {r['value']:.4f}  n={r['n']}{extra}{where}")
    if "rows" in res:
        top3 = f", top-3 mean {res['top3_mean']:.4f}" if res.get("top3_mean") is not None else ""
        click.echo(f"best {res['min']:.4f}{top3}")


@cli.command()
@click.option("--dataset", required=True, help="cifar10 | imagefolder | digits")
@click.option("--root", default=None, help="Data location (cifar10 / imagefolder).")
@click.option("--mode", type=click.Choice(["legacy_tensorflow", "clean"]), default="legacy_tensorflow",
              show_default=True)
@click.option("--inception", type=click.Path(), default=None)
@click.option("--download", is_flag=True, help="Allow downloading the detector / data set.")
@click.option("--out", type=click.Path(), default=None, help="Also copy the statistics here.")
@click.option("--device", default="auto", show_default=True)
def ref(dataset, root, mode, inception, download, out, device):
    """Compute FID reference statistics of a data set (cached by data-set fingerprint)."""
    import shutil

    from pfgmbench.data import load_dataset
    from pfgmbench.evaluate import device_for
    from pfgmbench.metrics import detector, fid
    from pfgmbench.sample import to_uint8

    path = detector.resolve_detector(inception, allow_download=download)
    det = detector.InceptionDetector(path, mode, str(device_for(device)))
    ds = load_dataset({"name": dataset, "root": root, "download": download})
    data = ds.data if ds.data.dtype.is_floating_point is False else to_uint8(ds.data)
    stats = fid.ref_stats_for_dataset(det, dataset, data.numpy())
    if out:
        shutil.copyfile(stats, out)
    click.echo(f"reference statistics ({len(ds)} images, mode {mode}): {out or stats}")


def _sweep_options(f):
    opts = [
        click.option("--preset", default="digits-table", show_default=True),
        click.option("--seeds", default="0", show_default=True, help="Training seeds, e.g. 0,1,2."),
        click.option("--metric", default=None, help="Default: fid for image data at paper scale, fd-digits "
                                                   "for digits, mmd for toys."),
        click.option("--num", "--num-samples", "num", type=int, default=None, help="Samples per checkpoint (default 1000; paper 50000)."),
        click.option("--steps", type=int, default=None, help="Sampler steps (default: the preset's)."),
        click.option("--kimg", type=float, default=None, help="Training duration (default: the preset's)."),
        click.option("--score-from-kimg", type=float, default=None,
                     help="Score snapshots from this kimg on (default: the last three)."),
        click.option("--cond", is_flag=True, help="Class-conditional models."),
        click.option("--absolute", is_flag=True, help="Use --values as D directly (no D/N mapping)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE"),
        click.option("--ref-stats", type=click.Path(), default=None),
        click.option("--inception", type=click.Path(), default=None),
        click.option("--runs-dir", default="runs", show_default=True, type=click.Path()),
        click.option("--device", default="auto", show_default=True),
        click.option("--quiet", is_flag=True),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _make_spec(preset, values, seeds, metric, num, steps, kimg, score_from_kimg, cond, absolute, sets, ref_stats,
               inception, runs_dir, device, table="sweep"):
    from pfgmbench.config import resolve
    from pfgmbench.runs import SweepSpec, parse_D_list

    base = resolve(preset, sets=sets, kimg=kimg)
    if metric is None:
        name = base["data"]["name"]
        metric = "fd-digits" if name == "digits" else ("mmd" if base["net"]["arch"] == "mlp" else "fid")
    if score_from_kimg is None:   # the last three snapshots
        snap = base["train"]["snapshot_kimg"]
        score_from_kimg = max(0.0, base["train"]["kimg"] - 2 * snap - 1e-6)
    try:
        seed_list = [int(s) for s in str(seeds).split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds expects integers like 0,1,2, got '{seeds}'") from None
    return SweepSpec(preset=preset, D_values=parse_D_list(values), seeds=seed_list, cond=cond, metric=metric,
                     num=num or (50000 if base["scale"] == "paper" else 1000), steps=steps, kimg=kimg,
                     score_from_kimg=score_from_kimg, absolute=absolute, table=table, sets=tuple(sets),
                     ref_stats=ref_stats, inception=inception, runs_dir=runs_dir, device=device)


@cli.command("sweep-d")
@click.option("--values", default="64,128,2048,inf", show_default=True,
              help="D values at paper scale (mapped by N/paper_N on proxies unless --absolute).")
@click.option("--out", "out_csv", default="results/sweep-d.csv", show_default=True, type=click.Path())
@_sweep_options
def sweep_d(values, out_csv, **kw):
    """Train (or reuse) one model per D and seed, score its snapshots, one CSV row per cell."""
    from pfgmbench.runs import run_sweep

    quiet = kw.pop("quiet")
    spec = _make_spec(values=values, **kw)
    new = run_sweep(spec, out_csv, progress=not quiet)
    click.echo(f"{new} new rows -> {out_csv}")


@cli.command()
@click.option("--results", "results_csv", required=True, type=click.Path())
@click.option("--table", "table", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--out", "out_md", default=None, type=click.Path(), help="Also write the Markdown here.")
@click.option("--plot", default=None, type=click.Path(), help="Also write the metric-vs-D plot (PNG).")
def table(results_csv, table, out_md, plot):
    """Render a results CSV as the paper's table, ours beside the paper's numbers."""
    from pfgmbench.atomic import write_text
    from pfgmbench.report import load_results, plot_metric_vs_D, render_table

    df = load_results(results_csv, table)
    md = render_table(df, table)
    if out_md:
        write_text(out_md, md)
    if plot:
        plot_metric_vs_D(df, plot, table)
    click.echo(md)


@cli.command()
@click.argument("what", type=click.Choice(["table1", "table2", "table3", "alpha"]))
@click.option("--scale", type=click.Choice(["proxy", "paper"]), default="proxy", show_default=True)
@click.option("--seeds", default=None, help="Training seeds (default: proxy 0,1; paper 0).")
@click.option("--out-dir", default=None, type=click.Path(), help="Default: results/<what>-<scale>.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--inception", type=click.Path(), default=None)
@click.option("--ref-stats", type=click.Path(), default=None)
@click.option("--kimg", type=float, default=None, help="Override the training duration (quick looks).")
@click.option("--num", "--num-samples", "num", type=int, default=None, help="Override the samples per checkpoint.")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def reproduce(what, scale, seeds, out_dir, runs_dir, inception, ref_stats, kimg, num, device, quiet):
    """Reproduce a PFGM++ table end to end: sweep, CSV, Markdown, plots (table3 / alpha reuse table1's models)."""
    from pfgmbench.reproduce import reproduce_robustness, reproduce_table

    if what in ("table3", "alpha"):
        md = reproduce_robustness(what, scale, seeds, out_dir, runs_dir, inception, ref_stats, num, device,
                                  progress=not quiet)
    else:
        md = reproduce_table(what, scale, seeds, out_dir, runs_dir, inception, ref_stats, kimg, num, device,
                             progress=not quiet)
    click.echo(md)


@cli.command("check-regression")
@click.option("--baseline", default="results/baselines/ci.csv", show_default=True, type=click.Path())
@click.option("--update", is_flag=True, help="Rewrite the baseline from this run.")
def check_regression(baseline, update):
    """Small-subset sweep (toy + tiny digits) against a baseline; exit 1 on a regression."""
    from pfgmbench.regression import check

    ok, lines = check(baseline, update, log=lambda m: click.echo(m, err=True))
    for ln in lines:
        click.echo(ln)
    if not ok:
        click.echo("metric regression: a cell is worse than its baseline beyond the seed-spread tolerance", err=True)
        sys.exit(1)
    click.echo("check-regression: all cells within tolerance" if not update else "check-regression: baseline updated")


@cli.command()
@click.argument("kind", type=click.Choice(["alpha", "quant", "steps"]))
@click.option("--values", default=None, help="alpha: 0,0.05,...,0.45; quant: bits 5,6,7,8,9; steps: 10,12,...,24.")
@click.option("--sweep", "sweep_csv", default="results/table1-proxy/results.csv", show_default=True,
              type=click.Path(), help="The D sweep whose trained models to stress.")
@click.option("--out", "out_csv", default=None, type=click.Path(), help="Default: results/robustness-KIND.csv")
@click.option("--metric", default=None, help="Default: the sweep's metric.")
@click.option("--num", "--num-samples", "num", type=int, default=500, show_default=True, help="Samples per cell.")
@click.option("--quant-rule", type=click.Choice(["paper", "output", "all"]), default="paper", show_default=True)
@click.option("--D-values", "D_values", default=None, help="Only these paper D values, e.g. 64,128,2048,inf.")
@click.option("--inception", type=click.Path(), default=None)
@click.option("--ref-stats", type=click.Path(), default=None)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def robustness(kind, values, sweep_csv, out_csv, metric, num, quant_rule, D_values, inception, ref_stats, device,
               quiet):
    """Stress a D sweep's models: sampler noise alpha, weight bits, or step count."""
    from pfgmbench.evaluate import device_for
    from pfgmbench.robustness import parse_values, run_robustness
    from pfgmbench.runs import parse_D_list

    defaults = {"alpha": "0,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45", "quant": "9,8,7,6,5",
                "steps": "10,12,14,16,18,20,22,24"}
    vals = parse_values(kind, values or defaults[kind])
    Ds = parse_D_list(D_values) if D_values else None
    out_csv = out_csv or f"results/robustness-{kind}.csv"
    new = run_robustness(kind, vals, sweep_csv, out_csv, metric, num, quant_rule, Ds, str(device_for(device)),
                         inception, ref_stats, progress=not quiet)
    click.echo(f"{new} new rows -> {out_csv}")


@cli.command()
@click.option("--preset", default="digits", show_default=True)
@click.option("--D", "D", default="inf", show_default=True)
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--inception", type=click.Path(), default=None, help="Detector for the evaluation throughput.")
@click.option("--fd-dim", type=int, default=2048, show_default=True, help="Feature size for the FD timing.")
@click.option("--skip-eval", is_flag=True, help="Only the sampler / training overheads.")
@click.option("--json", "as_json", is_flag=True)
def bench(preset, D, repeats, inception, fd_dim, skip_eval, as_json):
    """Measure sampler / training overhead, evaluation throughput and the FD speed-up."""
    from pfgmbench.bench import run_bench, run_eval_bench
    from pfgmbench.config import parse_D, resolve

    res = run_bench(resolve(preset, D=parse_D(D)), repeats=repeats)
    if not skip_eval:
        res.update(run_eval_bench(inception, fd_dim=fd_dim))
    click.echo(to_json(res, indent=None if as_json else 2))


def main():
    from pfgmbench import distributed
    from pfgmbench.provenance import git_commit

    git_commit()   # pin the commit at start-up
    clean = False
    try:
        distributed.init()   # under torchrun: join the group before anything decides who writes
        if distributed.rank() > 0:   # results are printed once, by rank 0; errors still reach stderr
            sys.stdout = open(os.devnull, "w")
        cli.main(standalone_mode=False)
        clean = True
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; rerun the same command (with --resume auto for train) to continue", err=True)
        sys.exit(130)
    finally:
        distributed.shutdown(clean)   # every exit path leaves the process group (torchrun)
    sys.exit(0)
