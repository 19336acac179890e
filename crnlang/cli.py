"""The ``crnlang`` command: a thin shell over the Python API.

Exit status: 0 success, 1 a model error (printed as FILE:LINE:COL: error: ...), 2 a usage error.
No input, however broken, produces a Python traceback (set CRNLANG_DEBUG=1 to see one for an
internal error).
"""
from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path

import click

from .errors import CRNError
from .files import write_text_atomic
from .vocabulary import METHODS, NEURAL_METHODS

_SECTIONS = {
    "solve": None, "network": {"kind": "network"}, "sampling": {"kind": "sampling"},
    "rare": None,
}


def _fail(err: CRNError) -> None:
    click.echo(err.format(), err=True)
    sys.exit(1)


def guarded(command):
    """Turn CRNError into a printed diagnostic (exit 1) and any other crash into one line."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CRNError as err:
            _fail(err)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
            if os.environ.get("CRNLANG_DEBUG"):
                raise
            click.echo(f"crnlang: internal error: {type(exc).__name__}: {exc}\n"
                       "hint: this is a bug in crnlang; rerun with CRNLANG_DEBUG=1 for a "
                       "traceback and report it", err=True)
            sys.exit(1)

    return wrapper


def parse_value(text: str):
    """A --set value: int, float, bool, a list of names (a,b) or a bare word."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_overrides(assignments) -> tuple[dict, dict]:
    """``--set solve.dt=1e-3 --set param.c1=3`` -> (settings overrides, param overrides)."""
    from .model.ir import Settings

    settings, params = {}, {}
    known = set(Settings.__dataclass_fields__) | {"lambda"}
    for item in assignments:
        if "=" not in item:
            raise click.UsageError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        key = key.strip()
        section, _, name = key.rpartition(".")
        if section == "param":
            try:
                params[name] = float(value)
            except ValueError:
                raise click.UsageError(f"--set {key}: '{value}' is not a number") from None
            continue
        if section and section not in _SECTIONS:
            raise click.UsageError(f"--set {key}: unknown section '{section}' "
                                   f"(use solve., network., sampling., rare or param.)")
        name = (_SECTIONS.get(section) or {}).get(name, name)
        if section == "rare" or name == "rare":
            settings["rare"] = tuple(v.strip() for v in value.split(",") if v.strip())
            continue
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise click.UsageError(f"--set {key}: unknown setting '{name}'{hint}")
        settings[name] = parse_value(value)
    return settings, params


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crnlang", prog_name="crnlang")
def cli():
    """crnlang: stochastic chemical reaction networks, from a .crn file to a solved CME."""


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@guarded
def check(files):
    """Parse and check .crn FILES; print FILE:LINE:COL: error: ... for every problem."""
    from .model.lower import check_file

    failed = False
    for path in files:
        for err in check_file(path):
            click.echo(err.format(), err=True)
            failed = True
    if failed:
        sys.exit(1)
    click.echo(f"ok: {len(files)} file{'s' if len(files) != 1 else ''} clean")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the analysis as JSON")
@guarded
def analyze(file, as_json):
    """Conservation laws, bounds, eliminated species and state-space size of FILE."""
    import crnlang

    analysis = crnlang.analyze(crnlang.load(file))
    if as_json:
        click.echo(json.dumps(analysis.to_dict(), indent=2))
    else:
        click.echo(analysis.report())


@cli.command("compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the module here")
@guarded
def compile_command(file, output):
    """Generate the specialised PyTorch solver module of FILE."""
    import crnlang

    source = crnlang.emit(crnlang.load(file))
    if output:
        write_text_atomic(output, source)
        click.echo(f"wrote {output}")
    else:
        click.echo(source, nl=False)


def solve_once_warned(model, **options):
    """``crnlang.solve`` with every warning said once, in the summary: Python's copies of the
    solvers' warnings (with an internal file and line) are dropped, a user warning the
    result does not hold yet is added to it, and library noise (deprecations, numerical
    RuntimeWarnings from scipy or matplotlib) is hidden."""
    import warnings

    from .dispatch import solve as run_solve

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_solve(model, **options)
    for caught_warning in caught:
        text = str(caught_warning.message)
        if issubclass(caught_warning.category, UserWarning) and text not in result.warnings:
            result.warnings.append(text)
    return result


def cli_progress(quiet: bool):
    """The run's progress reporter: a bar on a terminal, else a line every
    $CRNLANG_PROGRESS_SECONDS (default 10) seconds on stderr; none with --quiet."""
    from .progress import Progress

    seconds = float(os.environ.get("CRNLANG_PROGRESS_SECONDS") or 10)
    return Progress(enabled=not quiet, interval=seconds)


def _load_with_overrides(file, assignments):
    import crnlang
    from .model.params import with_params

    settings, params = parse_overrides(assignments)
    model = crnlang.load(file)
    if params:
        model = with_params(model, params)
    return model, settings


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", type=click.Choice(list(METHODS)),
              help="override @solve(method=...)")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="override a setting: solve.dt=1e-3, network.hidden=32, param.c1=3 ...")
