"""Regular expressions as the data plane runs them: PCRE through ``ngx.re``, checked here with Python's ``re``.

A pattern is accepted only if Python compiles it in ASCII mode (PCRE's default character classes) and it uses
none of the constructs both engines accept with different meanings. What PCRE alone understands (``\\K``,
recursion, ``\\Q..\\E``) is refused too: Python is the engine that validates and tests it.
"""

from __future__ import annotations

import functools
import re
import warnings

# Inline flags Python knows that PCRE does not (PCRE fails to compile them, or has none of their meaning).
_PYTHON_ONLY_FLAGS = frozenset("aLu")
_PCRE_MAX_REPEAT = 65535


def _scan(pattern: str) -> list[str]:
    problems: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1: i + 2]
            if nxt in ("u", "U", "N"):
                problems.append(f"\\{nxt} escapes are not supported by PCRE")
            i += 2
            continue
        if in_class:
            if c == "[" and pattern[i + 1: i + 2] in (":", ".", "="):
                problems.append("POSIX bracket expressions ([:...:]) mean different things in PCRE and Python")
            elif c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member, not the end of the class.
            i += 1
            if pattern[i: i + 1] == "^":
                i += 1
            if pattern[i: i + 1] == "]":
                i += 1
            continue
        if c == "{" and re.match(r"\{,\d+\}", pattern[i:]):
            problems.append("'{,n}' is a quantifier in Python but literal text in PCRE; write '{0,n}'")
        counts = re.match(r"\{(\d+)(?:,(\d*))?\}", pattern[i:]) if c == "{" else None
        if counts and any(int(n) > _PCRE_MAX_REPEAT for n in counts.groups() if n):
            # Python takes any count; PCRE fails to compile, so the data plane would refuse the whole host.
            problems.append(f"repetition counts above {_PCRE_MAX_REPEAT} are not supported by PCRE")
        if c == "(" and pattern[i + 1: i + 2] == "?":
            flags = re.match(r"\(\?([a-zA-Z]+)[:)-]", pattern[i:])
            if flags and set(flags.group(1)) & _PYTHON_ONLY_FLAGS:
                problems.append(f"inline flags '{flags.group(1)}' are not PCRE flags")
        i += 1
    return problems


@functools.lru_cache(maxsize=4096)
def pcre_problems(pattern: str) -> tuple[str, ...]:
    """Why ``pattern`` cannot be used on the data plane (empty when it can)."""
    try:
        # Python warns about what _scan reports as a problem (nested sets); the warning adds nothing.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern, re.ASCII)
    except (re.error, OverflowError, RecursionError) as err:
        return (f"invalid regular expression: {err}",)
    return tuple(dict.fromkeys(_scan(pattern)))


@functools.lru_cache(maxsize=4096)
def compile_pcre(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """The pattern compiled to behave as PCRE does on the data plane (ASCII classes; ``i`` when asked)."""
    return re.compile(pattern, re.ASCII | (re.IGNORECASE if ignore_case else 0))


def group_count(pattern: str) -> int:
    return compile_pcre(pattern).groups


_CAPTURE_REF = re.compile(r"\$(\d)|\$\{(\d+)\}")


def capture_references(substitution: str) -> list[int]:
    """Capture groups a rewrite substitution refers to (``$1``..``$9``, ``${N}``)."""
    return [int(a or b) for a, b in _CAPTURE_REF.findall(substitution)]


def expand_substitution(substitution: str, m: re.Match[str]) -> str:
    """What the data plane produces for ``substitution`` after ``m`` matched (unset groups are empty)."""
    def group(ref: re.Match[str]) -> str:
        index = int(ref.group(1) or ref.group(2))
        return (m.group(index) or "") if index <= (m.re.groups) else ""

    return _CAPTURE_REF.sub(group, substitution)
