"""Java .properties text, written by the operator (spark.properties) and read by `tfscore run --spark-properties`.

One module for both directions so the two sides cannot disagree on escaping. The writer escapes every character that
would change the meaning of a line (separators and leading blanks in keys, leading blanks and line breaks in values,
backslashes everywhere); the reader implements the java.util.Properties rules (comments, `=`/`:`/blank separators,
escapes including \\uXXXX, line continuations). UTF-8 text, as Spark reads properties files.
"""

from __future__ import annotations

from collections.abc import Mapping

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}


def _escape(text: str, key: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch in "=:#! " and (key or i == 0):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def render(props: Mapping[str, str], header: str = "") -> str:
    """`key=value` lines (after `# header` lines); user strings are escaped, never interpreted."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{_escape(k, key=True)}={_escape(v, key=False)}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def _logical_lines(text: str) -> list[str]:
    """Physical lines joined where a line ends in an odd number of backslashes (java.util.Properties rules)."""
    out: list[str] = []
    pending: str | None = None
    for raw in text.splitlines():
        line = raw.lstrip(" \t\f") if pending is not None else raw
        if pending is None and (not line.strip() or line.lstrip(" \t\f").startswith(("#", "!"))):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = (pending or "") + line[:-1]
            continue
        out.append((pending or "") + line)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and i + 6 <= len(text) and all(c in "0123456789abcdefABCDEF" for c in text[i + 2:i + 6]):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_UNESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse(text: str) -> dict[str, str]:
    """The key → value map of a .properties text (later keys win, as in java.util.Properties)."""
    props: dict[str, str] = {}
    for line in _logical_lines(text):
        line = line.lstrip(" \t\f")
        i, n = 0, len(line)
        while i < n and line[i] not in "=: \t\f":
            i += 2 if line[i] == "\\" else 1
        key = line[:min(i, n)]
        rest = line[min(i, n):].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        props[_unescape(key)] = _unescape(rest)
    return props