@click.option("--out", type=click.Path(file_okay=False), help="output folder (default out/<model>/)")
@click.option("--resume", is_flag=True, help="continue a killed neural run from its checkpoint")
@click.option("--no-plots", is_flag=True, help="skip the PNG plots")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar or progress lines")
@click.option("--threads", type=click.IntRange(min=1), metavar="N",
              help="torch intra-op threads (default: torch's own choice)")
@click.option("--device", default="auto", show_default=True, metavar="cpu|cuda|cuda:N|auto",
              help="where the solve runs (auto: the GPU when there is one, for the neural "
                   "methods and tau; FSP and SSA stay on the CPU)")
@guarded
def solve(file, method, assignments, out, resume, no_plots, quiet, threads, device):
    """Solve the CME of FILE and write summary.json, results.npz and plots."""
    model, settings = _load_with_overrides(file, assignments)
    method = method or settings.pop("method", None)       # --method wins over --set method=
    out_dir = Path(out) if out else Path("out") / model.name
    check_writable(out_dir)
    _set_threads(threads)
    solve_and_write(model, out_dir, no_plots, quiet, method=method, device=device,
                    checkpoint_dir=out_dir / "checkpoint", resume=resume, **settings)


def solve_and_write(model, out_dir: Path, no_plots: bool, quiet: bool, **options) -> None:
    """Solve, write the files and print the summary. Under torchrun (``crnlang.distributed``)
    every process solves its share and only rank 0 reports, writes and prints."""
    from . import distributed

    joined = distributed.start_from_environment()
    try:
        main = distributed.is_main()
        result = solve_once_warned(model, progress=cli_progress(quiet or not main), **options)
        if not main:
            return
        written = result.save(out_dir) if not no_plots else _save_without_plots(result, out_dir)
        click.echo(format_summary(result))
        click.echo(f"wrote {len(written)} files to {out_dir}/")
    finally:
        if joined:
            distributed.stop()


