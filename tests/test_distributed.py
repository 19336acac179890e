"""SSA and tau ensembles split over processes by torchrun (crnlang.distributed), against one
process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crnlang.distributed import run_slice_of

MODEL = """
model immdeath
species X
birth: 0 -> X @ {rate}
death: X -> 0 @ 1
init X ~ poisson(3)
observe many = X >= 12
@solve(method = ssa, t_end = 2, dt = 0.1, save_every = 5, batch = 301, seed = 5)
"""


def _run(args, tmp_path: Path, processes: int):
    env = dict(os.environ, OMP_NUM_THREADS="1", CRNLANG_PROGRESS_SECONDS="1000")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}", "-m"] if processes > 1 else [sys.executable, "-m"]
    return subprocess.run(launcher + ["crnlang"] + args, capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=600)


def _results(folder: Path) -> dict:
    with np.load(folder / "results.npz") as data:
        return {key: data[key] for key in data.files}


def test_slices_cover_the_runs_in_order():
    for runs in (1, 7, 301):
        for size in (1, 2, 3, 5):
            slices = [run_slice_of(r, size, runs) for r in range(size)]
            assert slices[0][0] == 0 and slices[-1][1] == runs
            assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))
            assert max(hi - lo for lo, hi in slices) - min(hi - lo for lo, hi in slices) <= 1


@pytest.mark.parametrize("rate, method, exact", [("10", "ssa", True),
                                                  ("10 * (1 + 0.5 * sin(t))", "ssa", False),
                                                  ("10", "tau", False)])
def test_two_processes_give_the_one_process_ensemble(tmp_path, rate, method, exact):
    (tmp_path / "m.crn").write_text(MODEL.format(rate=rate), encoding="utf-8")
    args = ["solve", "m.crn", "--method", method, "--no-plots", "-q", "--out"]
    one = _run(args + ["one"], tmp_path, 1)
    two = _run(args + ["two"], tmp_path, 2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("wrote") == 1                 # rank 0 alone prints and writes
    assert method == "tau" or "runs split over 2 processes" in two.stdout
    a, b = _results(tmp_path / "one"), _results(tmp_path / "two")
    assert set(a) == set(b)
    if exact:        # the compiled engine: each run's stream is fixed by the seed and its index
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    else:            # the vectorised engine and tau: disjoint streams, the same law
        z = (a["mean:X"] - b["mean:X"])[1:] / np.sqrt(a["stderr:mean:X"] ** 2
                                                       + b["stderr:mean:X"] ** 2)[1:]
        assert np.all(np.abs(z) < 4)


def test_a_neural_method_under_torchrun_is_refused_clearly(tmp_path):
    (tmp_path / "m.crn").write_text(MODEL.format(rate="10").replace("species X", "species X <= 40"),
                                    encoding="utf-8")
    run = _run(["solve", "m.crn", "--method", "tdvp", "--out", "n", "--no-plots", "-q"],
               tmp_path, 2)
    assert run.returncode != 0
    assert "ensembles only" in run.stderr + run.stdout
