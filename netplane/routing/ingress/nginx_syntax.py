"""The little nginx syntax ingress-nginx users write in values, parsed into IR data.

Two things are understood, nothing more:

- values with nginx variables (``t=${msec}``, ``$remote_addr``) → ``Template``, for the variables in
  ``VARIABLES`` and ``$http_*`` / ``$cookie_*`` / ``$arg_*``; any other variable is refused;
- ``configuration-snippet`` text made only of ``more_set_headers "Name: value" ...;`` and
  ``more_clear_headers "Name" ...;`` statements → response header operations.

Whatever is parsed here becomes data for the data plane; the text itself is never used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netplane.routing.ir import HeaderOp, RequestValue, ResponseHeaders, Template, TemplatePart, VarKind
from netplane.routing.validate import has_control, is_token

VARIABLES: dict[str, VarKind] = {
    "remote_addr": VarKind.SOURCE_IP,
    "binary_remote_addr": VarKind.SOURCE_IP,
    "host": VarKind.HOST,
    "uri": VarKind.PATH,
    "document_uri": VarKind.PATH,
    "request_uri": VarKind.REQUEST_URI,
    "request_method": VarKind.METHOD,
    "scheme": VarKind.SCHEME,
    "request_id": VarKind.REQUEST_ID,
    "req_id": VarKind.REQUEST_ID,
    "msec": VarKind.MSEC,
    "time_iso8601": VarKind.TIME_ISO8601,
    "server_port": VarKind.SERVER_PORT,
}
_PREFIXED = (("http_", VarKind.HEADER), ("cookie_", VarKind.COOKIE), ("arg_", VarKind.QUERY))
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


class SyntaxProblem(ValueError):
    """What is wrong with a value, phrased to follow ``Invalid value: "...": ``."""


def variable(name: str) -> RequestValue:
    kind = VARIABLES.get(name)
    if kind is not None:
        return RequestValue(kind)
    for prefix, named in _PREFIXED:
        if name.startswith(prefix) and len(name) > len(prefix):
            rest = name[len(prefix):]
            # nginx spells header names with '_' for '-' in $http_*; cookies and arguments keep their names.
            return RequestValue(named, rest.replace("_", "-") if named is VarKind.HEADER else rest)
    known = ", ".join(f"${v}" for v in sorted(VARIABLES))
    raise SyntaxProblem(f"variable ${name} is not allowed (allowed: {known}, $http_*, $cookie_*, $arg_*)")


def parse_template(text: str) -> Template:
    """``text`` with its nginx variables as request values. Raises ``SyntaxProblem``."""
    if has_control(text):
        raise SyntaxProblem("must not contain control characters (CR, LF, NUL)")
    parts: list[TemplatePart] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        literal = text[pos:m.start()]
        if "$" in literal:
            raise SyntaxProblem("'$' must start a variable name")
        if literal:
            parts.append(literal)
        parts.append(variable(m.group(1) or m.group(2)))
        pos = m.end()
    tail = text[pos:]
    if "$" in tail:
        raise SyntaxProblem("'$' must start a variable name")
    if tail:
        parts.append(tail)
    return Template(tuple(parts))


# ---------------------------------------------------------------------------------------------------------------
# configuration-snippet


@dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool
    line: int


_SPECIAL = set(";{}\"'#")


def _tokenize(snippet: str) -> list[_Token | str]:
    """nginx-style words, quoted strings and ';' separators; refuses blocks and escapes."""
    out: list[_Token | str] = []
    i, line, n = 0, 1, len(snippet)
    while i < n:
        c = snippet[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":
            while i < n and snippet[i] != "\n":
                i += 1
        elif c == ";":
            out.append(";")
            i += 1
        elif c in "{}":
            raise SyntaxProblem(f"line {line}: blocks ('{c}') are not allowed")
        elif c in "\"'":
            quote, i, chars = c, i + 1, []
            while True:
                if i >= n:
                    raise SyntaxProblem(f"line {line}: unterminated quoted string")
                ch = snippet[i]
                if ch == quote:
                    i += 1
                    break
                if ch == "\\":
                    nxt = snippet[i + 1: i + 2]
                    if nxt not in (quote, "\\"):
                        raise SyntaxProblem(f"line {line}: escape sequences other than \\{quote} and \\\\ "
                                            "are not allowed")
                    chars.append(nxt)
                    i += 2
                    continue
                if ch in "\r\n" or has_control(ch):
                    raise SyntaxProblem(f"line {line}: quoted strings must not contain line breaks or control "
                                        "characters")
                chars.append(ch)
                i += 1
            out.append(_Token("".join(chars), True, line))
        else:
            start = i
            while i < n and snippet[i] not in " \t\r\n" and snippet[i] not in _SPECIAL:
                if snippet[i] == "\\" or has_control(snippet[i]):
                    raise SyntaxProblem(f"line {line}: unexpected character {snippet[i]!r}")
                i += 1
            out.append(_Token(snippet[start:i], False, line))
    return out


def _statements(snippet: str) -> list[list[_Token]]:
    statements: list[list[_Token]] = []
    current: list[_Token] = []
    for token in _tokenize(snippet):
        if token == ";":
            if not current:
                raise SyntaxProblem("empty statement (';' without a directive)")
            statements.append(current)
            current = []
        else:
            assert isinstance(token, _Token)
            current.append(token)
    if current:
        raise SyntaxProblem(f"line {current[0].line}: statement {current[0].text!r} is not terminated by ';'")
    return statements


ALLOWED_DIRECTIVES = ("more_set_headers", "more_clear_headers")


def parse_header_snippet(snippet: str) -> ResponseHeaders:
    """The response header operations a snippet of ``more_set_headers`` / ``more_clear_headers`` statements
    performs, applied in order (an empty value clears the header, as headers-more does). Raises
    ``SyntaxProblem`` for anything else."""
    sets: dict[str, HeaderOp] = {}
    removes: dict[str, str] = {}
    for statement in _statements(snippet):
        directive, args = statement[0], statement[1:]
        if directive.quoted or directive.text not in ALLOWED_DIRECTIVES:
            raise SyntaxProblem(f"line {directive.line}: only more_set_headers and more_clear_headers statements "
                                f"are allowed, not {directive.text!r}")
        if not args:
            raise SyntaxProblem(f"line {directive.line}: {directive.text} needs at least one header")
        for arg in args:
            if not arg.quoted and arg.text.startswith("-"):
                raise SyntaxProblem(f"line {arg.line}: option {arg.text!r} is not supported")
            if directive.text == "more_clear_headers":
                name, value = arg.text.strip(), None
            else:
                name, sep, raw = arg.text.partition(":")
                if not sep:
                    raise SyntaxProblem(f"line {arg.line}: {arg.text!r} must be \"Name: value\"")
                name, value = name.strip(), raw.strip()
            if "*" in name:
                raise SyntaxProblem(f"line {arg.line}: header name wildcards are not supported")
            if not is_token(name):
                raise SyntaxProblem(f"line {arg.line}: {name!r} is not a valid HTTP header name")
            key = name.lower()
            if value:
                sets[key] = HeaderOp(name, parse_template(value))
                removes.pop(key, None)
            else:
                sets.pop(key, None)
                removes[key] = name
    return ResponseHeaders(set=tuple(sets.values()), remove=tuple(removes.values()))
