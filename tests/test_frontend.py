"""Front end: the LANGUAGE.md examples parse and lower to the expected IR."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import crnlang
from crnlang.model import ir
from crnlang.model.semantics import evaluate, propensity
from crnlang.vocabulary import KEYWORDS, RESERVED_WORDS

LANGUAGE_MD = Path(__file__).resolve().parent / "data" / "LANGUAGE.md"   # the language contract, shipped

TOGGLE = """\
# toggle_switch.crn: two genes that repress each other
model toggle_switch
kinetics power                      # propensity = k * x^s (the convention of the published runs)

param sx = 50, sy = 50              # protein synthesis
param dx = 1,  dy = 1               # protein decay
param bx = 1e-4, by = 1e-4          # a protein pair binds the other gene
param ux = 0.1,  uy = 0.1           # and lets go

species Gx, Gy, Gx_off, Gy_off      # bounds come from conservation: Gx + Gx_off = 1
species Px <= 79, Py <= 79          # copy numbers kept in 0..79

Gx -> Gx + Px            @ sx
Gy -> Gy + Py            @ sy
Px -> 0                  @ dx
Py -> 0                  @ dy
bind_y: Gy + 2 Px <-> Gy_off @ by, uy
bind_x: Gx + 2 Py <-> Gx_off @ bx, ux

init Gx = 1, Gy = 1                 # everything else starts at 0

observe x_wins = Px > Py

@solve(method = tdvp, dt = 0.005, t_end = 40, batch = 2000)
@network(nade, hidden = 16)
"""

SCHLOGL2D = """\
# schlogl2d.crn: Schlögl's bistable reaction on a 3x3 grid, with diffusion
model schlogl2d
kinetics power
param c1 = 2.676, c2 = 0.040, c3 = 108.102, c4 = 37.881, d = 8.2207
lattice grid(3, 3)
species X <= 84
2 X -> 3 X @ c1
3 X -> 2 X @ c2
0 -> X     @ c3
X -> 0     @ c4
diffuse X @ d
init X = 50
observe low  = all(X <= 15)
observe high = all(X >= 25)
@solve(method = ngd, dt = 1e-5, t_end = 1, batch = 5000, lr = 0.8)
@sampling(mixture, uniform = 0.1)
@rare(low)
"""

PYTHON_EXAMPLE = """
    species X <= 60
    0 -> X @ 10
    X -> 0 @ 1
    init X = 0
