"""Text -> syntax tree (``crnlang.syntax.ast``), with Lark errors turned into ``CRNSyntaxError``.

    parse_text(text, filename) -> ast.File

The grammar is ``crnlang/grammar/crn.lark`` (LALR, contextual lexer, positions kept).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken,
                             VisitError)

from ..errors import CRNSyntaxError, Loc
from ..vocabulary import KEYWORDS
from . import ast

GRAMMAR_PATH = Path(__file__).resolve().parents[1] / "grammar" / "crn.lark"

_OPEN = {"LPAR", "LSQB"}
_CLOSE = {"RPAR", "RSQB"}


class BracketNewlines:
    """Post-lexer: drops newlines inside ( ) and [ ], and ends the text with a newline."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        last = None
        for tok in stream:
            if tok.type in _OPEN:
                depth += 1
            elif tok.type in _CLOSE:
                depth = max(depth - 1, 0)
            elif tok.type == "_NL" and depth > 0:
                continue
            last = tok
            yield tok
        if last is None or last.type != "_NL":
            if last is None:
                yield Token("_NL", "\n", 0, 1, 1, 1, 1, 0)
            else:
                yield Token("_NL", "\n", last.end_pos, last.end_line, last.end_column,
                            last.end_line, last.end_column, last.end_pos)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(GRAMMAR_PATH.read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                postlex=BracketNewlines(), propagate_positions=True, maybe_placeholders=False)


def _pos(x) -> ast.Pos:
    """(line, col) of a Token or a rule's meta."""
    return (getattr(x, "line", 0) or 0, getattr(x, "column", 0) or 0)


def _arrow(text: str) -> str:
    if text in ("<->", "↔"):
        return "<->"
    if text in ("=>", "⇒"):
        return "=>"
    return "->"


