"""Command line: parse, validate, call one function. Bad input -> one line `error: ...`, exit code 2.

stdout carries results only (and one JSON object with --json); progress and status go to stderr.
"""
import json
import os
import sys
from pathlib import Path

import click

from pfgmbench import __version__
from pfgmbench.errors import UserError
from pfgmbench.tables.specs import reproducible

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def to_json(obj, **kw):
    """JSON without the non-standard Infinity: inf is written as the string "inf"."""
    def clean(v):
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), **kw)


def _relaunch(nproc):
    """`--nproc N` outside torchrun: run this same command under torchrun, then stop here."""
    from pfgmbench import distributed

    if nproc is None or nproc == 1 or "WORLD_SIZE" in os.environ:
        return False
    if nproc < 1:
        raise UserError(f"--nproc must be >= 1, got {nproc}")
    code = distributed.launch_torchrun(nproc, distributed.strip_nproc(sys.argv[1:]))
    if code:
        raise UserError(f"torchrun exited with code {code}; see the messages above")
    return True


def _positive(name, value, minimum=1):
    if value is not None and value < minimum:
        raise UserError(f"{name} must be >= {minimum}, got {value}")


def _family_option(f):
    from pfgmbench.physics import FAMILIES

    return click.option("--family", default=None, type=click.Choice(list(FAMILIES)),
                        help="Model family (default: the preset's, pfgmpp; `--D inf` is EDM).")(f)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="pfgmbench")
def cli():
    """pfgmbench: train, sample and score Poisson-flow and diffusion models (PFGM++ at any D, EDM),
    paper presets on GPUs, proxies on a CPU.

    \b
    Start here:
      make reproduce-table1                     # PFGM++ Table 1 at proxy scale (CPU, < 30 min)
      pfgmbench presets                         # what can be trained
      pfgmbench train --preset digits --D 128 --out runs/d128
    """


@cli.command(context_settings=CONTEXT)
@click.option("--preset", default="digits", show_default=True, help="Preset name (see `pfgmbench presets`).")
@_family_option
@click.option("--D", "D", default=None, help="Augmented dimension D >= 1, or 'inf' (EDM). Default: the preset's.")
@click.option("--out", required=True, type=click.Path(), help="Run folder.")
@click.option("--kimg", type=float, default=None, help="Training duration in thousands of images.")
@click.option("--seed", type=int, default=None, help="Run seed (network init, data order, noise).")
@click.option("--cond", is_flag=True, default=None, help="Class-conditional training (labelled data).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a preset key, e.g. train.lr=1e-3.")
@click.option("--resume", type=click.Choice(["auto", "no"]), default="no", show_default=True,
              help="auto: continue the run in --out if it has a checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress on stderr (log.txt is still written).")
@click.option("--nproc", type=int, default=None, help="Launch torchrun with N processes on this node.")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and a cost estimate; train nothing.")
def train(preset, family, D, out, kimg, seed, cond, sets, resume, quiet, nproc, dry_run):
    """Train a model (PFGM++ at D; D = inf is EDM). Works unchanged under torchrun.

    \b
    Examples:
      pfgmbench train --preset digits --D 128 --out runs/d128
      pfgmbench train --preset digits --family edm --out runs/edm --kimg 90 --seed 1 --cond
      pfgmbench train --preset cifar10-ncsnpp --D 2048 --nproc 8 --out runs/c10 --resume auto
      pfgmbench train ... --set train.lr=1e-3 --set compute.tf32=true
    """
    from pfgmbench.config import dump, resolve
    from pfgmbench.physics.pfgmpp import parse_D
    from pfgmbench.train import cost_estimate
    from pfgmbench.train import train as run_train

    cfg = resolve(preset, D=parse_D(D) if D is not None else None, sets=sets, family=family, kimg=kimg, seed=seed,
                  cond=cond)
    if dry_run:
        click.echo(dump(cfg) + "\n# cost estimate\n" + dump(cost_estimate(cfg, nproc or 1)))
        return
    if _relaunch(nproc):
        return
    kimg_done = run_train(cfg, out, resume=resume == "auto", progress=not quiet)
    click.echo(f"trained {kimg_done:g} kimg -> {out}")


