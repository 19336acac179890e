"""Fuzz: random text and random mutations of valid models raise nothing but CRNError."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crnlang
from crnlang.errors import CRNError

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.crn"))] + [
    "species X <= 60\n0 -> X @ 10\nX -> 0 @ 1\ninit X = 0\n",
    "use enzyme\nuse ratelaws\nspecies E, S, C, P\nenzyme(E, S, C, P, 1, 2, 3)\n"
    "0 => S @ hill(P, 2, 2)\nmodule m(A, k) {\n A -> 0 @ k\n}\nm(P, 0.5)\n",
    "lattice chain(3, periodic)\nspecies X <= 9\nX -> 0 @ 1\ndiffuse X @ 2\n"
    "observe o = any(X[1] > 2 or X >= 3)\ninit X[0] ~ uniform(1, 4)\n",
]
ALPHABET = st.sampled_from(list("XYAB0123456789 \n\t+-*/^()[]{},.:=<>@~#\"_abcdefgklmnoprstuvwxyz∅→$\\"))
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_only_crn_errors(text: str) -> None:
    try:
        crnlang.parse(text)
    except CRNError as e:
        assert e.message
        str(e)  # formatting never fails


@FUZZ
@given(st.text(ALPHABET, max_size=200))
def test_random_text(text):
    _parse_only_crn_errors(text)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 12)))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "swap" and i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        else:
            text = text[:i] + draw(st.text(ALPHABET, min_size=1, max_size=4)) + text[i:]
    return text


@FUZZ
@given(mutated())
def test_mutated_models(text):
    _parse_only_crn_errors(text)