def check_writable(out_dir: Path) -> None:
    """Refuse an output folder that cannot be written before any work is done (usage error)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise click.UsageError(f"--out {out_dir}: exists and is not a folder; name a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".crnlang-write-test-{os.getpid()}"   # one per process (torchrun)
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise click.UsageError(f"--out {out_dir}: cannot write there ({e.strerror or e}); "
                               "name a folder you can write to") from None


def _set_threads(threads: int | None) -> None:
    """``--threads N``, or by default the cores that are not busy (``auto_threads``)."""
    import torch

    if threads is None:
        try:
            load = os.getloadavg()[0]
        except (OSError, AttributeError):
            load = 0.0
        threads = auto_threads(os.cpu_count() or 1, load)
    torch.set_num_threads(threads)


def auto_threads(cores: int, load: float) -> int:
    """The cores left free by the machine's 1-minute load, at least 1. Measured on this
    project's 2-core machine: idle, 2 threads beat 1 by 10-15 % (toggle switch 16.7 s against
    18.2 s); with the other core busy, torch's default of all cores made a small run 26 times
    slower (birth-death 33.8 s against 1.3 s)."""
    return max(1, min(cores, int(cores - load + 0.5)))


def _save_without_plots(result, out_dir):
    from .io.results import save_result

    return save_result(result, out_dir, plots=False)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("-n", "--runs", default=1000, show_default=True, help="number of SSA trajectories")
@click.option("--seed", type=int, help="random seed")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE", help="as for solve")
@click.option("--out", type=click.Path(file_okay=False), help="output folder (default out/<model>/ssa)")
@click.option("--no-plots", is_flag=True, help="skip the PNG plots")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar or progress lines")
@click.option("--device", default="auto", show_default=True, metavar="cpu|cuda|cuda:N|auto",
              help="where the runs are simulated (auto: the CPU's compiled engine)")
@guarded
def simulate(file, runs, seed, assignments, out, no_plots, quiet, device):
    """Gillespie simulation (SSA) of FILE: means, variances and histograms over RUNS."""
    model, settings = _load_with_overrides(file, assignments)
    settings.pop("method", None)                          # simulate is always ssa
    settings["batch"] = runs
    if seed is not None:
        settings["seed"] = seed
    out_dir = Path(out) if out else Path("out") / model.name / "ssa"
    check_writable(out_dir)
    _set_threads(None)
    solve_and_write(model, out_dir, no_plots, quiet, method="ssa", device=device, **settings)


@cli.command("import")
@click.argument("xml", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the .crn here")
@click.option("--lenient", is_flag=True, help="turn unsupported SBML features into warnings")
@click.option("--default-bound", type=click.IntRange(min=1), metavar="N",
              help="truncate every species without a bound at N (FSP and neural methods need one)")
@guarded
def import_command(xml, output, lenient, default_bound):
    """Convert an SBML model to .crn text."""
    from .io.sbml import import_sbml

    text, warnings = import_sbml(xml, lenient=lenient, default_bound=default_bound)
    for w in warnings:
        click.echo(f"{xml}: warning: {w}", err=True)
    if output:
        write_text_atomic(output, text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--sbml", is_flag=True, default=True, help="SBML Level 3 Version 2 (the default)")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the SBML here")
@guarded
def export(file, sbml, output):
    """Export FILE as SBML (what SBML cannot say travels in a crnlang annotation)."""
    import crnlang
    from .io.sbml import export_sbml

    xml = export_sbml(crnlang.load(file))
    if output:
        write_text_atomic(output, xml)
        click.echo(f"wrote {output}")
    else:
        click.echo(xml, nl=False)


PARETO_K_UNRELIABLE = 0.7


def format_summary(result, max_rows: int = 12) -> str:
    """A short human-readable account of a Result: what ran, and the final numbers."""
    t_end = float(result.times[-1]) if len(result.times) else 0.0
    lines = [f"{result.model_name}: {result.method}, t = 0..{t_end:g} "
             f"({len(result.times)} saved times), {result.wall_seconds:.1f} s"]
    if result.extra.get("method_reason"):
        lines.append(f"  method: {result.extra['method_reason']}")
    if result.extra.get("device", "cpu") != "cpu":
        lines.append(f"  device: {result.extra['device']}")
    if result.extra.get("ssa_engine"):
        lines.append(f"  engine: {result.extra['ssa_engine']}, "
                     f"{result.extra.get('events', 0):,} events")
    if result.extra.get("processes", 1) > 1:
        lines.append(f"  batch split over {result.extra['processes']} processes"
                     + (" (each drew the whole batch: CRNLANG_SAME_SAMPLES)"
                        if result.extra.get("same_samples") else ""))
    if result.extra.get("ignored_settings"):
        lines.append(f"  settings {result.method} does not use: "
                     f"{', '.join(result.extra['ignored_settings'])}")
    names = [n for n in result.species if n in result.means]
    names += [n for n in result.means if n not in result.species]   # numeric observables
    shown = names[:max_rows]
    if shown:
        width = max(7, max(len(n) for n in shown))
        lines.append(f"  {'name':<{width}}  {'mean':>10}  {'std':>10}   at t = {t_end:g}")
        for name in shown:
            mean = result.mean(name)[-1]
            std = float(result.std(name)[-1])
            err = result.stderr.get(f"mean:{name}")
            pm = f" ± {err[-1]:.2g}" if err is not None else ""
            lines.append(f"  {name:<{width}}  {mean:>10.4g}  {std:>10.4g}{pm}")
        if len(names) > len(shown):
            lines.append(f"  ... and {len(names) - len(shown)} more species (see summary.json)")
    runs = result.extra.get("runs")
    for name, values in result.probs.items():
        err = result.stderr.get(f"prob:{name}")
        if runs and values[-1] == 0:        # never seen: say how rare it could still be
            lines.append(f"  P({name}) < {3 / runs:.2g} at t = {t_end:g} (0 of {runs} runs, 95% bound; "
                         "a rare event: @rare with a neural method estimates it)")
            continue
        pm = f" ± {err[-1]:.2g}" if err is not None else ""
        lines.append(f"  P({name}) = {values[-1]:.4g}{pm} at t = {t_end:g}")
    for name, info in result.extra.get("rare", {}).items():
        how = ("sequential sampling inside the region" if info.get("estimator") == "sequential"
               else "importance sampling")
        lines.append(f"  rare {name}: P = {info['estimate']:.3g} ± {info['stderr']:.2g} "
                     f"({how}, n = {info['n']})")
        k = info.get("pareto_k")
        if k is not None and not math.isnan(k) and k > PARETO_K_UNRELIABLE:
            lines.append(f"    the importance weights' tail has Pareto k = {k:.2g} > "
                         f"{PARETO_K_UNRELIABLE}: this estimate and its error bar are unreliable "
                         "(try another alpha or sampling = mixture)")
    for name, passage in result.extra.get("first_passage", {}).items():
        rate = passage["rate"]
        rate_text = (f"switching rate {rate:.4g} ± {passage['rate_stderr']:.2g} (late-time slope "
                     f"of log(1 - P))" if math.isfinite(rate) else "no switching rate (too few "
                     "late saved times with 0 < P < 1)")
        lines.append(f"  first passage into {name}: {rate_text}; mean time >= "
                     f"{passage['mean_time_lower']:.4g}")
    if result.edge_mass is not None and len(result.edge_mass):
        lines.append(f"  truncation edge mass: max {float(max(result.edge_mass)):.2g}")
    if result.method in NEURAL_METHODS and not any(k.startswith("mean:") for k in result.stderr):
        lines.append("  (no error bars: these figures are exact for the trained network, whose own "
                     "error against the CME is not estimated)")
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def main(argv=None):
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="crnlang", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
