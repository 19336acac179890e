"""Hostile and absurd inputs (tests/data/adversarial/): each gets its expected exit code and
message, before any heavy work. None produces a traceback, an "internal error" or a hang."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from crnlang.cli import cli

CORPUS = Path(__file__).resolve().parent / "data" / "adversarial"

# (file, extra arguments, exit code, a pattern the output must match)
CASES = [
    ("nan_propensity.crn", ["solve"], 1,
     r"nan_propensity\.crn:4:1: error: the propensity of reaction 'r2' is NaN at X = \d"),
    ("negative_propensity.crn", ["solve"], 1,
     r"negative_propensity\.crn:4:1: error: .*'r2' is negative \(-1\) at X = 10"),
    ("zero_over_x.crn", ["solve"], 1, r"zero_over_x\.crn:3:1: error: .* is NaN at X = 0"),
    ("subnormal_rate.crn", ["solve"], 0, r"warning: .*below the smallest normal float64"),
    ("huge_bound.crn", ["check"], 1,
     r"huge_bound\.crn:1:14: error: the upper bound of 'X' is 1e\+12, more than the largest "
     r"allowed, 2,147,483,647"),
    ("huge_stoichiometry.crn", ["check"], 1,
     r"huge_stoichiometry\.crn:2:6: error: stoichiometry 99999999999999999999 is more than"),
    ("huge_batch.crn", ["check"], 1, r"huge_batch\.crn:3:\d+: error: @solve batch is 1e\+20"),
    ("absurd_time_grid.crn", ["solve"], 1, r"error: t_end / dt = .* = inf steps"),
    ("long_name.crn", ["check"], 1, r"long_name\.crn:1:9: error: a species name of 100,000 "
                                    r"characters .*names are at most 256 characters"),
    ("import_dev_zero.crn", ["check"], 1,
     r"import_dev_zero\.crn:1:1: error: cannot read '/dev/zero': not a regular file"),
    ("bom_nul.crn", ["check"], 1, r"bom_nul\.crn:1:1: error: unexpected character U\+FEFF "
                                  r"\(a byte-order mark\)\n    <U\+FEFF>species"),
    ("latin1.crn", ["check"], 1, r"latin1\.crn:2:13: error: byte 0xE9 is not UTF-8"),
    ("billion_bound.crn", ["solve", "--method", "tdvp"], 1,
     r"error: the neural network for this box needs about [\d,.]+ GiB"),
    ("billion_bound.crn", ["solve", "--method", "fsp"], 1,
     r"error: the box of the state space holds 1e\+09 states"),
    ("empty.crn", ["solve"], 1, r"error: nothing to solve: the model declares no species"),
    ("plain.crn", ["solve", "--method", "fsp", "--set", "rare=nope"], 1,
     r"error: rare: 'nope' is not an observable of the model.*\nhint: one of: many"),
    ("plain.crn", ["solve", "--set", "batch=1e20", "--method", "ssa"], 1,
     r"error: setting batch is 1e\+20, more than the largest allowed, 100,000,000"),
    ("plain.crn", ["solve", "--set", "t_end=100", "--set", "dt=1e-5", "--set", "save_every=1"], 1,
     r"error: 1e\+07 saved times .*\nhint: raise save_every to at least 100"),
]


@pytest.mark.parametrize("name, args, code, pattern", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}" for c in CASES])
def test_adversarial_input(name, args, code, pattern, tmp_path, monkeypatch):
    monkeypatch.chdir(CORPUS)
    command = args[:1] + [name] + args[1:]
    if args[0] == "solve":
        command += ["--no-plots", "--out", str(tmp_path / "out"), "--threads", "1"]
    result = CliRunner().invoke(cli, command, catch_exceptions=False)
    output = result.output
    assert "Traceback" not in output and "internal error" not in output, output
    assert result.exit_code == code, output
    assert re.search(pattern, output), output
    assert max(len(line) for line in output.splitlines()) < 400      # long lines are cut
