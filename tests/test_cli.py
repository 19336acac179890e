"""The command line: exit codes, diagnostics without tracebacks, files written by solve."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import crnlang
from crnlang.cli import cli

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

BIRTH_DEATH = """\
model bd
param k = 5
species X <= 40
birth: 0 -> X @ k
death: X -> 0 @ 1
init X = 0
observe many = X >= 8
@solve(method = fsp, t_end = 2, dt = 0.1, save_every = 5)
"""


def run(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output, result.stderr if hasattr(result, "stderr") else ""


@pytest.fixture()
def bd_file(tmp_path):
    path = tmp_path / "bd.crn"
    path.write_text(BIRTH_DEATH)
    return path


def test_check_examples_clean():
    code, out, _ = run("check", *sorted(EXAMPLES.glob("*.crn")))
    assert code == 0, out
    assert "clean" in out


def test_check_reports_position_and_hint(tmp_path):
    bad = tmp_path / "bad.crn"
    bad.write_text("species Px <= 10\nPx -> Pz @ 1\n")
    code, _, err = run("check", bad)
    assert code == 1
    assert f"{bad}:2:7: error:" in err
    assert "did you mean 'Px'?" in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(tmp_path, bd_file):
    assert run("check")[0] == 2
    assert run("solve", tmp_path / "missing.crn")[0] == 2
    assert run("solve", bd_file, "--set", "solve.nonsense=3")[0] == 2
    assert run("solve", bd_file, "--set", "novalue")[0] == 2
    assert run("frobnicate")[0] == 2


def test_analyze_json_matches_python_api():
    path = EXAMPLES / "toggle_switch.crn"
    code, out, _ = run("analyze", "--json", path)
    assert code == 0
    data = json.loads(out)
    assert data == json.loads(json.dumps(crnlang.analyze(crnlang.load(path)).to_dict()))
    for key in ("species", "reactions", "conservation_laws", "eliminated", "bounds", "log10_states"):
        assert key in data
    assert data["reactions"] == 8
    assert sorted(data["eliminated"]) == ["Gx", "Gy"]
    assert {"coefficients": {"Gx": 1, "Gx_off": 1}, "total": 1} in data["conservation_laws"]


def test_analyze_text_report():
    code, out, _ = run("analyze", EXAMPLES / "toggle_switch.crn")
    assert code == 0 and "Gx + Gx_off = 1" in out


def test_compile_writes_importable_module(tmp_path, bd_file):
    out = tmp_path / "bd_kernel.py"
    code, _, _ = run("compile", bd_file, "-o", out)
    assert code == 0
    subprocess.run([sys.executable, "-m", "py_compile", str(out)], check=True)


def test_solve_fsp_writes_results(tmp_path, bd_file):
    out_dir = tmp_path / "out"
    code, out, _ = run("solve", bd_file, "--out", out_dir)
    assert code == 0, out
    assert "P(many)" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["method"] == "fsp"
    times = np.asarray(summary["times"])
    assert times[0] == 0 and abs(times[-1] - 2.0) < 1e-12
    assert "X" in summary["species"]
    exact = 5 * (1 - np.exp(-times))           # immigration-death from 0: Poisson(k (1 - e^-t))
    assert np.allclose(summary["mean"]["X"], exact, rtol=1e-6, atol=1e-9)
    assert np.allclose(summary["var"]["X"], exact, rtol=1e-6, atol=1e-9)
    assert np.allclose(summary["prob"]["many"][-1],
                       1 - sum(np.exp(-exact[-1]) * exact[-1] ** j / np.prod(range(1, j + 1))
                               for j in range(8)), rtol=1e-6)
    data = np.load(out_dir / "results.npz")
    assert np.allclose(data["times"], times)
    assert list(out_dir.glob("*.png"))


def test_solve_set_overrides_param_and_settings(tmp_path, bd_file):
    out_dir = tmp_path / "out"
    code, out, _ = run("solve", bd_file, "--out", out_dir, "--no-plots",
                       "--set", "param.k=2", "--set", "solve.t_end=1")
    assert code == 0, out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert abs(summary["times"][-1] - 1.0) < 1e-12
    res = crnlang.solve(crnlang.load(bd_file), params={"k": 2.0}, t_end=1.0)
    assert abs(res.mean("X")[-1] - 2 * (1 - np.exp(-1.0))) < 1e-8


def test_model_error_in_solve_exits_1(tmp_path):
    path = tmp_path / "unbounded.crn"
    path.write_text("species X\n0 -> X @ 1\n")
    code, _, err = run("solve", path, "--method", "fsp", "--out", tmp_path / "o")
    assert code == 1
    assert "X" in err and "Traceback" not in err


def test_simulate(tmp_path, bd_file):
    code, out, _ = run("simulate", bd_file, "-n", 300, "--seed", 1, "--out", tmp_path / "s",
                       "--no-plots")
    assert code == 0, out
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["method"] == "ssa"


def test_export_then_import_round_trip(tmp_path, bd_file):
    xml = tmp_path / "bd.xml"
    assert run("export", bd_file, "-o", xml)[0] == 0
    crn = tmp_path / "back.crn"
    assert run("import", xml, "-o", crn)[0] == 0
    back = crnlang.load(crn)
    a = crnlang.solve(back, method="fsp", t_end=1.0)
    b = crnlang.solve(crnlang.load(bd_file), method="fsp", t_end=1.0)
    assert np.allclose(a.mean("X"), b.mean("X"), rtol=1e-10)


def test_import_dsmts_event_case_is_a_clear_error():
    xml = REPO / "tests" / "data" / "dsmts" / "suite" / "00028" / "00028-sbml-l3v2.xml"
    if not xml.exists():
        pytest.skip("DSMTS data not beside the checkout")
    code, _, err = run("import", xml)
    assert code == 1 and "error" in err and "Traceback" not in err


def test_console_script_never_prints_traceback(tmp_path):
    path = tmp_path / "garbage.crn"
    path.write_text("species X <= \x00 @@ -> (((\n")
    proc = subprocess.run([sys.executable, "-m", "crnlang", "check", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "error" in proc.stderr


@pytest.mark.parametrize("setting", ["dt=-1", "batch=0", "integrator=rk5", "lambda=0",
                                     "dtype=float16"])
def test_bad_setting_values_are_model_errors(tmp_path, bd_file, setting):
    code, _, err = run("solve", bd_file, "--set", setting, "--out", tmp_path / "o")
    assert code == 1 and "error: setting" in err and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("kinetics power\nkinetics binomial\nspecies X <= 3\n", "2:10: error: kinetics binomial contradicts"),
    ("model a\nmodel b\nspecies X <= 3\n", "2:1: error: a second model name"),
])
def test_contradicting_header_statements(tmp_path, text, message):
    path = tmp_path / "m.crn"
    path.write_text(text)
    code, _, err = run("check", path)
    assert code == 1 and message in err


def test_unbounded_species_error_points_at_declaration(tmp_path):
    path = tmp_path / "u.crn"
    path.write_text("param k = 1\nspecies A <= 5, X\n0 -> X @ k\n")
    code, _, err = run("solve", path, "--method", "fsp", "--out", tmp_path / "o")
    assert code == 1
    assert f"{path}:2:17: error: species 'X' has no upper bound" in err


# ------------------------------------------------------------------ refused before any work
def test_an_unwritable_out_is_refused_before_the_solve(bd_file, tmp_path):
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("x")
    code, out, err = run("solve", bd_file, "--method", "fsp", "--out", not_a_folder)
    assert code == 2 and "is a file" in out + err
    code, out, err = run("solve", bd_file, "--method", "fsp", "--out", "/dev/null")
    assert code == 2 and "is not a folder" in out + err


def test_set_method_is_the_method(bd_file, tmp_path):
    code, out, err = run("solve", bd_file, "--set", "method=fsp", "--out", tmp_path / "o", "--no-plots")
    assert code == 0, out + err
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["method"] == "fsp"
    code, out, err = run("simulate", bd_file, "--set", "method=fsp", "-n", "50", "--out", tmp_path / "s",
                    "--no-plots")
    assert code == 0, out + err


def test_an_empty_model_is_an_error_not_a_solve(tmp_path):
    empty = tmp_path / "empty.crn"
    empty.write_text("# nothing here\n")
    code, out, err = run("solve", empty, "--out", tmp_path / "o")
    assert code == 1 and "declares no species" in out + err


def test_t_end_off_the_dt_grid_warns(bd_file, tmp_path):
    code, out, err = run("solve", bd_file, "--method", "fsp", "--set", "t_end=10.5", "--set", "dt=1",
                    "--out", tmp_path / "o", "--no-plots")
    assert code == 0, out + err
    assert "not a whole number of steps" in out + err and "last saved time is 10" in out + err


def test_threads_option(bd_file, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        code, out, err = run("solve", bd_file, "--method", "fsp", "--threads", "1", "--out", tmp_path / "o",
                        "--no-plots")
        assert code == 0, out + err
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("method", ["fsp", "ssa", "tau", "tdvp"])
def test_progress_lines_off_a_terminal(tmp_path, bd_file, method):
    """Run as a batch job would (stderr a pipe): progress lines with the simulated time, the
    work done and the wall time, and a final line; --quiet silences them."""
    import os

    env = {**os.environ, "CRNLANG_PROGRESS_SECONDS": "0"}
    base = [sys.executable, "-m", "crnlang", "solve", str(bd_file), "--method", method,
            "--no-plots", "--out", str(tmp_path / "out"), "--threads", "1",
            "--set", "batch=200", "--set", "t_end=1"]
    talk = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert talk.returncode == 0, talk.stderr
    lines = [l for l in talk.stderr.splitlines() if l.startswith(f"[crnlang] {method}:")]
    assert any(re.search(r"t = [\d.e+-]+ of 1 \(\d+%\), [\d,]+ \w+", l) for l in lines), talk.stderr
    assert re.search(rf"\[crnlang\] {method}: done, t = 1, [\d,]+ ", talk.stderr), talk.stderr
    quiet = subprocess.run(base + ["-q"], capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0 and "[crnlang]" not in quiet.stderr


@pytest.mark.parametrize("method", ["fsp", "ssa"])
def test_each_warning_is_said_once(tmp_path, method):
    """A pressed truncation warns in the summary, once, and never as a raw UserWarning with
    an internal file and line."""
    path = tmp_path / "m.crn"
    path.write_text("species X <= 6\n0 -> X @ 5\nX -> 0 @ 1\n@solve(t_end = 1, dt = 0.1)\n")
    done = subprocess.run([sys.executable, "-m", "crnlang", "solve", str(path), "--method", method,
                           "-q", "--no-plots", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    both = done.stdout + done.stderr
    assert "UserWarning" not in both and "crnlang/" not in done.stderr
    assert both.count("Raise them" if method == "fsp" else "were refused") == 1


def test_summary_says_why_this_method_and_what_it_ignored(tmp_path, bd_file):
    code, out, _ = run("solve", bd_file, "--method", "ssa", "--set", "hidden=32", "--no-plots",
                       "--out", tmp_path / "a")
    assert code == 0 and "method: ssa: asked for by the caller" in out
    assert "settings ssa does not use: hidden" in out
    auto = tmp_path / "auto.crn"
    auto.write_text(BIRTH_DEATH.replace("method = fsp, ", ""))
    code, out, _ = run("solve", auto, "--no-plots", "--out", tmp_path / "b")
    assert code == 0 and re.search(r"method: auto chose fsp: the box has 41 states", out), out


def test_default_threads_are_the_free_cores():
    from crnlang.cli import auto_threads

    assert auto_threads(2, 0.1) == 2          # idle: both cores
    assert auto_threads(2, 1.2) == 1          # one core busy
    assert auto_threads(2, 7.0) == 1          # overloaded: still one
    assert auto_threads(16, 3.4) == 13
