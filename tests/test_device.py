"""The device path (``--device``), the deferred checks and the host reads of a step.

No GPU here: a CUDA run is stood in for by making the default device ``meta`` around a CPU
run. Every tensor the solver makes without saying where lands on ``meta`` and the first
operation with a CPU tensor fails, just as a CPU tensor made in a CUDA run would.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import crnlang
from crnlang.cli import cli
from crnlang.dispatch import device_for
from crnlang.errors import CRNSolverError
from crnlang.runtime import guards
from crnlang.runtime.devices import HostReads, resolve_device
from crnlang.runtime.solver import check_same_device, run_neural

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# ------------------------------------------------------------------ choosing the device
def test_resolve_device_names(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    with pytest.raises(CRNSolverError) as info:
        resolve_device("cuda")
    assert "no CUDA GPU" in info.value.message and "--device cpu" in info.value.hint
    with pytest.raises(CRNSolverError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_auto_keeps_fsp_and_ssa_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_for("fsp", "cuda") == "cpu"          # scipy: always the CPU
    assert device_for("ssa", "auto") == "cpu"          # the compiled engine
    assert device_for("tdvp", "auto") == "cpu"         # no GPU here
    with pytest.raises(CRNSolverError):
        device_for("tdvp", "cuda")


def test_the_result_says_where_it_ran():
    result = crnlang.solve(EXAMPLES / "birth_death.crn", t_end=2.0, batch=200, device="cpu")
    assert result.extra["device"] == "cpu"


def test_cli_device_without_a_gpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = CliRunner().invoke(cli, ["solve", str(EXAMPLES / "birth_death.crn"), "--device", "cuda",
                                   "--out", str(tmp_path), "-q", "--no-plots"])
    assert run.exit_code == 1
    assert "no CUDA GPU" in run.output and "Traceback" not in run.output


def test_a_checkpoint_continues_on_its_own_kind_of_device():
    check_same_device("cpu", torch.device("cpu"))
    with pytest.raises(CRNSolverError, match="--device cuda"):
        check_same_device("cuda", torch.device("cpu"))


# ------------------------------------------------------------------ every tensor where it belongs
@pytest.mark.parametrize("example, changes", [
    ("toggle_switch.crn", dict(method="tdvp", integrator="heun", t_end=0.01, dt=0.005, batch=200)),
    ("toggle_switch.crn", dict(method="ngd", t_end=0.01, dt=0.005, batch=200)),
    ("toggle_switch.crn", dict(method="adam", t_end=0.005, dt=0.005, batch=100, epochs=3)),
    ("schlogl1d.crn", dict(method="tdvp", integrator="rkc", t_end=2e-4, dt=1e-4, batch=100,
                           head="smooth")),
    ("birth_death.crn", dict(method="tdvp", integrator="adaptive", t_end=2.0, batch=200,
                             network="gru", sampling="defensive")),
])
def test_a_run_makes_no_tensor_on_the_default_device(example, changes):
    model = crnlang.load(EXAMPLES / example)
    kernel = crnlang.compile(model)
    settings = model.settings.updated(save_every=1, **changes)
    with torch.device("meta"):                 # a tensor made without a device lands here
        result = run_neural(kernel, settings, device="cpu")
    assert all(math.isfinite(v[-1]) for v in result.means.values())


# ------------------------------------------------------------------ deferred checks
def test_require_outside_deferred_checks_at_once():
    guards.require(torch.tensor(True), lambda: CRNSolverError("never"))
    with pytest.raises(CRNSolverError, match="now"):
        guards.require(torch.tensor(False), lambda: CRNSolverError("now"))


def test_deferred_checks_are_read_with_the_next_value_first_failure_first():
    with guards.deferred():
        guards.require(torch.tensor(True), lambda: CRNSolverError("fine"))
        guards.require(torch.tensor(False), lambda: CRNSolverError("first"))
        guards.require(torch.tensor(False), lambda: CRNSolverError("second"))
        with HostReads() as reads:
            with pytest.raises(CRNSolverError, match="first"):
                guards.read(torch.tensor(2.5))
        assert reads.total == 1                  # the value and three flags: one transfer
        assert guards.read(torch.tensor(2.5)) == 2.5    # the failed checks were consumed


def test_an_error_downstream_names_the_failed_check_upstream():
    """A NaN that breaks a later step (here any exception) is reported as the NaN."""
    with pytest.raises(CRNSolverError, match="E\\(n\\) is not finite") as info:
        with guards.deferred():
            guards.require(torch.tensor(False), lambda: CRNSolverError("E(n) is not finite"))
            raise RuntimeError("Cholesky failed")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_checks_left_at_the_end_of_the_block_are_read():
    with pytest.raises(CRNSolverError, match="late"):
        with guards.deferred():
            guards.require(torch.tensor(False), lambda: CRNSolverError("late"))


# ------------------------------------------------------------------ host reads per step
def reads_between(method: str, steps: tuple[int, int], per: str, **changes) -> float:
    """Host reads per unit of ``per`` (extra["velocities"] or ["substeps"]) between two runs."""
    model = crnlang.load(EXAMPLES / "toggle_switch.crn")
    kernel = crnlang.compile(model)
    counts, substeps = [], []
    for n in steps:
        settings = model.settings.updated(method=method, t_end=n * 0.005, dt=0.005, batch=200,
                                          save_every=n, **changes)
        with HostReads() as reads:
            result = run_neural(kernel, settings)
        counts.append(reads.total)
        substeps.append(result.extra[per])
    return (counts[1] - counts[0]) / (substeps[1] - substeps[0])


def test_a_tdvp_step_reads_the_device_only_for_its_decisions():
    """Per velocity (one euler substep, or a retried one): the step guard's change of log P
    with the queued checks (1), the Cholesky test (1), the sizes of the sorts that merge
    repeated samples and neighbours (4), and from this single-state start the tempered
    proposal's log-weights (1). Measured 7.0; before the checks were deferred: 23."""
    assert reads_between("tdvp", (6, 12), "velocities", integrator="euler") <= 8


def test_an_ngd_epoch_reads_the_device_only_for_its_decisions():
    """Per ngd substep of 5 epochs: about 6 reads an epoch (the Levenberg-Marquardt test,
    the Cholesky test, the sorts' sizes); before, 24 an epoch."""
    assert reads_between("ngd", (6, 12), "substeps", epochs=5) <= 5 * 8 + 2


# ------------------------------------------------------------------ the float32 path
def test_a_float32_gram_that_fails_to_factor_is_rebuilt_in_float64():
    """A float32 matrix that does not factor (here singular) is factored again from the
    float64 rebuild (a stand-in here: any positive definite matrix), and the run's counter
    says so (the solver then warns that float32 is too coarse for the model)."""
    from crnlang.runtime import natgrad

    broken = torch.ones(2, 2, dtype=torch.float32)
    rebuilt = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    before = natgrad.FLOAT32_REFACTORED["count"]
    y = natgrad._cholesky_solve(broken, torch.tensor([3.0, 3.0]), "test", rebuild=lambda: rebuilt)
    assert natgrad.FLOAT32_REFACTORED["count"] == before + 1
    assert y.dtype == torch.float32 and torch.allclose(y, torch.tensor([1.0, 1.0]))
    with pytest.raises(CRNSolverError, match="not positive definite"):
        natgrad._cholesky_solve(broken.double(), torch.tensor([3.0, 3.0], dtype=torch.float64), "test")