@cli.command(context_settings=CONTEXT)
@click.option("--run", "--run-dir", "run", type=click.Path(), default=None, help="Run folder (uses its latest snapshot).")
@click.option("--ckpt", type=click.Path(), default=None, help="A network-snapshot-*.pt file instead of --run.")
@click.option("--seeds", default="0-63", show_default=True, help="Seeds, e.g. 0-255 or 0,5,7-9.")
@click.option("--steps", type=int, default=None, help="Sampler steps T. Default: the preset's.")
@click.option("--sampler", default=None, help="Solver, e.g. heun | euler. Default: the model family's.")
@click.option("--out", required=True, type=click.Path(), help="Output folder (the grid goes beside it).")
@click.option("--format", "fmt", type=click.Choice(["png", "npz"]), default="png", show_default=True)
@click.option("--batch", type=int, default=None, help="Seeds per batch (does not change the samples, except for the adaptive rk45 sampler, "
                   "whose step sizes the whole batch shares).")
@click.option("--alpha", type=float, default=0.0, show_default=True, help="Step noise x += alpha t_i eps.")
@click.option("--quant-bits", type=int, default=None, help="Fake-quantise weights to B bits first.")
@click.option("--quant-rule", type=click.Choice(["paper", "output", "all"]), default="paper", show_default=True)
@click.option("--class", "class_label", type=int, default=None, help="Class K for every seed (conditional models).")
@click.option("--overwrite", is_flag=True, help="Replace samples in --out made with other settings.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--nproc", type=int, default=None, help="Launch torchrun with N processes on this node.")
def sample(run, ckpt, seeds, steps, sampler, out, fmt, batch, alpha, quant_bits, quant_rule, class_label, overwrite,
           device, as_json, nproc):
    """Sample one image per seed (per-seed generators; seeds sharded over ranks).

    A manifest in --out records the checkpoint and every setting; a rerun with the same settings
    generates only the missing seeds, and with other settings is refused (or --overwrite).

    \b
    Examples:
      pfgmbench sample --run runs/d128 --seeds 0-255 --out samples/d128
      pfgmbench sample --run runs/d128 --seeds 0-999 --alpha 0.1 --quant-bits 6 --out samples/stress --json
      pfgmbench sample --ckpt runs/c10/network-snapshot-200000.pt --seeds 0-49999 --nproc 8 --out fid50k
    """
    from pfgmbench.checkpoint import latest_snapshot
    from pfgmbench.generate import sample_run
    from pfgmbench.seeds import parse_seeds

    if (run is None) == (ckpt is None):
        raise UserError("give exactly one of --run RUN or --ckpt FILE")
    _positive("--steps", steps, 2)
    _positive("--batch", batch)
    if alpha < 0:
        raise UserError(f"--alpha must be >= 0, got {alpha}")
    if quant_bits is not None and not 2 <= quant_bits <= 16:
        raise UserError(f"--quant-bits must be between 2 and 16, got {quant_bits}")
    seed_list = parse_seeds(seeds)
    ckpt = ckpt or latest_snapshot(run)
    if _relaunch(nproc):
        return
    res = sample_run(ckpt, seed_list, out, steps=steps, fmt=fmt, batch=batch, device=device, alpha=alpha,
                     progress=not as_json, quant_bits=quant_bits, quant_rule=quant_rule, sampler=sampler,
                     class_label=class_label, overwrite=overwrite)
    if as_json:
        click.echo(to_json(res))
        return
    q = (f", {res['quant_bits']}-bit weights ({res['quantised_params']} of {res['total_params']} params in "
         f"{res['quantised_tensors']} tensors)" if quant_bits else "")
    click.echo(f"{res['images']} samples, {res['generated']} newly generated (NFE {res['nfe']}, "
               f"{res['sampler']}{q}) -> {out}  [grid: {res['grid']}]")


@cli.command(context_settings=CONTEXT)
@click.option("--keys", is_flag=True, help="Also list every config key --set accepts.")
@click.option("--json", "as_json", is_flag=True)
def presets(keys, as_json):
    """List presets: data set, N, network, model family, budget."""
    from pfgmbench.config import describe_presets

    rows = describe_presets(keys)
    if as_json:
        click.echo(to_json(rows))
        return
    for r in rows:
        click.echo(f"{r['preset']:<22} {r['scale']:<6} {r['data']:<12} N={r['N']:<6} {r['network']:<44} "
                   f"{r['family']} {r['knobs']}  {r['budget']}")
        click.echo(f"{'':<22} {r['description']}")
        if keys:
            click.echo(f"{'':<22} keys: {', '.join(r['keys'])}")


