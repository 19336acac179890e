"""write_crn: a Model written as .crn text parses back to an equal Model."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crnlang
from crnlang.errors import CRNError
from crnlang.io import crn_writer
from crnlang.io.crn_format import format_expr, format_number
from crnlang.io.crn_writer import is_identifier, safe_identifier, site_safe_name, write_crn
from crnlang.model import names
from crnlang.model.ir import (Binary, Call, Compare, Const, Logic, ParamRef, SpeciesRef, Unary)
from crnlang.model.semantics import propensity
from crnlang.vocabulary import RESERVED_WORDS

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.crn"))
LANGUAGE_MD = REPO / "tests" / "data" / "LANGUAGE.md"   # the language contract, shipped


def language_md_models() -> list[str]:
    """The model texts of LANGUAGE.md: its ``` blocks that are models, and the Python example's."""
    text = LANGUAGE_MD.read_text()
    blocks = text.split("```")[1::2]
    models = [b for b in blocks if re.search(r"^(model|species) ", b, re.M) and "crnlang.parse" not in b]
    models += re.findall(r'crnlang\.parse\("""(.*?)"""\)', text, re.S)
    return models


def same(a, b) -> bool:
    return replace(a, source="<x>") == replace(b, source="<x>")


def round_trip(model):
    text = write_crn(model)
    return crnlang.parse(text), text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_round_trip(path):
    model = crnlang.load(path)
    back, text = round_trip(model)
    assert same(back, model), text
    assert write_crn(back) == text       # and the writer is stable


def test_language_md_examples_round_trip():
    models = language_md_models()
    assert len(models) >= 3
    for source in models:
        model = crnlang.parse(source)
        back, text = round_trip(model)
        assert same(back, model), text


def test_lattice_written_in_lattice_form():
    source = """
        model chainy
        lattice chain(3, periodic)
        param k = 2, d = 0.5
        species A <= 10, B in 0..5
        bind: A + B <-> 2 B @ k, k / 2
        A => 0 @ k * A ^ 2 / (1 + A)
        diffuse A, B @ d
        init A = 3, B ~ poisson(2)
        init A[1] = 5
        observe tot = sum(A) + mean(B)
        observe some = any(A > 2 and B < 3) or A[0] == 1
        absorb some
    """
    model = crnlang.parse(source)
    back, text = round_trip(model)
    assert same(back, model), text
    assert "lattice chain(3, periodic)" in text
    assert "bind: A + B <-> 2 B @ k, k / 2" in text
    assert "diffuse A @ d" in text and "sum(A) + mean(B)" in text and "any(A > 2 and B < 3)" in text


def test_lattice_that_is_not_a_template_is_written_flat():
    # the rate reads site 0 explicitly, so the per-site copies differ from any template
    model = crnlang.parse("""
        lattice chain(2)
        species X <= 5
        X -> 0 @ 1 + X[0]
        init X = 2
        observe first = X[0]
    """)
    text = write_crn(model)
    assert "X_0" in text and "lattice" not in text.replace("# lattice sites", "")
    back = crnlang.parse(text)
    assert back.species_names == tuple(site_safe_name(n) for n in model.species_names)
    state = {"X[0]": 3, "X[1]": 4}
    flat_state = {site_safe_name(k): v for k, v in state.items()}
    for r, rb in zip(model.reactions, back.reactions):
        assert propensity(back, rb, flat_state) == propensity(model, r, state)


def test_params_keep_expressions_and_overrides_keep_values():
    model = crnlang.parse("param a = 2\nparam b = a * 3\nspecies X <= 4\nX -> 0 @ b\n")
    assert "param b = a * 3" in write_crn(model)
    tweaked = replace(model, params=(model.params[0], replace(model.params[1], value=7.5)))
    assert "param b = 7.5" in write_crn(tweaked)


def test_writer_escapes_every_word_the_front_end_refuses():
    # one set of reserved words (crnlang.vocabulary) for the lowering and the writer
    assert crn_writer.RESERVED_WORDS is names.RESERVED_WORDS is RESERVED_WORDS
    for word in sorted(RESERVED_WORDS):
        with pytest.raises(CRNError):
            crnlang.parse(f"species {word}\n")
        assert not is_identifier(word)
        safe = safe_identifier(word)
        assert [s.name for s in crnlang.parse(f"species {safe}\n").species] == [safe]


