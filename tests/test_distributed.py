"""Runs split over processes by torchrun (crnlang.distributed), against one process: SSA
and tau ensembles split by runs, the neural methods by samples (exactly one process's
result when every process draws the whole batch, CRNLANG_SAME_SAMPLES=1; within
statistical error of it, and of FSP, when each draws its own share)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def _command(args, processes: int) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}", "-m"] if processes > 1 else [sys.executable, "-m"]
    return launcher + ["crnlang"] + args


def _env(same_samples: bool = False) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", CRNLANG_PROGRESS_SECONDS="1000",
                CRNLANG_SAME_SAMPLES="1" if same_samples else "0")


def _run(args, tmp_path: Path, processes: int, same_samples: bool = False):
    return subprocess.run(_command(args, processes), capture_output=True, text=True,
                          cwd=tmp_path, env=_env(same_samples), timeout=600)


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


NEURAL = """
model immdeath
species X <= 40
birth: 0 -> X @ 10
death: X -> 0 @ 1
init X ~ poisson(3)
observe many = X >= 12
@solve(method = {method}, t_end = {t_end}, dt = 0.05, save_every = 5, batch = 400, seed = 5)
@network(nade, hidden = 8)
"""
TOGGLE = Path(__file__).resolve().parents[1] / "examples" / "toggle_switch.crn"
TOGGLE_SHORT = ["--set", "solve.t_end=0.01", "--set", "solve.save_every=1", "--set", "solve.batch=250"]


def _hellinger(p, q) -> float:
    return float(np.sqrt(0.5 * ((np.sqrt(np.clip(p, 0, None)) - np.sqrt(np.clip(q, 0, None))) ** 2).sum(-1)).max())


def _marginal_keys(result: dict) -> list[str]:
    return [key for key in result if key.startswith("marginal:")]


@pytest.mark.parametrize("method, t_end", [("tdvp", 1), ("ngd", 1), pytest.param("adam", 0.1, marks=pytest.mark.slow)])   # (adam: 100 epochs a step)
def test_two_processes_splitting_one_batch_give_the_one_process_solve(tmp_path, method, t_end):
    """Deterministic mode: every process draws the whole batch, evaluates its half of the
    local rates and score rows, and the sums make the same step as one process (the linear
    solve differs only by rounding: summed normal equations against one process's solver)."""
    (tmp_path / "m.crn").write_text(NEURAL.format(method=method, t_end=t_end), encoding="utf-8")
    args = ["solve", "m.crn", "--no-plots", "-q", "--out"]
    one = _run(args + ["one"], tmp_path, 1)
    two = _run(args + ["two"], tmp_path, 2, same_samples=True)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("wrote") == 1 and "batch split over 2 processes" in two.stdout
    a, b = _results(tmp_path / "one"), _results(tmp_path / "two")
    for key in ["mean:X", "var:X", "marginal:X", "prob:many"]:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-10, err_msg=key)


def test_two_processes_on_the_toggle_switch_match_one_process_and_fsp(tmp_path):
    """ngd on the toggle switch (6 species, two eliminated by conservation):
    the one-process run when the processes split one batch; with each process's own
    samples, as close to FSP as one process is. (To 1e-6, not 1e-10 as on birth-death: one
    process builds the NADE's sample-space Gram by its structured formula, partly in
    float32 and refined, the split solve from dense score rows; they agree to rounding,
    which the Fisher's condition number (lam = 1e-5) amplifies over the run's solves.
    Measured to t = 0.05: 2.4e-8.)"""
    args = ["solve", str(TOGGLE), "--method", "ngd", "--no-plots", "-q"] + TOGGLE_SHORT + ["--out"]
    runs = {"one": _run(args + ["one"], tmp_path, 1),
            "same": _run(args + ["same"], tmp_path, 2, same_samples=True),
            "own": _run(args + ["own"], tmp_path, 2),
            "fsp": _run(["solve", str(TOGGLE), "--method", "fsp", "--no-plots", "-q"] + TOGGLE_SHORT
                        + ["--out", "fsp"], tmp_path, 1)}
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr)
    one, same, own, fsp = (_results(tmp_path / name) for name in runs)
    for key in _marginal_keys(one):
        np.testing.assert_allclose(same[key], one[key], rtol=0, atol=1e-6, err_msg=key)
        width = min(one[key].shape[1], fsp[key].shape[1])
        assert _hellinger(one[key][:, :width], fsp[key][:, :width]) < 0.03, key
        assert _hellinger(own[key][:, :width], fsp[key][:, :width]) < 0.03, key


def test_a_killed_two_process_run_resumes(tmp_path):
    """SIGKILL to the whole torchrun group after its first checkpoint; --resume with two
    processes finishes the run, and (one batch split) gives the uninterrupted result."""
    (tmp_path / "m.crn").write_text(NEURAL.format(method="tdvp", t_end=3), encoding="utf-8")
    args = ["solve", "m.crn", "--no-plots", "-q", "--out", "two"]
    checkpoint = tmp_path / "two" / "checkpoint"
    job = subprocess.Popen(_command(args, 2), cwd=tmp_path, env=_env(same_samples=True),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(1200):
            if checkpoint.exists() and any(checkpoint.iterdir()) and job.poll() is None:
                time.sleep(1.0)       # past the t = 0 checkpoint, into the run
                break
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    assert not (tmp_path / "two" / "results.npz").exists(), "the run finished before it was killed"
    resumed = _run(args + ["--resume"], tmp_path, 2, same_samples=True)
    assert resumed.returncode == 0, resumed.stderr
    whole = _run(["solve", "m.crn", "--no-plots", "-q", "--out", "one"], tmp_path, 1)
    assert whole.returncode == 0, whole.stderr
    a, b = _results(tmp_path / "one"), _results(tmp_path / "two")
    for key in ["mean:X", "marginal:X"]:      # (rounding of the solves, amplified over 60 steps: 1.4e-10 relative on some machines, at the base commit too)
        np.testing.assert_allclose(b[key], a[key], rtol=1e-8, atol=1e-8, err_msg=key)


def test_fsp_under_torchrun_is_refused_clearly(tmp_path):
    (tmp_path / "m.crn").write_text(MODEL.format(rate="10").replace("species X", "species X <= 40"),
                                    encoding="utf-8")
    run = _run(["solve", "m.crn", "--method", "fsp", "--out", "n", "--no-plots", "-q"],
               tmp_path, 2)
    assert run.returncode != 0
    assert "runs in one process" in run.stderr + run.stdout