@cli.command("eval", context_settings=CONTEXT)
@click.option("--samples", type=click.Path(), default=None, help="A folder of PNGs or a samples.npz.")
@click.option("--run", "--run-dir", "run", type=click.Path(), default=None, help="Generate from this run in memory.")
@click.option("--ckpt", type=click.Path(), default=None, help="A snapshot file instead of --run.")
@click.option("--all-snapshots", is_flag=True, help="Score every snapshot of --run: Min and Top-3 average.")
@click.option("--metric", required=True, help="fid | is | fd-digits | is-digits | mmd | swd | energy | gmm-fd")
@click.option("--num", "--num-samples", "num", type=int, default=None,
              help="Samples to generate (with --run / --ckpt); default 1000.")
@click.option("--seeds", default=None, help="Seeds to generate (with --run / --ckpt), default 0-(num-1).")
@click.option("--seed-ranges", type=int, default=1, show_default=True,
              help="Repeat over K consecutive seed ranges (EDM reports the min of 3).")
@click.option("--steps", type=int, default=None)
@click.option("--sampler", default=None, help="Solver; default: the model family's.")
@click.option("--ref-stats", type=click.Path(), default=None, help="Reference statistics .npz (mu, sigma).")
@click.option("--ref-dataset", default=None, help="Data set for reference statistics / toy metrics.")
@click.option("--mode", type=click.Choice(["legacy_tensorflow", "clean"]), default="legacy_tensorflow",
              show_default=True, help="FID mode: legacy_tensorflow is what EDM / PFGM++ used.")
@click.option("--inception", type=click.Path(), default=None, help="Path of inception-2015-12-05.pt.")
@click.option("--download", is_flag=True, help="Allow downloading the Inception detector.")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--nproc", type=int, default=None, help="Launch torchrun with N processes on this node.")
def eval_cmd(samples, run, ckpt, all_snapshots, metric, num, seeds, seed_ranges, steps, sampler, ref_stats,
             ref_dataset, mode, inception, download, device, as_json, nproc):
    """Score samples: FID / IS with the Inception detector; offline proxy (digits) and toy metrics.

    \b
    Examples:
      pfgmbench eval --samples samples/d128 --metric fd-digits
      pfgmbench eval --run runs/d128 --metric fd-digits --num 1000 --all-snapshots --json
      pfgmbench eval --run runs/c10 --metric fid --num 50000 --ref-stats cifar10-32x32.npz --nproc 8
    """
    from pfgmbench import checkpoint
    from pfgmbench.evaluate import Scorer, device_for, evaluate_run, reference_dataset
    from pfgmbench.seeds import parse_seeds

    if sum(x is not None for x in (samples, run, ckpt)) != 1:
        raise UserError("give exactly one of --samples DIR, --run RUN or --ckpt FILE")
    if samples is not None:
        given = [o for o, v in (("--num", num), ("--seeds", seeds), ("--all-snapshots", all_snapshots or None),
                                ("--steps", steps), ("--sampler", sampler)) if v is not None]
        if given or seed_ranges != 1:
            names = given or ["--seed-ranges"]
            raise UserError(f"{', '.join(names)} {'applies' if len(names) == 1 else 'apply'} only when generating "
                            "(--run / --ckpt); --samples scores the images as they are: drop it")
    if all_snapshots and run is None:
        raise UserError("--all-snapshots needs --run RUN")
    _positive("--num", num)
    _positive("--seed-ranges", seed_ranges)
    _positive("--steps", steps, 2)
    if _relaunch(nproc):
        return
    dev = str(device_for(device))
    if samples is not None:
        res = Scorer(metric, ref_stats, ref_dataset, mode, inception, download, dev).score_folder(samples)
    else:
        snaps = [p for _, p in checkpoint.list_snapshots(run)] if all_snapshots else [ckpt or checkpoint.latest_snapshot(run)]
        if not snaps:
            checkpoint.latest_snapshot(run)   # raises the clear error
        cfg = checkpoint.load(snaps[-1], checkpoint.SNAPSHOT_FORMAT)["config"]
        scorer = Scorer(metric, ref_stats, ref_dataset or reference_dataset(metric, cfg), mode, inception, download, dev)
        base = parse_seeds(seeds) if seeds else list(range(num or 1000))
        res = evaluate_run(scorer, snaps, base, seed_ranges, steps, dev, sampler, progress=not as_json)
    if as_json:
        click.echo(to_json(res))
        return
    for r in res.get("rows", [res]):
        extra = f"  (floor {r['floor']:.3f} at n={r['floor_n']})" if "floor" in r else ""
        where = f"  {r['checkpoint']} (NFE {r['nfe']})" if "checkpoint" in r else ""
        click.echo(f"{r['metric']} = {r['value']:.4f}  n={r['n']}{extra}{where}")
    if "rows" in res:
        top3 = f", top-3 mean {res['top3_mean']:.4f}" if res.get("top3_mean") is not None else ""
        click.echo(f"best {res['min']:.4f}{top3}")