@pytest.mark.parametrize("expr, text", [
    (Unary("-", Binary("^", SpeciesRef("X"), Const(2.0))), "-X ^ 2"),
    (Binary("^", Unary("-", SpeciesRef("X")), Const(2.0)), "(-X) ^ 2"),
    (Binary("^", SpeciesRef("X"), Binary("^", ParamRef("a"), Const(2.0))), "X ^ a ^ 2"),
    (Binary("^", Binary("^", SpeciesRef("X"), ParamRef("a")), Const(2.0)), "(X ^ a) ^ 2"),
    (Binary("-", ParamRef("a"), Binary("-", ParamRef("b"), ParamRef("c"))), "a - (b - c)"),
    (Binary("-", Binary("-", ParamRef("a"), ParamRef("b")), ParamRef("c")), "a - b - c"),
    (Binary("/", ParamRef("a"), Binary("*", ParamRef("b"), ParamRef("c"))), "a / (b * c)"),
    (Binary("*", Binary("+", ParamRef("a"), ParamRef("b")), ParamRef("c")), "(a + b) * c"),
    (Binary("^", ParamRef("a"), Unary("-", ParamRef("b"))), "a ^ -b"),
    (Unary("-", Unary("-", ParamRef("a"))), "-(-a)"),
    (Logic("and", (Compare("<", SpeciesRef("X"), Const(3.0)),
                   Logic("or", (Compare(">", SpeciesRef("X"), ParamRef("a")),
                                Unary("not", Compare("==", SpeciesRef("X"), ParamRef("b"))))))),
     "X < 3 and (X > a or not X == b)"),
    (Call("max", (ParamRef("a"), Const(1e-5), Const(2.5e20))), "max(a, 1e-5, 2.5e20)"),
    (SpeciesRef("X[1,2]"), "X[1, 2]"),
])
def test_expression_printer(expr, text):
    assert format_expr(expr) == text


def test_format_number_round_trips_floats():
    for v in (0.1, 1 / 3, 1e-300, 2.5e20, 123456789.123456789, 5.0, 0.0, 1e16, 8.2207):
        assert float(format_number(v)) == v
    assert format_number(5.0) == "5"


# ---------------------------------------------------------------- random expressions
_numbers = st.sampled_from([0.0, 1.0, 2.0, 0.5, 3.25, 1e-4, 1e6])
_atoms = st.one_of(_numbers.map(Const), st.sampled_from(["a", "b"]).map(ParamRef),
                   st.sampled_from(["X", "Y"]).map(SpeciesRef))


def _numeric(children):
    return st.one_of(
        st.builds(Binary, st.sampled_from(["+", "-", "*", "/", "^"]), children, children),
        st.builds(Unary, st.just("-"), children),
        st.builds(lambda f, a: Call(f, (a,)), st.sampled_from(["exp", "sqrt", "abs"]), children),
        st.builds(lambda a, b: Call("min", (a, b)), children, children),
    )


numeric_exprs = st.recursive(_atoms, _numeric, max_leaves=12)


def _boolean(children):
    return st.one_of(
        st.builds(lambda op, xs: Logic(op, tuple(xs)), st.sampled_from(["and", "or"]),
                  st.lists(children, min_size=2, max_size=3)),
        st.builds(Unary, st.just("not"), children),
    )


boolean_exprs = st.recursive(
    st.builds(Compare, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), numeric_exprs, numeric_exprs),
    _boolean, max_leaves=4)

HEADER = "param a = 2, b = 3\nspecies X <= 5, Y <= 5\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numeric_exprs)
def test_printed_numeric_expressions_parse_to_the_same_tree(expr):
    model = crnlang.parse(HEADER + f"observe o = {format_expr(expr)}\n")
    assert model.observables[0].expr == expr


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boolean_exprs)
def test_printed_conditions_parse_to_the_same_tree(expr):
    model = crnlang.parse(HEADER + f"observe o = {format_expr(expr)}\n")
    assert model.observables[0].expr == expr
