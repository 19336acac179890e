"""Front end diagnostics: a table of broken inputs, each with its error class, line:col and hint."""
from __future__ import annotations

import pytest

import crnlang
from crnlang.errors import (ECHO_WIDTH, CRNError, CRNImportError, CRNMultipleErrors, CRNNameError,
                            CRNSemanticError, CRNSyntaxError, echo_line)

# (what, text, error class, line, col, a piece of the hint or None)
BROKEN = [
    ('missing @', 'species X <= 60\n0 -> X 10\n', CRNSyntaxError, 2, 8, "expected '+' or '@'"),
    ('unknown species', 'species X\nX -> Y @ 1\n', CRNNameError, 2, 6, 'declare it: species Y'),
    ('did you mean', 'species Px, Py\nPx -> Pz @ 1\n', CRNNameError, 2, 7, 'did you mean'),
    ('unknown name in rate', 'species X\nX -> 0 @ k\n', CRNNameError, 2, 10, 'declare it with `param` or `sp'),
    ('did you mean param', 'param k1 = 1\nspecies X\nX -> 0 @ k2\n', CRNNameError, 3, 10, "did you mean 'k1'?"),
    ('unknown ann key', '@solve(methdo = fsp)\n', CRNNameError, 1, 8, "did you mean 'method'?"),
    ('bad enum', '@solve(method = fastest)\n', CRNSemanticError, 1, 17, 'use one of tdvp, ngd, adam, fs'),
    ('int', '@solve(batch = 1.5)\n', CRNSemanticError, 1, 16, None),
    ('neg dt', '@solve(dt = -1)\n', CRNSemanticError, 1, 13, None),
    ('unknown key network', '@network(nade, hidden = 16, foo = 2)\n', CRNNameError, 1, 29, 'valid keys: network, hidden, l'),
    ('bad network', '@network(lstm)\n', CRNSemanticError, 1, 10, 'use one of nade, shared, gru, tr'),
    ('bool', '@sampling(mixture, reweight = maybe)\n', CRNSemanticError, 1, 31, None),
    ('unknown annotation', '@solver(method = fsp)\n', CRNNameError, 1, 1, "did you mean 'solve'?"),
    ('rare unknown', 'observe a = 1 > 0\n@rare(b)\n', CRNNameError, 2, 7, 'define it with `observe NAME ='),
    ('rare numeric', 'species X\nobserve a = X\n@rare(a)\n', CRNSemanticError, 3, 7, None),
    ('dup species', 'species X, X\n', CRNNameError, 1, 12, 'first declared at m.crn:1:9'),
    ('name two kinds', 'param a = 1\nspecies a\n', CRNNameError, 2, 9, 'first declared at m.crn:1:7'),
    ('dup param', 'param a = 1, a = 2\n', CRNNameError, 1, 14, 'first declared at m.crn:1:7'),
    ('dup label', 'species X\nr: X -> 0 @ 1\nr: 0 -> X @ 1\n', CRNNameError, 3, 1, 'first used at m.crn:2:1'),
    ('dup obs', 'species X\nobserve o = X\nobserve o = X\n', CRNNameError, 3, 9, 'first declared at m.crn:2:9'),
    ('dup func', 'func f(x) = x\nfunc f(y) = y\n', CRNNameError, 2, 6, 'first declared at m.crn:1:6'),
    ('arity func', 'func f(x) = x\nspecies X\nX -> 0 @ f(1, 2)\n', CRNSemanticError, 3, 10, 'f(x)'),
    ('arity builtin', 'species X\nX -> 0 @ exp(1, 2)\n', CRNSemanticError, 2, 10, None),
    ('negative rate', 'species X\nX -> 0 @ -1\n', CRNSemanticError, 2, 10, 'rates are non-negative; write'),
    ('negative param rate', 'param k = -2\nspecies X\nX -> 0 @ k\n', CRNSemanticError, 3, 10, 'rates are non-negative; write'),
    ('div by zero', 'species X\nX -> 0 @ 1/0\n', CRNSemanticError, 2, 10, None),
    ('overflow', 'species X\nX -> 0 @ exp(1000)\n', CRNSemanticError, 2, 10, None),
    ('stoich float', 'species X\n1.5 X -> 0 @ 1\n', CRNSemanticError, 2, 1, "write e.g. '2 X'"),
    ('bare number', 'species X\n3 -> X @ 1\n', CRNSemanticError, 2, 1, "write '0' (or '∅') for the emp"),
    ('0 plus', 'species X\n0 + X -> 0 @ 1\n', CRNSemanticError, 2, 1, "drop the '0'"),
    ('index out of range', 'lattice chain(3)\nspecies X\nobserve o = X[3]\n', CRNSemanticError, 3, 15, 'indices along this axis run 0.'),
    ('wrong index count', 'lattice grid(2, 2)\nspecies X\nobserve o = X[0]\n', CRNSemanticError, 3, 13, 'write X[r, c]'),
    ('index no lattice', 'species X\nobserve o = X[0]\n', CRNSemanticError, 2, 13, 'declare `lattice chain(N)` or'),
    ('diffuse no lattice', 'species X\ndiffuse X @ 1\n', CRNSemanticError, 2, 1, 'declare `lattice chain(N)` or'),
    ('init outside', 'species X <= 10\ninit X = 11\n', CRNSemanticError, 2, 10, "'X' is declared with bounds 0."),
    ('empty range', 'species X in 5..2\n', CRNSemanticError, 1, 14, 'the lower bound must not excee'),
    ('init below', 'species X in 2..5\ninit X = 1\n', CRNSemanticError, 2, 10, "'X' is declared with bounds 2."),
    ('reserved t', 'species t\n', CRNNameError, 1, 9, "rename it, e.g. 't_'"),
    ('reserved pi', 'param pi = 3\n', CRNNameError, 1, 7, "rename it, e.g. 'pi_'"),
    ('builtin name', 'species exp\n', CRNNameError, 1, 9, "rename it, e.g. 'exp_'"),
    ('dunder', 'species __import__\n', CRNNameError, 1, 9, 'rename it'),
    ('dunder label', 'species X\n__x: X -> 0 @ 1\n', CRNNameError, 2, 1, 'rename it'),
    ('builtin param', 'param sin = 2\n', CRNNameError, 1, 7, "rename it, e.g. 'sin_'"),
    ('kinetics', 'kinetics mass_action\n', CRNSemanticError, 1, 10, 'use one of binomial, falling,'),
    ('reversible one rate', 'species X\nX <-> 0 @ 1\n', CRNSemanticError, 2, 11, 'give a forward and a backward'),
    ('two rates', 'species X\nX -> 0 @ 1, 2\n', CRNSemanticError, 2, 10, 'give one rate: @ k'),
    ('bare lattice', 'lattice chain(2)\nspecies X\nobserve o = X > 3\n', CRNSemanticError, 3, 13, 'use sum(X), mean(X), all(...),'),
    ('absorb unknown', 'species X\nabsorb o\n', CRNNameError, 2, 8, 'define it with `observe NAME ='),
    ('absorb numeric', 'species X\nobserve o = X\nabsorb o\n', CRNSemanticError, 3, 8, 'e.g. observe o_high = ... > 10'),
    ('init unknown', 'species X\ninit Y = 3\n', CRNNameError, 2, 6, 'declare it: species Y'),
    ('dist unknown', 'species X\ninit X ~ gauss(3)\n', CRNSemanticError, 2, 10, 'use poisson(lam), uniform(lo,'),
    ('binomial p', 'species X\ninit X ~ binomial(10, 1.5)\n', CRNSemanticError, 2, 23, None),
    ('uniform outside', 'species X <= 5\ninit X ~ uniform(0, 10)\n', CRNSemanticError, 2, 21, "'X' is declared with bounds 0."),
    ('init frac', 'species X\ninit X = 2.5\n', CRNSemanticError, 2, 10, None),
    ('init twice', 'species X\ninit X = 1, X = 2\n', CRNSemanticError, 2, 13, 'first given at m.crn:2:6'),
    ('no stdlib', 'use nosuch\n', CRNImportError, 1, 1, 'available: enzyme, gene, ratel'),
    ('stdlib dym', 'use enzym\n', CRNImportError, 1, 1, "did you mean 'enzyme'?"),
    ('missing import', 'import "nope.crn"\n', CRNImportError, 1, 1, 'paths are relative to the impo'),
    ('unknown module', 'species X\nfoo(X, 1)\n', CRNNameError, 2, 1, 'define it with `module NAME(..'),
    ('module arity', 'use enzyme\nspecies E, S, C, P\nenzyme(E, S, C, 1, 2, 3)\n', CRNSemanticError, 3, 1, 'enzyme(E, S, C, P, kf, kb, kca'),
    ('module species arg', 'use enzyme\nspecies E, S, C\nenzyme(E, S, C, 2 * E, 1, 2, 3)\n', CRNSemanticError, 3, 17, 'pass a species here (used at /'),
    ('param before def', 'param a = b\nparam b = 1\n', CRNNameError, 1, 11, 'a param may use only params de'),
    ('param uses species', 'species X\nparam a = X\n', CRNSemanticError, 2, 11, 'use a constant here, or a `=>`'),
    ('param uses t', 'param a = t\n', CRNSemanticError, 1, 11, None),
    ('rate condition', 'species X\nX -> 0 @ X > 1\n', CRNSemanticError, 2, 10, None),
    ('bool arithmetic', 'species X\nobserve o = (X > 1) + 2\n', CRNSemanticError, 2, 14, 'compare numbers with < <= > >='),
    ('and numbers', 'species X\nobserve o = X and 1\n', CRNSemanticError, 2, 13, 'compare numbers with < <= > >='),
    ('lattice kind', 'lattice ring(3)\n', CRNSemanticError, 1, 9, 'use chain(N) or grid(R, C)'),
    ('lattice size', 'lattice chain(0)\n', CRNSemanticError, 1, 15, None),
    ('lattice arity', 'lattice chain(2, 3)\n', CRNSemanticError, 1, 9, 'write lattice chain(N [, perio'),
    ('two lattices', 'lattice chain(2)\nlattice chain(3)\n', CRNSemanticError, 2, 1, 'first declared at m.crn:1:1'),
    ('unknown function', 'species X\nX -> 0 @ foo(1)\n', CRNNameError, 2, 10, 'builtins: exp, log, sqrt, sin,'),
    ('species called', 'species X\nX -> 0 @ X(1)\n', CRNSemanticError, 2, 10, 'a species is used by its name,'),
    ('func as value', 'func f(x) = x\nspecies X\nX -> 0 @ f\n', CRNSemanticError, 3, 10, 'f(...)'),
    ('unclosed paren', 'species X\nX -> 0 @ (1 +\n', CRNSyntaxError, 2, 14, "expected '(', '+', '-', a name"),
    ('bad char', 'species X $\n', CRNSyntaxError, 1, 11, "expected ',', '<=', 'in', '}'"),
    ('keyword name', 'species model\n', CRNNameError, 1, 9, "rename it, e.g. 'model_'"),
    ('model no name', 'model\n', CRNSyntaxError, 1, 6, 'expected a name'),
    ('unterminated string', 'import "abc\n', CRNSyntaxError, 1, 8, 'a quoted path must end on the'),
    ('recursive func', 'func f(x) = f(x)\nspecies X\nX -> 0 @ f(1)\n', CRNSemanticError, 1, 1, 'funcs are inlined, so they can'),
    ('recursive module', 'module m(A) {\n  m(A)\n}\nspecies X\nm(X)\n', CRNSemanticError, 2, 3, 'a module may not call itself'),
    ('module body', 'module m(A) {\n  species B\n}\n', CRNSemanticError, 2, 3, 'declare species and params out'),
    ('sqrt neg', 'species X\nX -> 0 @ 1\nX -> 0 @ sqrt(-1)\n', CRNSemanticError, 3, 10, None),
    ('two positional', '@solve(fsp, ssa)\n', CRNSemanticError, 1, 13, 'name the others, e.g. hidden ='),
    ('unit range', '@sampling(uniform = 2)\n', CRNSemanticError, 1, 21, None),
    ('poisson below lo', 'species X in 1..5\ninit X ~ poisson(2)\n', CRNSemanticError, 2, 10, 'use uniform'),
    ('module not closed', 'module m(A) {\n A -> 0 @ 1\n', CRNSyntaxError, 2, 12, "must end with '}'"),
    ('stray brace', 'species X\n}\n', CRNSyntaxError, 2, 1, 'expected a statement'),
    ('assignment', 'species X\nX = 3\n', CRNSyntaxError, 2, 3, 'param NAME = ...'),
    ('deep nesting', 'species X\nX -> 0 @ ' + '-' * 150 + '1\n', CRNSyntaxError, 2, 109, 'split it up'),
    ('huge lattice', 'lattice grid(1000, 1000)\n', CRNSemanticError, 1, 9, 'smaller lattice'),
]