@v_args(meta=True)
class ToAst(Transformer):
    """Lark tree -> ``ast`` nodes, one method per grammar rule."""

    # ---------------------------------------------------------------- statements
    def start(self, meta, children):
        return tuple(children)

    def model_stmt(self, meta, c):
        return ast.ModelStmt(str(c[0]), _pos(meta))

    def kinetics_stmt(self, meta, c):
        return ast.KineticsStmt(str(c[0]), _pos(meta), _pos(c[0]))

    def param_item(self, meta, c):
        return ast.ParamItem(str(c[0]), c[1], _pos(c[0]))

    def param_stmt(self, meta, c):
        return ast.ParamStmt(tuple(c), _pos(meta))

    def name_list(self, meta, c):
        return tuple(ast.Name(str(t), _pos(t)) for t in c)

    def func_stmt(self, meta, c):
        name, rest = c[0], c[1:]
        args = rest[0] if len(rest) == 2 else ()
        return ast.FuncStmt(str(name), args, rest[-1], _pos(meta), _pos(name))

    def species_plain(self, meta, c):
        return ast.SpeciesItem(str(c[0]), None, None, _pos(c[0]))

    def species_upper(self, meta, c):
        return ast.SpeciesItem(str(c[0]), None, c[2], _pos(c[0]))

    def species_range(self, meta, c):
        return ast.SpeciesItem(str(c[0]), c[1], c[3], _pos(c[0]))

    def species_stmt(self, meta, c):
        return ast.SpeciesStmt(tuple(c), _pos(meta))

    def empty_side(self, meta, c):
        return ()

    def side(self, meta, c):
        return tuple(c)

    def coef_term(self, meta, c):
        return ast.Term(str(c[1]), self._num(c[0]), _pos(c[0]))

    def name_term(self, meta, c):
        return ast.Term(str(c[0]), None, _pos(c[0]))

    def number_term(self, meta, c):
        return ast.Term(None, self._num(c[0]), _pos(c[0]))

    def reaction(self, meta, c):
        label = None
        label_pos = (0, 0)
        if isinstance(c[0], Token) and c[0].type == "NAME":
            label, label_pos = str(c[0]), _pos(c[0])
            c = c[1:]
        lhs, arrow, rhs, rates = c[0], c[1], c[2], tuple(c[3:])
        return ast.ReactionStmt(label, lhs, _arrow(str(arrow)), rhs, rates, _pos(meta), _pos(arrow),
                                label_pos)

    def use_stmt(self, meta, c):
        return ast.UseStmt(str(c[0]), _pos(meta))

    def import_stmt(self, meta, c):
        return ast.ImportStmt(str(c[0])[1:-1], _pos(meta))

    def module_def(self, meta, c):
        name = c[0]
        rest = list(c[1:])
        params = rest.pop(0) if rest and isinstance(rest[0], tuple) else ()
        return ast.ModuleDef(str(name), params, tuple(rest), _pos(meta))

    def module_call(self, meta, c):
        return ast.ModuleCall(str(c[0]), c[1] if len(c) > 1 else (), _pos(meta))

    def arg_list(self, meta, c):
        return tuple(c)

    def lattice_stmt(self, meta, c):
        return ast.LatticeStmt(str(c[0]), c[1] if len(c) > 1 else (), _pos(meta), _pos(c[0]))

    def diffuse_stmt(self, meta, c):
        return ast.DiffuseStmt(c[0], c[1], _pos(meta))

    def target(self, meta, c):
        return (str(c[0]), c[1] if len(c) > 1 else None, _pos(c[0]))

    def init_value(self, meta, c):
        name, indices, pos = c[0]
        return ast.InitItem(name, indices, "fixed", (c[1],), pos, _pos(c[1]) if hasattr(c[1], "pos") else pos)

    def init_dist(self, meta, c):
        name, indices, pos = c[0]
        args = c[2] if len(c) > 2 else ()
        return ast.InitItem(name, indices, str(c[1]), args, pos, _pos(c[1]))

    def init_stmt(self, meta, c):
        return ast.InitStmt(tuple(c), _pos(meta))

    def observe_stmt(self, meta, c):
        return ast.ObserveStmt(str(c[0]), c[1], _pos(c[0]))

    def absorb_stmt(self, meta, c):
        return ast.AbsorbStmt(c[0], _pos(meta))

    def ann_keyword(self, meta, c):
        return ast.AnnArg(str(c[0]), c[1], _pos(c[0]))

    def ann_positional(self, meta, c):
        return ast.AnnArg(None, c[0], _pos(meta))

    def annotation(self, meta, c):
        return ast.Annotation(str(c[0]), tuple(c[1:]), _pos(meta))

    # ---------------------------------------------------------------- expressions
    @staticmethod
    def _num(tok) -> ast.Num:
        return ast.Num(float(str(tok)), _pos(tok), str(tok))

    def number(self, meta, c):
        return self._num(c[0])

    def name(self, meta, c):
        return ast.Name(str(c[0]), _pos(c[0]))

    def call(self, meta, c):
        return ast.CallExpr(str(c[0]), c[1] if len(c) > 1 else (), _pos(meta))

    def index(self, meta, c):
        return ast.IndexExpr(str(c[0]), c[1], _pos(meta))

    def or_expr(self, meta, c):
        return ast.LogicExpr("or", tuple(c), _pos(meta))

    def and_expr(self, meta, c):
        return ast.LogicExpr("and", tuple(c), _pos(meta))

    def not_op(self, meta, c):
        return ast.UnaryExpr("not", c[0], _pos(meta))

    def compare(self, meta, c):
        return ast.CompareExpr(str(c[1]), c[0], c[2], _pos(meta))

    def _binary(op):  # noqa: N805 - a method factory used in the class body
        def method(self, meta, c):
            return ast.BinaryExpr(op, c[0], c[1], _pos(meta))
        return method

    add, sub, mul, div, pow = _binary("+"), _binary("-"), _binary("*"), _binary("/"), _binary("^")

    def neg(self, meta, c):
        return ast.UnaryExpr("-", c[0], _pos(meta))


# ---------------------------------------------------------------- diagnostics
_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a quoted path", "_NL": "end of line",
    "$END": "end of file", "ARROW": "'->'", "EMPTY": "'0'", "RANGE": "'..'",
    "LE": "'<='", "GE": "'>='", "EQ": "'=='", "NE": "'!='", "LT": "'<'", "GT": "'>'",
}


