"""Well names -> the row and column of an NGFF plate.

Plate readers name wells ``A01``, ``B3``, ``AF48`` (rows A..Z then AA..AF on a 1536-well
plate) or ``r01c02`` (Opera Phenix). NGFF wants a row name and a column name, both
alphanumeric, and their indices; rows are letters and columns numbers without padding,
as in the specification's examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LETTERS = re.compile(r"^([A-Za-z]{1,2})0*(\d{1,3})$")
_ROW_COLUMN = re.compile(r"^[Rr]0*(\d{1,3})[Cc]0*(\d{1,3})$")


@dataclass(frozen=True, order=True)
class WellPosition:
    row_index: int  # 0 = A
    column_index: int  # 0 = column 1

    @property
    def row(self) -> str:
        return row_name(self.row_index)

    @property
    def column(self) -> str:
        return str(self.column_index + 1)

    @property
    def path(self) -> str:
        return f"{self.row}/{self.column}"

    @property
    def name(self) -> str:
        """The usual well name: ``A01``, ``AF48``."""
        return f"{self.row}{self.column_index + 1:02d}"


def row_name(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA (1536-well plates have rows A..AF)."""
    if index < 26:
        return chr(ord("A") + index)
    return chr(ord("A") + index // 26 - 1) + chr(ord("A") + index % 26)


def row_index(name: str) -> int:
    letters = name.upper()
    if len(letters) == 1:
        return ord(letters) - ord("A")
    return (ord(letters[0]) - ord("A") + 1) * 26 + ord(letters[1]) - ord("A")


def well_position(well: object) -> WellPosition | None:
    """The position of a well name, or None if it is not one (then it has no plate place)."""
    text = str(well).strip()
    match = _LETTERS.match(text)
    if match:
        column = int(match.group(2))
        return WellPosition(row_index(match.group(1)), column - 1) if column >= 1 else None
    match = _ROW_COLUMN.match(text)
    if match:
        row, column = int(match.group(1)), int(match.group(2))
        if row >= 1 and column >= 1:
            return WellPosition(row - 1, column - 1)
    return None