@pytest.mark.parametrize("what,text,cls,line,col,hint", BROKEN, ids=[row[0] for row in BROKEN])
def test_broken_input(what, text, cls, line, col, hint):
    with pytest.raises(CRNError) as info:
        crnlang.parse(text, filename="m.crn")
    err = info.value
    if isinstance(err, CRNMultipleErrors):
        err = err.errors[0]
    assert type(err) is cls, err
    assert (err.loc.file, err.loc.line, err.loc.col) == ("m.crn", line, col), err
    assert err.loc.source_line == text.splitlines()[line - 1]
    if hint is not None:
        assert err.hint and hint in err.hint, err
    text_out = str(err)
    assert text_out.startswith(f"m.crn:{line}:{col}: error: ")
    shown, caret = echo_line(err.loc.source_line.rstrip("\n"), col)   # long lines are cut
    assert caret == col - 1 or len(err.loc.source_line) > ECHO_WIDTH
    assert "\n    " + shown + "\n    " + " " * caret + "^" in text_out


def test_table_is_big_enough():
    assert len(BROKEN) >= 40


def test_independent_errors_are_collected_in_source_order():
    text = "species X\nX -> Y @ 1\nparam k = -\nX -> 0 @ q\n"
    with pytest.raises(CRNSyntaxError):  # a syntax error stops at once
        crnlang.parse(text)
    text = "species X, X\nX -> Y @ 1\nX -> 0 @ q\n@solve(dtt = 1)\n"
    with pytest.raises(CRNMultipleErrors) as info:
        crnlang.parse(text)
    errs = info.value.errors
    assert [(type(e), e.loc.line) for e in errs] == [(CRNNameError, 1), (CRNNameError, 2), (CRNNameError, 3),
                                                     (CRNNameError, 4)]
    assert str(info.value).count("error:") == 4


