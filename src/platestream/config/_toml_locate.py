"""Where each key of a TOML document is: dotted path -> (line, column), both 1-based.

tomllib gives values, not positions, so error messages would lose the line. This scanner
reads a document that tomllib already accepted and records the position of every table
header and key, with array-of-tables indices in the path (``steps[1].functions[0].name``).
It is deliberately small: values are skipped, multi-line strings and arrays included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_BARE = r"[A-Za-z0-9_-]+"
_KEY_PART = rf"(?:{_BARE}|\"(?:[^\"\\]|\\.)*\"|'[^']*')"
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_KEY = re.compile(rf"^(\s*)({_DOTTED})\s*=\s*")
_INLINE_KEY = re.compile(rf"(?:^|[{{,])\s*({_DOTTED})\s*=")

Position = tuple[int, int]


def _split(dotted: str) -> list[str]:
    parts = re.findall(_KEY_PART, dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


class _Scanner:
    def __init__(self) -> None:
        self.found: dict[str, Position] = {}
        self.array_counts: dict[str, int] = {}
        self.table = ""

    def _path_of(self, parts: list[str]) -> str:
        # Each prefix that names an array of tables refers to its latest element.
        path = ""
        for part in parts:
            path = f"{path}.{part}" if path else part
            if path in self.array_counts:
                path = f"{path}[{self.array_counts[path] - 1}]"
        return path

    def header(self, opener: str, dotted: str, line: int, col: int) -> None:
        parts = _split(dotted)
        if opener == "[[":
            parent = self._path_of(parts[:-1])
            base = f"{parent}.{parts[-1]}" if parent else parts[-1]
            self.array_counts[base] = self.array_counts.get(base, 0) + 1
            self.table = f"{base}[{self.array_counts[base] - 1}]"
        else:
            self.table = self._path_of(parts)
        self.found.setdefault(self.table, (line, col))

    def key(self, dotted: str, line: int, col: int) -> str:
        path = ".".join(_split(dotted))
        full = f"{self.table}.{path}" if self.table else path
        self.found.setdefault(full, (line, col))
        return full

    def inline_keys(self, owner: str, text: str, line: int, offset: int) -> None:
        for match in _INLINE_KEY.finditer(text):
            path = ".".join(_split(match.group(1)))
            self.found.setdefault(f"{owner}.{path}", (line, offset + match.start(1) + 1))


def _value_open(rest: str) -> str:
    """What a value leaves open at the end of its first line: a string quote, ']' or ''."""
    for quote in ('"""', "'''"):
        if rest.startswith(quote) and rest.count(quote) == 1:
            return quote
    return "]" if _array_closed(rest, 0) > 0 else ""


def _array_closed(line: str, depth_before: int) -> int:
    """The array nesting depth after ``line``, strings and comments skipped."""
    depth, in_str = depth_before, ""
    for char in line:
        if in_str:
            in_str = "" if char == in_str else in_str
        elif char in "\"'":
            in_str = char
        elif char == "#":
            break
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
    return depth


def key_positions(text: str) -> dict[str, Position]:
    """Map dotted key paths of a valid TOML document to their (line, column)."""
    scanner = _Scanner()
    pending = ""  # an open multi-line string quote, or "]" for an open array
    depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if pending in ('"""', "'''"):
            if pending in raw:
                pending = ""
            continue
        if pending == "]":
            depth = _array_closed(raw, depth)
            pending = "]" if depth > 0 else ""
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(raw)
        if header:
            scanner.header(header.group(1), header.group(2), number, header.start(2) + 1)
            continue
        key = _KEY.match(raw)
        if key is None:
            continue
        full = scanner.key(key.group(2), number, key.start(2) + 1)
        rest = raw[key.end() :]
        if rest.lstrip().startswith("{"):
            scanner.inline_keys(full, rest, number, key.end())
        pending = _value_open(rest.lstrip())
        if pending == "]":
            depth = _array_closed(rest, 0)
    return scanner.found


def locate(positions: dict[str, Position], path: str) -> Position:
    """Position of ``path`` or of its nearest located ancestor; (0, 0) if none."""
    for candidate in _ancestors(path):
        if candidate in positions:
            return positions[candidate]
    return (0, 0)


def _ancestors(path: str) -> Iterator[str]:
    while path:
        yield path
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
