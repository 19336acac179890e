"""Every file in examples/ as shipped, timed against the 10-minute rule (issue 16).

    python benchmarks/bench_examples.py                    # every example, one after another
    python benchmarks/bench_examples.py schlogl1d mapk     # some of them
    python benchmarks/bench_examples.py --limit 600 --threads 2

Each example runs as a user runs it, `crnlang solve FILE --no-plots -q --out DIR` in a fresh
process, under a wall-clock limit (default 600 s, the rule). Per example it prints the method
the file asks for, the wall time or "over the limit" with the simulated time it had reached,
and the final line of the summary (P(...) or a mean). Baseline: the limit itself; a row over
it is a failure of the rule, and the script exits 1 when any row fails.

Run it on an otherwise idle machine: two at once halve each other's speed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def method_of(path: Path) -> str:
    import crnlang

    return crnlang.load(path).settings.method


def run_one(path: Path, limit: float, threads: int | None) -> tuple[str, float, str]:
    """(status, wall seconds, what it printed last or how far it got)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "crnlang", "solve", str(path), "--no-plots", "--out", out]
        if threads:
            cmd += ["--threads", str(threads)]
        env = dict(os.environ, CRNLANG_PROGRESS_SECONDS="10")
        tick = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env)
        except subprocess.TimeoutExpired as stopped:
            err = stopped.stderr.decode() if isinstance(stopped.stderr, bytes) else (stopped.stderr or "")
            progress = [line for line in err.splitlines() if line.startswith("[crnlang]")]
            return "over", time.perf_counter() - tick, progress[-1] if progress else "no progress line"
        wall = time.perf_counter() - tick
        if done.returncode != 0:
            return f"exit {done.returncode}", wall, (done.stderr.strip().splitlines() or [""])[-1]
        summary = json.loads((Path(out) / "summary.json").read_text())
        probs = summary.get("prob", {})
        if probs:
            name = next(iter(probs))
            last = f"P({name}) = {probs[name][-1]:.4g}"
        else:
            name = summary["species"][0]
            last = f"mean {name} = {summary['mean'][name][-1]:.4g}"
        return "ok", wall, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="example names (default: all)")
    parser.add_argument("--limit", type=float, default=600.0, help="seconds per example (the rule: 600)")
    parser.add_argument("--threads", type=int, help="passed to --threads (default: crnlang's choice)")
    args = parser.parse_args()
    paths = sorted(EXAMPLES.glob("*.crn"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    print(f"{'example':<18} {'method':<7} {'status':<8} {'wall s':>8}   last figure / progress")
    failed = 0
    for path in paths:
        status, wall, last = run_one(path, args.limit, args.threads)
        failed += status != "ok"
        print(f"{path.stem:<18} {method_of(path):<7} {status:<8} {wall:>8.1f}   {last}", flush=True)
    print(f"\n{len(paths) - failed} of {len(paths)} examples finish within {args.limit:g} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