def test_a_failed_param_does_not_cascade():
    with pytest.raises(CRNError) as info:
        crnlang.parse("param a = 1/0\nparam b = 2 * a\nspecies X\nX -> 0 @ b\n")
    assert not isinstance(info.value, CRNMultipleErrors)
    assert info.value.loc.line == 1


def test_check_file(tmp_path):
    from crnlang.model.lower import check_file

    good = tmp_path / "good.crn"
    good.write_text("species X <= 5\n0 -> X @ 1\n")
    assert check_file(good) == []
    bad = tmp_path / "bad.crn"
    bad.write_text("species X <= 5\n0 -> Z @ 1\nX -> 0 @ -1\n")
    errs = check_file(bad)
    assert [(e.loc.file, e.loc.line) for e in errs] == [(str(bad), 2), (str(bad), 3)]
    errs = check_file(tmp_path / "missing.crn")
    assert len(errs) == 1 and isinstance(errs[0], CRNImportError)


def test_bad_argument_types():
    with pytest.raises(CRNError):
        crnlang.parse(b"species X")  # type: ignore[arg-type]


def test_errors_in_an_imported_file_name_that_file(tmp_path):
    (tmp_path / "lib.crn").write_text("species A\nA -> B @ 1\n")
    main = tmp_path / "main.crn"
    main.write_text('import "lib.crn"\n')
    with pytest.raises(CRNNameError) as info:
        crnlang.load(main)
    assert info.value.loc.file == str(tmp_path / "lib.crn") and info.value.loc.line == 2
    (tmp_path / "syn.crn").write_text("species A\nA -> @ 1\n")
    main.write_text('import "syn.crn"\n')
    with pytest.raises(CRNSyntaxError) as info:
        crnlang.load(main)
    assert info.value.loc.file == str(tmp_path / "syn.crn") and info.value.loc.line == 2