@cli.command(context_settings=CONTEXT)
@click.option("--dataset", required=True, help="cifar10 | imagefolder | digits")
@click.option("--root", default=None, help="Data location (cifar10 / imagefolder).")
@click.option("--mode", type=click.Choice(["legacy_tensorflow", "clean"]), default="legacy_tensorflow",
              show_default=True)
@click.option("--inception", type=click.Path(), default=None)
@click.option("--download", is_flag=True, help="Allow downloading the detector / data set.")
@click.option("--out", type=click.Path(), default=None, help="Also copy the statistics here.")
@click.option("--device", default="auto", show_default=True)
def ref(dataset, root, mode, inception, download, out, device):
    """Compute FID reference statistics of a data set (cached by data-set fingerprint).

    \b
    Example:
      pfgmbench ref --dataset cifar10 --download --out cifar10-train.npz
    """
    from pfgmbench.evaluate import device_for, reference_statistics

    path = reference_statistics(dataset, root, mode, inception, download, str(device_for(device)), out)
    click.echo(f"reference statistics (mode {mode}): {path}")


def _sweep_options(f):
    opts = [
        click.option("--preset", default="digits-table", show_default=True),
        _family_option,
        click.option("--seeds", default="0", show_default=True, help="Training seeds, e.g. 0-2 or 0,1,2."),
        click.option("--metric", default=None, help="Default: fd-digits for digits, mmd for toys, fid for images."),
        click.option("--num", "--num-samples", "num", type=int, default=None,
                     help="Samples per checkpoint (default 1000; 50000 at paper scale)."),
        click.option("--steps", type=int, default=None, help="Sampler steps (default: the preset's)."),
        click.option("--sampler", default=None, help="Solver (default: the family's)."),
        click.option("--kimg", type=float, default=None, help="Training duration (default: the preset's)."),
        click.option("--score-from-kimg", type=float, default=None,
                     help="Score snapshots from this kimg on (default: the last three)."),
        click.option("--cond", is_flag=True, help="Class-conditional models."),
        click.option("--absolute", is_flag=True, help="Use the knob values as given (no mapping to the proxy's N)."),
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


def _run_sweep(rows_for, out_csv, preset, family, seeds, metric, num, steps, sampler, kimg, score_from_kimg, cond,
               absolute, sets, ref_stats, inception, runs_dir, device, quiet, variants=None):
    from pfgmbench.seeds import parse_seeds
    from pfgmbench.tables.sweep import make_spec, run_sweep

    _positive("--num", num)
    _positive("--steps", steps, 2)
    spec = make_spec(preset, rows_for(family, cond, sampler), parse_seeds(seeds), metric, num, steps, kimg,
                     score_from_kimg, absolute, sets, ref_stats, inception, runs_dir, device, variants=variants)
    new = run_sweep(spec, out_csv, progress=not quiet)
    click.echo(f"{new} new rows -> {out_csv}")


@cli.command("sweep-d", context_settings=CONTEXT)
@click.option("--values", default="64,128,2048,inf", show_default=True,
              help="D values at paper scale (mapped by N/paper_N on proxies unless --absolute).")
@click.option("--out", "out_csv", default="results/sweep-d.csv", show_default=True, type=click.Path())
@_sweep_options
def sweep_d(values, out_csv, **kw):
    """Train (or reuse) one model per D and seed, score its snapshots, one CSV row per checkpoint.

    \b
    Examples:
      pfgmbench sweep-d --values 64,128,2048,inf --seeds 0-2 --out runs/sweep-d.csv
      pfgmbench sweep-d --preset cifar10-ncsnpp --values 128,2048 --num 50000 --ref-stats cifar10.npz
    """
    from pfgmbench.physics.pfgmpp import parse_D_list
    from pfgmbench.tables.specs import Row

    Ds = parse_D_list(values)
    _run_sweep(lambda family, cond, sampler: [Row(family or "pfgmpp", (("D", D),), cond, sampler) for D in Ds],
               out_csv, **kw)


@cli.command(context_settings=CONTEXT)
@click.option("--axis", required=True, help="A config key and its values, e.g. train.lr=1e-3,2e-3.")
@click.option("--D", "D", default=None, help="Paper-scale D of every model (default: the preset's).")
@click.option("--out", "out_csv", default="results/sweep.csv", show_default=True, type=click.Path())
@_sweep_options
def sweep(axis, D, out_csv, **kw):
    """Sweep any config axis: one model per value and seed, every last-three snapshot scored.

    \b
    Examples:
      pfgmbench sweep --axis train.lr=1e-3,2e-3,4e-3 --D 2048 --seeds 0,1 --out runs/lr.csv
      pfgmbench sweep --axis sample.steps=10,18,40 --family edm --out runs/steps.csv
    """
    from pfgmbench.config import resolve
    from pfgmbench.physics import family_class
    from pfgmbench.physics.pfgmpp import parse_D
    from pfgmbench.tables.specs import Row
    from pfgmbench.tables.sweep import parse_axis

    variants = parse_axis(axis)
    Dv = parse_D(D) if D is not None else None
    for _, sets in variants:   # every value must resolve, with the family and --set, before anything trains
        resolve(kw["preset"], family=kw["family"], D=Dv, sets=(*kw["sets"], *sets))
    base = resolve(kw["preset"], family=kw["family"], D=Dv, sets=kw["sets"])
    fam = family_class(base["physics"]["family"])
    knob = axis.split("=", 1)[0].removeprefix("physics.")
    if knob in fam.knob_names:   # a model knob (D, m, ...): one table row per value, as sweep-d makes
        values = [float(s.split("=", 1)[1]) for _, (s,) in variants]
        model_rows = [tuple((k, v if k == knob else base["physics"][k]) for k in fam.knob_names) for v in values]
        variants = None
    else:
        model_rows = [tuple((k, base["physics"][k]) for k in fam.knob_names)]

    def rows(family, cond, sampler):
        return [Row(fam.name, knobs, cond, sampler) for knobs in model_rows]

    _run_sweep(rows, out_csv, variants=variants, **{**kw, "absolute": True if D is None else kw["absolute"]})


@cli.command(context_settings=CONTEXT)
@click.option("--results", "results_csv", required=True, type=click.Path())
@click.option("--table", "table", default="table1", show_default=True,
              help="Which spec renders it: table1 | table2 | table3 | alpha | steps | pfgm | genphys-toy | "
                   "genphys-digits.")
@click.option("--out", "out_md", default=None, type=click.Path(), help="Also write the Markdown here.")
@click.option("--plot", default=None, type=click.Path(), help="Also write the plot (PNG).")
def table(results_csv, table, out_md, plot):
    """Render a results CSV as the paper's table, ours beside the paper's numbers.

    \b
    Example:
      pfgmbench table --results runs/reproduce/table1-proxy/results.csv --table table1 --plot t1.png
    """
    from pfgmbench.tables.reproduce import render_csv

    click.echo(render_csv(results_csv, table, out_md, plot))


@cli.command(context_settings=CONTEXT)
@click.argument("what", type=click.Choice(reproducible()))
@click.option("--scale", type=click.Choice(["proxy", "paper"]), default="proxy", show_default=True)
@click.option("--seeds", default=None, help="Training seeds, e.g. 0-2 (default: proxy 0,1; paper 0).")
@click.option("--out-dir", default=None, type=click.Path(),
              help="Default: runs/reproduce/<what>-<scale> (untracked); results/<what>-<scale> refreshes the "
                   "committed copy.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--inception", type=click.Path(), default=None)
@click.option("--ref-stats", type=click.Path(), default=None)
@click.option("--kimg", type=float, default=None, help="Override the training duration (quick looks).")
@click.option("--num", "--num-samples", "num", type=int, default=None, help="Override the samples per checkpoint.")
@click.option("--device", default="auto", show_default=True)
@click.option("--from-checkpoints", type=click.Path(), default=None,
              help="table3 / alpha / steps: stress these checkpoints (the authors' .pkl / .pt files, imported "
                   "safely, or run folders) instead of training.")
@click.option("--quiet", is_flag=True)
def reproduce(what, scale, seeds, out_dir, runs_dir, inception, ref_stats, kimg, num, device, from_checkpoints, quiet):
    """Reproduce a table end to end: sweep, CSV, Markdown, plots (table3 / alpha / steps stress table1's models).

    \b
    Examples:
      pfgmbench reproduce table1                       # proxy scale, CPU, < 30 min
      pfgmbench reproduce alpha --seeds 0-2
      pfgmbench reproduce pfgm-table                   # PFGM beside VP-SDE, VP-ODE, DDIM, DDPM, PFGM++, EDM
      pfgmbench reproduce table1 --scale paper --ref-stats cifar10-32x32.npz --inception inception-2015-12-05.pt
      pfgmbench reproduce table3 --scale paper --from-checkpoints released/ --ref-stats cifar10-32x32.npz
    """
    from pfgmbench.seeds import parse_seeds
    from pfgmbench.tables.reproduce import reproduce as run_reproduce

    if seeds is not None:
        parse_seeds(seeds)
    _positive("--num", num)
    click.echo(run_reproduce(what, scale, seeds, out_dir, runs_dir, inception, ref_stats, kimg, num, device,
                             progress=not quiet, from_checkpoints=from_checkpoints))


@cli.command("import", context_settings=CONTEXT)
@click.argument("checkpoint", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="The run folder to create.")
@click.option("--preset", default=None, help="Base preset (default: chosen from the network and image size).")
@click.option("--D", "D", default=None, help="PFGM++ D, needed when the file does not record it.")
@click.option("--data", default=None, help="Data set of the run (e.g. cifar10, or an image folder / zip).")
def import_cmd(checkpoint, out, preset, D, data):
    """Import an authors' checkpoint (EDM .pkl, PFGM++ .pt) safely: an allow-list unpickler reads it as
    data, never running code from it; the result is a normal run folder for sample / eval / robustness.

    \b
    Examples:
      pfgmbench import edm-cifar10-32x32-uncond-vp.pkl --out runs/edm-vp
      pfgmbench import pfgmpp-cifar10-D128.pt --D 128 --out runs/pfgmpp-128
    """
    from pfgmbench.importer import import_checkpoint
    from pfgmbench.physics.pfgmpp import parse_D

    run = import_checkpoint(checkpoint, out, preset=preset, D=parse_D(D) if D is not None else None, data=data)
    click.echo(f"imported {checkpoint} -> {run}")


@cli.command(context_settings=CONTEXT)
@click.option("--out", default="runs/reproduce/demos", show_default=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def demos(out, as_json):
    """The talk's pictures from exact fields on 2-D data: PFGM and PFGM++ trajectories, and the
    collapse without the extra dimension (PNGs and summary.json; about a minute on a CPU).

    \b
    Example:
      pfgmbench demos --out runs/demos
    """
    from pfgmbench.demos import make_demos
    from pfgmbench.progress import log

    summary = make_demos(out, progress=log)
    click.echo(to_json(summary) if as_json else f"demos -> {out} ({len(summary)} panels summarised in summary.json)")


@cli.group(context_settings=CONTEXT)
def genphys():
    """GenPhys: is a linear PDE s-generative, and what do its solutions do?

    \b
    Examples:
      pfgmbench genphys classify "phi_t = lap phi"
      pfgmbench genphys classify "phi_tt + 2 eps phi_t - lap phi" --param eps=0.1:3 --json
      pfgmbench genphys table --out runs/genphys
      pfgmbench genphys simulate "phi_tt + lap phi - m^2 phi" --param m=1 --dims 2 --mode qualifying --out runs/sim
    """


@genphys.command("classify", context_settings=CONTEXT)
@click.argument("pde")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE|NAME=LO:HI", help="A parameter value or range.")
@click.option("--k-max", type=float, default=10.0, show_default=True, help="Largest wavenumber checked.")
@click.option("--json", "as_json", is_flag=True)
def genphys_classify(pde, params, k_max, as_json):
    """Derive the dispersion relation of PDE and apply the s-generative test C2.

    PDE is an equation ("phi_t = lap phi") or an expression meaning "= 0" ("phi_t - lap phi"), with
    phi_t, phi_tt, ..., lap, lap^2, (-lap)^beta, i, numbers and named parameters.

    \b
    Example:
      pfgmbench genphys classify "phi_tt + lap phi + k0^2 phi" --param k0=0.1:3
    """
    from pfgmbench.genphys.dispersion import classify
    from pfgmbench.genphys.report import classify_text, parse_params

    if not k_max > 0:
        raise UserError(f"--k-max must be > 0, got {k_max}")
    res = classify(pde, parse_params(params) or None, k_max=k_max)
    click.echo(to_json(json.loads(json.dumps(res, default=str))) if as_json else classify_text(res))


@genphys.command("table", context_settings=CONTEXT)
@click.option("--out", default="runs/reproduce/genphys", show_default=True, type=click.Path())
def genphys_table(out):
    """The talk's two tables (seven classic PDEs, four new ones): our derived dispersion relations and
    verdicts beside the talk's, with where and why they differ; and a PNG of Im w(k) per PDE.

    \b
    Example:
      pfgmbench genphys table --out runs/genphys
    """
    from pfgmbench.genphys.report import write_table

    click.echo(write_table(out))


@genphys.command("simulate", context_settings=CONTEXT)
@click.argument("pde")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE")
@click.option("--dims", type=click.Choice(["1", "2"]), default="1", show_default=True)
@click.option("--t-max", type=float, default=1.0, show_default=True)
@click.option("--mode", type=click.Choice(["ivp", "qualifying"]), default="ivp", show_default=True,
              help="ivp: all time derivatives zero at the start; qualifying: the decaying branch only.")
@click.option("--out", default=None, type=click.Path(), help="Write the figures here.")
@click.option("--json", "as_json", is_flag=True)
def genphys_simulate(pde, params, dims, t_max, mode, out, as_json):
    """Spectral (FFT) solution of PDE from a two-bump start: smoothing, oscillation or blow-up.

    \b
    Example:
      pfgmbench genphys simulate "phi_t = lap phi" --dims 2 --out runs/sim
    """
    from pfgmbench.genphys.report import parse_params, run_simulation

    if not t_max > 0:
        raise UserError(f"--t-max must be > 0, got {t_max}")
    p = parse_params(params)
    if any(isinstance(v, tuple) for v in p.values()):
        raise UserError("simulate needs parameter values, not ranges (e.g. --param eps=0.5)")
    res = run_simulation(pde, p or None, int(dims), t_max, mode, out)
    click.echo(to_json(res) if as_json else f"{pde}: {res['message']}" + (f"  [figure: {res['figure']}]" if out else ""))


@cli.command("gpu-check", context_settings=CONTEXT)
@click.option("--device", default="cuda", show_default=True)
@click.option("--tiny", is_flag=True, help="A tiny network and batches: every path in about a minute on a CPU.")
@click.option("--out", default="results/gpu", show_default=True, type=click.Path())
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--modes", default=None, help="Only these modes, e.g. fp32,bf16 (default: all).")
@click.option("--json", "as_json", is_flag=True)
def gpu_check(device, tiny, out, repeats, modes, as_json):
    """Training / sampling throughput, peak memory and projected device-days of cifar10-ncsnpp (synthetic
    data) in float32 and each speed mode under torchrun, and the device's loss trajectory against the
    CPU's; writes gpu-check.csv and gpu-check.md. experiments/gpu-check.sh runs it with the tests.

    \b
    Examples:
      pfgmbench gpu-check --device cuda --out results/gpu
      pfgmbench gpu-check --device cpu --tiny --out runs/gpu-tiny
    """
    from pfgmbench.gpucheck import require_ok, run_check
    from pfgmbench.progress import log

    _positive("--repeats", repeats)
    summary = run_check(device, tiny, out, repeats, log=log, modes=[m for m in (modes or "").split(",") if m])
    click.echo(to_json(summary) if as_json else (Path(out) / "gpu-check.md").read_text())
    require_ok(summary)


@cli.command("check-regression", context_settings=CONTEXT)
@click.option("--baseline", default="results/baselines/ci.csv", show_default=True, type=click.Path())
@click.option("--update", is_flag=True, help="Rewrite the baseline from this run.")
def check_regression(baseline, update):
    """Small-subset sweep (toy + tiny digits) against a baseline; exit 1 on a regression.

    \b
    Example:
      pfgmbench check-regression --baseline results/baselines/ci.csv
    """
    from pfgmbench.regression import check

    ok, lines = check(baseline, update)
    for ln in lines:
        click.echo(ln)
    if not ok:
        click.echo("metric regression: a cell is worse than its baseline beyond the seed-spread tolerance", err=True)
        sys.exit(1)
    click.echo("check-regression: all cells within tolerance" if not update else "check-regression: baseline updated")


@cli.command(context_settings=CONTEXT)
@click.argument("kind", type=click.Choice(["alpha", "quant", "steps"]))
@click.option("--values", default=None, help="alpha: 0,0.05,...,0.45; quant: bits 9,8,7,6,5; steps: 10,12,...,24.")
@click.option("--sweep", "sweep_csv", required=True, type=click.Path(), help="The sweep whose trained models to stress.")
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
    """Stress a sweep's trained models: sampler noise alpha, weight bits, or step count.

    \b
    Examples:
      pfgmbench robustness alpha --sweep runs/reproduce/table1-proxy/results.csv --out runs/alpha.csv
      pfgmbench robustness quant --values 8,6,4,3 --quant-rule all --sweep runs/sweep-d.csv
    """
    from pfgmbench.evaluate import device_for
    from pfgmbench.physics.pfgmpp import parse_D_list
    from pfgmbench.tables.robustness import parse_values, run_robustness
    from pfgmbench.tables.specs import SPECS

    vals = parse_values(kind, values or ",".join(str(v) for v in SPECS[{"quant": "table3"}.get(kind, kind)].stress_values))
    knobs = [{"D": D} for D in parse_D_list(D_values)] if D_values else None
    _positive("--num", num)
    out_csv = out_csv or f"results/robustness-{kind}.csv"
    new = run_robustness(kind, vals, sweep_csv, out_csv, metric, num, quant_rule, knobs, str(device_for(device)),
                         inception, ref_stats, progress=not quiet)
    click.echo(f"{new} new rows -> {out_csv}")


@cli.command(context_settings=CONTEXT)
@click.argument("folder", default="runs", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def runs(folder, as_json):
    """List run folders: preset, model, kimg done of planned, last loss, snapshots, commit.

    \b
    Example:
      pfgmbench runs runs/digits-table --json
    """
    from pfgmbench.run_folder import list_runs

    rows = list_runs(folder)
    if as_json:
        click.echo(to_json(rows))
        return
    if not rows:
        click.echo(f"no run folders under {folder}")
    for r in rows:
        loss = f"{r['last_loss']:.4g}" if r["last_loss"] is not None else "–"
        knobs = " ".join(f"{k}={r[k]:g}" for k in ("D",) if k in r)
        click.echo(f"{r['run']}  {r['preset']}  {r['family']} {knobs}  seed {r['seed']}{' cond' if r['cond'] else ''}  "
                   f"{r['kimg_done']:g}/{r['kimg_planned']:g} kimg ({r['status']})  loss {loss}  "
                   f"{r['snapshots']} snapshots  commit {r['commit'] or '–'}")


@cli.command(context_settings=CONTEXT)
@click.argument("run", type=click.Path())
@click.option("--json", "as_json", is_flag=True)
def show(run, as_json):
    """Show one run in full: its config, progress, snapshots and the commits it ran at.

    \b
    Example:
      pfgmbench show runs/d128
    """
    from pfgmbench.config import dump
    from pfgmbench.run_folder import describe

    d = describe(run, full=True)
    if as_json:
        click.echo(to_json(d))
        return
    cfg = d.pop("config")
    for k, v in d.items():
        click.echo(f"{k}: {v}")
    click.echo("config:\n" + "\n".join("  " + ln for ln in dump(cfg).splitlines()))


@cli.command(context_settings=CONTEXT)
@click.option("--preset", default="digits", show_default=True)
@click.option("--D", "D", default=None, help="PFGM++ D (default: the preset's).")
@click.option("--device", default="auto", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="E.g. data.name=synthetic, compute.bf16=true, train.batch=64.")
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--inception", type=click.Path(), default=None, help="Detector for the evaluation throughput.")
@click.option("--fd-dim", type=int, default=2048, show_default=True, help="Feature size for the FD timing.")
@click.option("--skip-eval", is_flag=True, help="Only the sampler / training measurements.")
@click.option("--json", "as_json", is_flag=True)
def bench(preset, D, device, sets, repeats, inception, fd_dim, skip_eval, as_json):
    """Measure training images/s, sampling images/s, peak memory and the projected device-days for the
    preset's full duration; sampler / training overheads; evaluation throughput and the FD speed-up.

    \b
    Examples:
      pfgmbench bench --preset digits --json
      pfgmbench bench --preset cifar10-ncsnpp --device cuda --set data.name=synthetic --skip-eval --json
      pfgmbench bench --preset cifar10-ncsnpp --device cuda --set data.name=synthetic --set compute.bf16=true
    """
    from pfgmbench.bench import run_bench, run_eval_bench
    from pfgmbench.config import resolve
    from pfgmbench.distributed import device as check_device
    from pfgmbench.physics.pfgmpp import parse_D

    _positive("--repeats", repeats)
    check_device(device)
    res = run_bench(resolve(preset, D=parse_D(D) if D is not None else None,
                            sets=(*sets, f"train.device={device}")), repeats=repeats)
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
    except click.exceptions.NoArgsIsHelpError as e:   # `pfgmbench` alone: the help text
        e.show()
        clean = True
    except click.ClickException as e:   # usage errors: one line too
        ctx = getattr(e, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        click.echo(f"error: {e.format_message()}{where}", err=True)
        sys.exit(2)
    except OSError as e:    # a folder that cannot be written, a full disk: say which file, no traceback
        what = f"{e.strerror or type(e).__name__}" + (f": {e.filename}" if e.filename else "")
        click.echo(f"error: {what}; check the path and its permissions (or free space) and rerun", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; rerun the same command (with --resume auto for train) to continue", err=True)
        sys.exit(130)
    finally:
        distributed.shutdown(clean)   # every exit path leaves the process group (torchrun)
    sys.exit(0)