"""


def _md_blocks() -> list[str]:
    return re.findall(r"```(?:python)?\n(.*?)```", LANGUAGE_MD.read_text(encoding="utf-8"), re.S)


def test_examples_here_are_the_language_md_text():
    blocks = _md_blocks()
    assert TOGGLE in blocks
    assert SCHLOGL2D in blocks
    assert any(PYTHON_EXAMPLE.strip() in b for b in blocks)


def test_keywords_are_the_grammars_words():
    grammar = (Path(crnlang.__file__).parent / "grammar" / "crn.lark").read_text()
    assert set(re.findall(r'"([A-Za-z_]+)"', grammar)) == KEYWORDS
    assert KEYWORDS <= RESERVED_WORDS


def test_toggle_switch_ir():
    m = crnlang.parse(TOGGLE)
    assert m.name == "toggle_switch"
    assert m.kinetics == "power"
    assert m.species_names == ("Gx", "Gy", "Gx_off", "Gy_off", "Px", "Py")
    assert [(s.lo, s.hi) for s in m.species] == [(0, None)] * 4 + [(0, 79)] * 2
    assert m.param_values == {"sx": 50, "sy": 50, "dx": 1, "dy": 1, "bx": 1e-4, "by": 1e-4,
                              "ux": 0.1, "uy": 0.1}
    assert [r.label for r in m.reactions] == ["r1", "r2", "r3", "r4", "bind_y_fwd", "bind_y_rev",
                                              "bind_x_fwd", "bind_x_rev"]
    by = m.reactions[4]
    assert by.reactants == (("Gy", 1), ("Px", 2)) and by.products == (("Gy_off", 1),)
    assert by.rate == ir.ParamRef("by") and by.mass_action
    assert m.reactions[5].reactants == (("Gy_off", 1),)
    assert m.reactions[5].products == (("Gy", 1), ("Px", 2))
    assert m.reactions[0].change() == {"Px": 1}
    assert m.init_of("Gx") == ir.InitDist("fixed", (1,)) and m.init_of("Px").args == (0,)
    assert set(m.init) == {"Gx", "Gy"}
    (obs,) = m.observables
    assert obs.name == "x_wins" and obs.boolean and not obs.absorbing
    s = m.settings
    assert (s.method, s.dt, s.t_end, s.batch, s.network, s.hidden) == ("tdvp", 0.005, 40, 2000, "nade", 16)
    assert s.dtype == "float64" and s.lr == 1.0
    assert m.lattice is None
    # power kinetics: k * Gy * Px^2
    state = {"Gx": 1, "Gy": 1, "Gx_off": 0, "Gy_off": 0, "Px": 7, "Py": 3}
    assert propensity(m, by, state) == pytest.approx(1e-4 * 49)


def test_schlogl2d_ir():
    m = crnlang.parse(SCHLOGL2D)
    assert m.lattice == ir.Lattice("grid", (3, 3), False)
    assert m.species_names == tuple(f"X[{r},{c}]" for r in range(3) for c in range(3))
    assert all(s.hi == 84 and s.base == "X" for s in m.species)
    assert m.species[5].site == (1, 2)
    assert len(m.reactions) == 9 * 4 + 24 == 60
    hops = [r for r in m.reactions if "hop" in r.label]
    assert len(hops) == 24
    edges = {(r.reactants[0][0], r.products[0][0]) for r in hops}
    assert ("X[1,1]", "X[0,1]") in edges and ("X[0,1]", "X[1,1]") in edges
    assert ("X[0,0]", "X[1,1]") not in edges and ("X[0,2]", "X[0,0]") not in edges
    assert all(r.mass_action and r.rate == ir.ParamRef("d") for r in hops)
    autocat = [r for r in m.reactions if r.reactants == (("X[2,1]", 2),)]
    assert len(autocat) == 1 and autocat[0].products == (("X[2,1]", 3),)
    assert all(m.init_of(n) == ir.InitDist("fixed", (50,)) for n in m.species_names)
    low, high = m.observables
    assert low.boolean and high.boolean
    state = {n: 50 for n in m.species_names}
    assert evaluate(low.expr, m.param_values, state) is False
    assert evaluate(high.expr, m.param_values, state) is True
    state["X[2,2]"] = 20
    assert evaluate(high.expr, m.param_values, state) is False
    state = {n: 15 for n in m.species_names}
    assert evaluate(low.expr, m.param_values, state) is True
    s = m.settings
    assert (s.method, s.dt, s.t_end, s.batch, s.lr) == ("ngd", 1e-5, 1, 5000, 0.8)
    assert (s.sampling, s.uniform, s.rare) == ("mixture", 0.1, ("low",))


def test_python_example_ir():
    m = crnlang.parse(PYTHON_EXAMPLE)
    assert m.name == "model" and m.kinetics == "binomial"
    assert m.species == (ir.Species("X", 0, 60, "X", None),)
    assert [(r.reactants, r.products, r.rate) for r in m.reactions] == [
        ((), (("X", 1),), ir.Const(10.0)), ((("X", 1),), (), ir.Const(1.0))]
    assert m.init == {"X": ir.InitDist("fixed", (0,))}
    assert m.settings == ir.Settings()


# ---------------------------------------------------------------- examples/ and stdlib/
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {  # name -> (species after expansion, reactions after expansion, kinetics)
    "birth_death": (1, 2, "binomial"),
    "gene_expression": (2, 4, "binomial"),
    "toggle_switch": (6, 8, "power"),
    "early_life": (3, 6, "binomial"),
    "epidemic": (3, 6, "binomial"),
    "mapk": (16, 35, "binomial"),
    "schlogl": (1, 4, "power"),
    "schlogl1d": (2, 2 * 4 + 2, "power"),
    "schlogl2d": (9, 60, "power"),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_loads(name):
    from crnlang.model.lower import check_file

    path = ROOT / "examples" / f"{name}.crn"
    assert check_file(path) == []
    m = crnlang.load(path)
    n_species, n_reactions, kinetics = EXAMPLES[name]
    assert m.name == name
    assert (len(m.species), len(m.reactions), m.kinetics) == (n_species, n_reactions, kinetics)
    assert all(s.hi is not None for s in m.species if not s.name.startswith("G"))
    labels = [r.label for r in m.reactions]
    assert len(set(labels)) == len(labels)


def test_toggle_and_schlogl2d_examples_are_the_language_md_text():
    assert (ROOT / "examples" / "toggle_switch.crn").read_text(encoding="utf-8") == TOGGLE
    # the example file runs TDVP with rkc steps and smooth heads by default (the paper's ngd
    # settings need hours on a CPU); apart from its comments and the @solve and @network
    # lines it is the LANGUAGE.md text
    def model_lines(text):
        return [line for line in text.splitlines()
                if line.strip() and not line.startswith(("#", "@solve", "@network"))]

    example = (ROOT / "examples" / "schlogl2d.crn").read_text(encoding="utf-8")
    assert model_lines(example) == model_lines(SCHLOGL2D)
    assert "@solve(method = tdvp, integrator = rkc" in example


def test_example_rates_from_method_md():
    bd = crnlang.load(ROOT / "examples" / "birth_death.crn")
    assert [propensity(bd, r, {"X": 7}) for r in bd.reactions] == pytest.approx([0.1, 0.07])
    assert bd.init_of("X") == ir.InitDist("poisson", (1.0,)) and bd.species[0].hi == 29
    el = crnlang.load(ROOT / "examples" / "early_life.crn")
    assert [el.init_of(n).args[0] for n in ("S0", "S1", "S2")] == [2, 49, 49]
    ep = crnlang.load(ROOT / "examples" / "epidemic.crn")
    infect = ep.reactions[0]
    state = {"S": 50, "I": 10, "R": 0}
    for t in (0.0, 1.0, 4.5):
        want = 0.003 * (1 + 0.2 * math.sin(2 * math.pi * t / 6)) * 50 * 10
        assert propensity(ep, infect, state, t) == pytest.approx(want, rel=1e-12)
    mk = crnlang.load(ROOT / "examples" / "mapk.crn")
    cat = {r.label: r for r in mk.reactions}
    assert cat["enzyme2_cat"].reactants == (("S8", 1),)
    assert cat["enzyme2_cat"].products == (("S0", 1), ("S5", 1))
    assert evaluate(cat["enzyme2_cat"].rate, mk.param_values) == 4.5
    assert mk.init_of("S1").args == (1,) and mk.init_of("S2").args == (3,)
    s1 = crnlang.load(ROOT / "examples" / "schlogl1d.crn")
    hops = [r for r in s1.reactions if "hop" in r.label]
    assert [(r.reactants, r.products) for r in hops] == [((("X[0]", 1),), (("X[1]", 1),)),
                                                         ((("X[1]", 1),), (("X[0]", 1),))]
    # the reference's settings (Adam, alpha sampling 0.3, dt = 1e-5) stay in the comment, with
    # the command that runs them; the file runs smooth heads (tests/test_smooth_heads.py)
    text = (ROOT / "examples" / "schlogl1d.crn").read_text(encoding="utf-8")
    assert "--method adam --set solve.dt=1e-5" in text and "sampling.sampling=alpha" in text
    assert s1.settings.alpha == 0.3


def test_stdlib_modules_and_funcs():
    m = crnlang.parse("""
        use ratelaws
        use enzyme
        use gene
        species E <= 5, S <= 5, C <= 5, P <= 5, G in 0..1, M <= 9
        enzyme(E, S, C, P, 1, 2, 3)
        gene(G, M, P, 1, 2, 3, 4)
        0 => S @ 10 * hillr(P, 2, 3) + mm(M, 4, 5) + hill(P, 2, 3) + mmr(M, 4, 5)
        init G = 1
    """)
    labels = [r.label for r in m.reactions]
    assert labels[:3] == ["enzyme1_bind_fwd", "enzyme1_bind_rev", "enzyme1_cat"]
    assert labels[3:7] == ["gene1_transcribe", "gene1_translate", "gene1_mrna_decay", "gene1_decay"]
    rate = m.reactions[-1]
    assert not rate.mass_action
    P, M = 3.0, 4.0
    want = 10 * 8 / (8 + P ** 3) + 4 * M / (5 + M) + P ** 3 / (8 + P ** 3) + 4 * 5 / (5 + M)
    assert evaluate(rate.rate, {}, {"P": P, "M": M}) == pytest.approx(want)


# ---------------------------------------------------------------- surface syntax details
def test_alternative_spellings_comments_and_continuation():
    m = crnlang.parse("""
        # a comment line
        species A, B <= 9   # trailing comment
        ∅ --> A @ 1
        A → ∅ @ 2
        r: A + A <-> B @ min(1,
                             2), max(3, 4, 5)
        A => B @ (A +
                  B) * 0.5
    """)
    r = {x.label: x for x in m.reactions}
    assert r["r1"].reactants == () and r["r1"].products == (("A", 1),)
    assert r["r2"].reactants == (("A", 1),) and r["r2"].products == ()
    assert r["r_fwd"].reactants == (("A", 2),)
    assert evaluate(r["r_fwd"].rate, {}) == 1 and evaluate(r["r_rev"].rate, {}) == 5
    assert not r["r3"].mass_action and r["r3"].mass_action is False
    assert evaluate(r["r3"].rate, {}, {"A": 3, "B": 5}) == 4


def test_generated_labels_skip_user_labels():
    m = crnlang.parse("species X\nr2: 0 -> X @ 1\nX -> 0 @ 1\n0 -> X @ 2\n")
    assert [r.label for r in m.reactions] == ["r2", "r1", "r3"]


def test_params_funcs_and_expressions():
    m = crnlang.parse("""
        param a = 2, b = a ^ 3 - 1, c = exp(log(b)) / 7
        func f(x, y) = x * y + a
        func g(x) = f(x, x) - pi
        species X <= a * 10
        X -> 0 @ g(b) + -2 ^ 2
        0 => X @ sin(t) + f(X, 1)
        observe both = X > 1 and not (X == 3 or X != X)
    """)
    assert m.param_values == {"a": 2, "b": 7, "c": pytest.approx(1.0)}
    assert m.species[0].hi == 20
    rate = m.reactions[0].rate
    assert evaluate(rate, m.param_values) == pytest.approx(7 * 7 + 2 - math.pi - 4)
    assert ir.uses_time(m.reactions[1].rate)
    assert evaluate(m.reactions[1].rate, m.param_values, {"X": 5}, t=0.3) == pytest.approx(math.sin(0.3) + 7)
    obs = m.observables[0]
    assert obs.boolean
    assert evaluate(obs.expr, {}, {"X": 2}) is True and evaluate(obs.expr, {}, {"X": 3}) is False


def test_init_distributions_and_bounds():
    m = crnlang.parse("""
        species A in 2..8, B <= 30, C, D
        init A ~ uniform(2, 8), B ~ binomial(20, 0.25), C ~ poisson(3.5), D = 4
    """)
    assert m.species[0].lo == 2 and m.species[0].hi == 8
    assert m.init == {"A": ir.InitDist("uniform", (2, 8)), "B": ir.InitDist("binomial", (20, 0.25)),
                      "C": ir.InitDist("poisson", (3.5,)), "D": ir.InitDist("fixed", (4,))}


def test_kinetics_conventions():
    for kinetics, want in (("binomial", 3 * 10), ("falling", 3 * 20), ("power", 3 * 25)):
        m = crnlang.parse(f"kinetics {kinetics}\nspecies X\n2 X -> 0 @ 3\n")
        assert propensity(m, m.reactions[0], {"X": 5}) == want


def test_lattice_chain_periodic_and_per_site_rates():
    m = crnlang.parse("""
        lattice chain(4, periodic)
        species X <= 5, Y <= 5
        X => Y @ 2 * X + Y[0]
        diffuse X, Y @ 0.5
        init X = 1, X[2] = 3
        observe total = sum(X)
        observe avg = mean(Y)
        observe some = any(X > 2)
        observe first = X[0]
    """)
    assert m.species_names[:4] == ("X[0]", "X[1]", "X[2]", "X[3]")
    assert m.species_names[4:] == ("Y[0]", "Y[1]", "Y[2]", "Y[3]")
    assert len(m.reactions) == 4 + 2 * 8
    conv = [r for r in m.reactions if not r.mass_action]
    assert [r.label for r in conv] == ["r1[0]", "r1[1]", "r1[2]", "r1[3]"]
    assert ir.species_in(conv[2].rate) == {"X[2]", "Y[0]"}
    hops = [(r.reactants[0][0], r.products[0][0]) for r in m.reactions if r.mass_action]
    assert ("X[3]", "X[0]") in hops and ("X[0]", "X[3]") in hops and ("Y[1]", "Y[2]") in hops
    assert m.init_of("X[2]").args == (3,) and m.init_of("X[1]").args == (1,) and m.init_of("Y[0]").args == (0,)
    state = {n: i for i, n in enumerate(m.species_names)}
    obs = {o.name: o for o in m.observables}
    assert evaluate(obs["total"].expr, {}, state) == 0 + 1 + 2 + 3
    assert evaluate(obs["avg"].expr, {}, state) == pytest.approx((4 + 5 + 6 + 7) / 4)
    assert evaluate(obs["some"].expr, {}, state) is True and obs["some"].boolean
    assert evaluate(obs["first"].expr, {}, state) == 0


def test_two_site_periodic_chain_does_not_double_edges():
    m = crnlang.parse("lattice chain(2, periodic)\nspecies X\ndiffuse X @ 1\n")
    assert len(m.reactions) == 2
    m = crnlang.parse("lattice grid(2, 3, periodic)\nspecies X\ndiffuse X @ 1\n")
    # rows: 2 sites (no doubling) -> 1 vertical edge per column (3); columns: ring of 3 -> 3 per row (6)
    assert len(m.reactions) == 2 * (3 + 6)


def test_absorb_marks_the_observable():
    m = crnlang.parse("species X <= 9\nobserve hi = X >= 5\nobserve x = X\nabsorb hi\n")
    assert [(o.name, o.boolean, o.absorbing) for o in m.observables] == [("hi", True, True), ("x", False, False)]


def test_annotation_types():
    m = crnlang.parse("""
        param T = 5
        @solve(fsp, t_end = 2 * T, lambda = 1e-2, integrator = rk4, dtype = float32, seed = 3, save_every = 2)
        @network(transformer, hidden = 32, layers = 2)
        @sampling(diffusive, kernel = 4, reweight = false)
    """)
    s = m.settings
    assert (s.method, s.t_end, s.lam, s.integrator, s.dtype, s.seed, s.save_every) == \
        ("fsp", 10.0, 1e-2, "rk4", "float32", 3, 2)
    assert (s.network, s.hidden, s.layers) == ("transformer", 32, 2)
    assert (s.sampling, s.kernel, s.reweight) == ("diffusive", 4, False)
    assert isinstance(s.batch, int) and isinstance(s.hidden, int)
    assert crnlang.parse("@sampling(defensive, alpha = 0.5)").settings.sampling == "defensive"
    assert crnlang.parse("@solve(tdvp)").settings.lam is None      # the method's default


def test_with_params():
    from crnlang.model.params import with_params

    m = crnlang.parse("param a = 2, b = 3 * a, c = 1\nspecies X\nX -> 0 @ b\n")
    m2 = with_params(m, {"a": 5})
    assert m2.param_values == {"a": 5, "b": 15, "c": 1}
    assert m.param_values["b"] == 6  # the original is unchanged
    assert with_params(m, {"b": 1}).param_values == {"a": 2, "b": 1, "c": 1}
    with pytest.raises(crnlang.CRNNameError, match="unknown param 'aa'") as info:
        with_params(m, {"aa": 1})
    assert "did you mean 'a'" in info.value.hint
    with pytest.raises(crnlang.CRNError):
        with_params(m, {"a": -1})  # makes the rate b negative
    with pytest.raises(crnlang.CRNError):
        with_params(m, {"a": "x"})


def test_load_names_the_model_after_the_file(tmp_path):
    p = tmp_path / "my_model.crn"
    p.write_text("species X\n0 -> X @ 1\n")
    m = crnlang.load(p)
    assert m.name == "my_model" and m.source == str(p) and m.source_text == p.read_text()
    assert crnlang.load(str(p)) == m


def test_label_collisions():
    m = crnlang.parse("species X\nr1_fwd: X -> 0 @ 1\nX <-> 0 @ 1, 1\n")
    assert [r.label for r in m.reactions] == ["r1_fwd", "r2_fwd", "r2_rev"]
    with pytest.raises(crnlang.CRNNameError, match="label 'b_fwd'"):
        crnlang.parse("species X\nb: X <-> 0 @ 1, 2\nb_fwd: X -> 0 @ 1\n")
    with pytest.raises(crnlang.CRNSemanticError, match="already diffuses"):
        crnlang.parse("lattice chain(2)\nspecies X\ndiffuse X @ 1\ndiffuse X @ 2\n")


def test_observables_may_use_earlier_observables():
    m = crnlang.parse("species X\nobserve a = X > 3\nobserve b = a and X < 9\nobserve c = not b\n")
    assert [o.boolean for o in m.observables] == [True, True, True]
    assert evaluate(m.observables[1].expr, {}, {"X": 5}) is True
    assert evaluate(m.observables[2].expr, {}, {"X": 9}) is True
    with pytest.raises(crnlang.CRNNameError, match="used before it is defined"):
        crnlang.parse("species X\nobserve b = a\nobserve a = X > 3\n")
    with pytest.raises(crnlang.CRNError) as info:  # a broken observable does not cascade
        crnlang.parse("species X\nobserve a = Y > 3\nobserve b = a\n")
    assert not isinstance(info.value, crnlang.CRNMultipleErrors)


def test_unicode_names():
    m = crnlang.parse("species Xα <= 3\n0 -> Xα @ 1\n")
    assert m.species_names == ("Xα",)
    with pytest.raises(crnlang.CRNNameError, match="normal form"):
        crnlang.parse("species \ufb01\n")