def _describe_terminal(name: str) -> str:
    if name in _WORDS:
        return _WORDS[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except (KeyError, AttributeError):
        return name.lower()
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


def _expected_words(names) -> str:
    words = sorted({_describe_terminal(n) for n in names if not n.startswith("__ANON")})
    if not words:
        return ""
    if len(words) > 8:  # a statement start: too many to list usefully
        words = [w for w in words if w.startswith("a ") or w in ("'->'", "'@'", "end of line")][:8] or words[:8]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _token_text(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _line_of(text: str, line: int) -> str | None:
    lines = text.splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else None


def _syntax_error(err: UnexpectedInput, text: str, filename: str) -> CRNSyntaxError:
    line, col = getattr(err, "line", 0) or 0, getattr(err, "column", 0) or 0
    if isinstance(err, UnexpectedToken):
        tok = err.token
        if tok.type in ("$END",) or (tok.type == "_NL" and tok.value == "\n" and line <= 0):
            line, col = max(1, len(text.splitlines())), len(_line_of(text, max(1, len(text.splitlines()))) or "") + 1
        elif tok.type == "_NL":
            line, col = tok.line, tok.column
        message = f"unexpected {_token_text(tok)}"
        accepts = set(err.accepts or err.expected)
        expected = _expected_words(accepts)
        hint = f"expected {expected}" if expected else None
        if "SPECIES" in accepts and "PARAM" in accepts:  # the start of a statement
            hint = ("expected a statement: model, kinetics, param, func, species, a reaction "
                    "(A + B -> C @ k), init, observe, absorb, lattice, diffuse, use, import, module or @solve(...)")
            if "RBRACE" in accepts:
                hint = "a module body must end with '}'" if tok.type == "$END" else \
                    "inside a module: reactions, `diffuse` and module calls, then '}'"
        elif tok.type == "EQUAL" and "ARROW" in accepts:
            hint = "declare a constant with `param NAME = ...`, an initial count with `init NAME = ...`"
        if tok.type == "NAME" and "NAME" not in (err.accepts or err.expected) and str(tok) in KEYWORDS:
            hint = f"'{tok}' is a keyword and cannot be used as a name"
    elif isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if 0 <= err.pos_in_stream < len(text) else "?"
        message = f"unexpected character {_char_text(ch)}"
        expected = _expected_words(err.allowed or ())
        hint = f"expected {expected}" if expected else None
        if ch == "\ufeff":
            hint = "the file starts with a byte-order mark: save it as UTF-8 without BOM"
        if ch == '"':
            hint = "a quoted path must end on the same line"
    elif isinstance(err, UnexpectedEOF):
        n = max(1, len(text.splitlines()))
        line, col = n, len(_line_of(text, n) or "") + 1
        message = "unexpected end of file"
        expected = _expected_words(err.expected)
        hint = f"expected {expected}" if expected else None
    else:  # pragma: no cover - lark has no other kinds
        message, hint = str(err).splitlines()[0], None
    return CRNSyntaxError(message, Loc(filename, line, col, _line_of(text, line)), hint)


MAX_DEPTH = 100  # nesting levels of one expression; deeper text is surely not a model


def _check_depth(tree: Tree, text: str, filename: str) -> None:
    """Refuse absurdly nested expressions before anything recurses over them."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            line, col = _pos(node.meta) if not node.meta.empty else (1, 1)
            raise CRNSyntaxError(f"expression nested more than {MAX_DEPTH} levels deep",
                                 Loc(filename, line, col, _line_of(text, line)),
                                 "split it up with params or funcs")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse_text(text: str, filename: str = "<string>") -> ast.File:
    """Parse one file's text to an ``ast.File``. Raises ``CRNSyntaxError``."""
    if not isinstance(text, str):
        raise CRNSyntaxError(f"expected model text (str), got {type(text).__name__}",
                             Loc(filename, 0, 0))
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, filename) from None
    _check_depth(tree, text, filename)
    try:
        statements = ToAst().transform(tree)
    except VisitError as err:  # pragma: no cover - a transformer bug, reported as a syntax error
        raise CRNSyntaxError(f"cannot read this statement ({err.orig_exc})", Loc(filename, 1, 1)) from None
    return ast.File(filename, text, statements)


_INVISIBLE = {"\ufeff": "a byte-order mark", "\x00": "a NUL byte", "\u200b": "a zero-width space",
              "\u00a0": "a no-break space"}


def _char_text(ch: str) -> str:
    """A character for a message: quoted when visible, else its code point and name."""
    if ch.isprintable() and ch not in _INVISIBLE:
        return f"'{ch}'"
    return f"U+{ord(ch):04X}" + (f" ({_INVISIBLE[ch]})" if ch in _INVISIBLE else "")
