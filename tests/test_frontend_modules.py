"""Imports, `use` and modules: splicing, cycles, merging once, substitution, stdlib names."""
from __future__ import annotations

import pytest

import crnlang
from crnlang.errors import CRNImportError, CRNNameError, CRNSemanticError
from crnlang.model import ir
from crnlang.model.semantics import evaluate


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_import_is_relative_to_the_importing_file(tmp_path):
    write(tmp_path / "lib" / "rates.crn", "param k = 2\nfunc double(x) = 2 * x\n")
    write(tmp_path / "lib" / "species.crn", 'import "rates.crn"\nspecies X <= 9\n')
    main = write(tmp_path / "main.crn", 'import "lib/species.crn"\n0 -> X @ double(k)\n')
    m = crnlang.load(main)
    assert m.name == "main" and m.species_names == ("X",)
    assert evaluate(m.reactions[0].rate, m.param_values) == 4


def test_a_file_imported_twice_is_merged_once(tmp_path):
    write(tmp_path / "common.crn", "species X <= 9\nX -> 0 @ 1\n")
    write(tmp_path / "a.crn", 'import "common.crn"\n')
    write(tmp_path / "b.crn", 'import "./common.crn"\n')
    main = write(tmp_path / "main.crn", 'import "a.crn"\nimport "b.crn"\nimport "common.crn"\n')
    m = crnlang.load(main)
    assert m.species_names == ("X",) and len(m.reactions) == 1


def test_import_cycles_are_errors(tmp_path):
    write(tmp_path / "a.crn", 'import "b.crn"\nspecies A\n')
    write(tmp_path / "b.crn", 'species B\nimport "a.crn"\n')
    with pytest.raises(CRNImportError, match="import cycle: a.crn -> b.crn -> a.crn") as info:
        crnlang.load(tmp_path / "a.crn")
    assert info.value.loc.file == str(tmp_path / "b.crn") and info.value.loc.line == 2
    write(tmp_path / "self.crn", 'import "self.crn"\n')
    with pytest.raises(CRNImportError, match="cycle"):
        crnlang.load(tmp_path / "self.crn")


def test_imported_model_name_is_ignored(tmp_path):
    write(tmp_path / "lib.crn", "model library\nspecies X\n")
    main = write(tmp_path / "main.crn", 'import "lib.crn"\n')
    assert crnlang.load(main).name == "main"


def test_stdlib_names_resolve():
    m = crnlang.parse("use ratelaws\nspecies X <= 9\n0 => X @ hill(X, 3, 2)\n")
    assert evaluate(m.reactions[0].rate, {}, {"X": 3}) == pytest.approx(0.5)
    with pytest.raises(CRNNameError, match="unknown function 'hill'"):
        crnlang.parse("species X <= 9\n0 => X @ hill(X, 3, 2)\n")
    # using the same stdlib module twice merges it once
    m = crnlang.parse("use enzyme\nuse enzyme\nspecies E, S, C, P\nenzyme(E, S, C, P, 1, 1, 1)\n")
    assert len(m.reactions) == 3


def test_module_substitution_of_species_and_params():
    m = crnlang.parse("""
        param kdeg = 0.5
        module decay(A, B, k) {
            A -> B @ k * kdeg
            conv: A + B -> 2 B @ k
        }
        species X, Y, Z
        decay(X, Y, 3)
        decay(Y, Z, kdeg + 1)
    """)
    r = m.reactions
    assert [x.label for x in r] == ["r1", "decay1_conv", "r2", "decay2_conv"]
    assert (r[0].reactants, r[0].products) == ((("X", 1),), (("Y", 1),))
    assert (r[3].reactants, r[3].products) == ((("Y", 1), ("Z", 1)), (("Z", 2),))
    values = [evaluate(x.rate, m.param_values) for x in r]
    assert values == [1.5, 3, 0.75, 1.5]


def test_nested_modules_and_definition_after_use():
    m = crnlang.parse("""
        species P, Q
        pair(P, Q, 2)
        module one(A, k) {
            A -> 0 @ k
        }
        module pair(A, B, k) {
            one(A, k)
            one(B, 2 * k)
        }
    """)
    assert [(x.reactants, evaluate(x.rate, {})) for x in m.reactions] == [((("P", 1),), 2), ((("Q", 1),), 4)]


def test_module_errors():
    with pytest.raises(CRNNameError, match="module 'm' is defined twice"):
        crnlang.parse("module m(A) {\n}\nmodule m(B) {\n}\n")
    with pytest.raises(CRNNameError, match="module parameter 'A' appears twice"):
        crnlang.parse("module m(A, A) {\n}\n")
    with pytest.raises(CRNSemanticError, match="takes 2 argument"):
        crnlang.parse("module m(A, k) {\n A -> 0 @ k\n}\nspecies X\nm(X)\n")
    with pytest.raises(CRNNameError, match="unknown species 'W'"):
        crnlang.parse("module m(A, k) {\n A -> W @ k\n}\nspecies X\nm(X, 1)\n")


def test_module_labels_stay_unique_across_instances_and_user_labels():
    m = crnlang.parse("""
        use enzyme
        species E, S, C, P, F
        enzyme(E, S, C, P, 1, 2, 3)
        enzyme(F, S, C, P, 1, 2, 3)
        bind: E + F -> C @ 1
    """)
    labels = [r.label for r in m.reactions]
    assert len(labels) == len(set(labels)) == 7
    assert "enzyme2_cat" in labels and "bind" in labels


def test_modules_on_a_lattice_expand_per_site():
    m = crnlang.parse("""
        use gene
        lattice chain(3)
        species G in 0..1, M <= 9, P <= 9
        gene(G, M, P, 1, 2, 3, 4)
        diffuse P @ 0.1
        init G = 1
    """)
    assert len(m.reactions) == 4 * 3 + 4
    assert m.reactions[0].label == "gene1_transcribe[0]"
    assert m.reactions[0].products == (("G[0]", 1), ("M[0]", 1))
    assert m.init_of("G[2]") == ir.InitDist("fixed", (1,))


def test_unreadable_import(tmp_path):
    write(tmp_path / "main.crn", 'import "missing.crn"\n')
    with pytest.raises(CRNImportError, match="cannot read 'missing.crn'"):
        crnlang.load(tmp_path / "main.crn")
