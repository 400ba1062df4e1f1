"""The plate as a grid of wells: wells with images filled (darker with more images), their
image count written in, selected wells outlined. Click selects a well, Ctrl/Shift-click
adds or removes one, a drag selects a rectangle of wells."""

from __future__ import annotations

from collections.abc import Mapping

from qtpy.QtCore import QPoint, QRect, Qt
from qtpy.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from platestream.config import normalize_well, well_key

from ._qt import Signal

#: (rows, columns) of the standard plate formats, smallest first (as the overview's)
FORMATS = ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48))
MARGIN = 22  # room for row letters and column numbers


def plate_format(wells: Mapping[str, int]) -> tuple[int, int]:
    """The smallest usual format that holds every well (1-based rows and columns)."""
    rows = max((well_key(w)[0] for w in wells), default=1)
    columns = max((well_key(w)[1] for w in wells), default=1)
    for format_rows, format_columns in FORMATS:
        if rows <= format_rows and columns <= format_columns:
            return format_rows, format_columns
    return rows, columns


def row_letters(row: int) -> str:
    return normalize_well((row, 1)).rstrip("0123456789")


class PlateGrid(QWidget):
    """Wells of a plate; ``selection_changed`` carries the selected wells, in plate order."""

    selection_changed = Signal(list)

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.selected: set[str] = set()
        self.shape = (8, 12)
        self._press: QPoint | None = None
        self.setMinimumSize(300, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)

    def set_counts(self, counts: Mapping[str, int]) -> None:
        self.counts = dict(counts)
        self.selected = set()
        self.shape = plate_format(self.counts) if self.counts else (8, 12)
        self.update()

    def select(self, wells: set[str]) -> None:
        self.selected = {w for w in wells if w in self.counts}
        self.update()
        self.selection_changed.emit(sorted(self.selected, key=well_key))

    # ------------------------------------------------------------------ geometry

    def _cell(self) -> float:
        rows, columns = self.shape
        return max(4.0, min((self.width() - MARGIN) / columns, (self.height() - MARGIN) / rows))

    def cell_rect(self, well: str) -> QRect:
        row, column = well_key(well)
        size = self._cell()
        x, y = MARGIN + (column - 1) * size, MARGIN + (row - 1) * size
        return QRect(int(x) + 1, int(y) + 1, max(2, int(size) - 2), max(2, int(size) - 2))

    def well_at(self, point: QPoint) -> str | None:
        size = self._cell()
        column = int((point.x() - MARGIN) // size) + 1
        row = int((point.y() - MARGIN) // size) + 1
        rows, columns = self.shape
        if point.x() < MARGIN or point.y() < MARGIN or row > rows or column > columns:
            return None
        return normalize_well((row, column))

    # ------------------------------------------------------------------ drawing

    def paintEvent(self, event: QPaintEvent | None) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#1e1f22"))
        rows, columns = self.shape
        size = self._cell()
        most = max(self.counts.values(), default=1)
        font = QFont(painter.font())
        font.setPixelSize(max(7, min(12, int(size * 0.38))))
        painter.setFont(font)
        painter.setPen(QColor("#9aa0a6"))
        for column in range(1, columns + 1):
            if size >= 14 or column % 4 == 1:
                x = MARGIN + (column - 1) * size
                painter.drawText(
                    QRect(int(x), 2, int(size), MARGIN - 4),
                    Qt.AlignmentFlag.AlignCenter,
                    str(column),
                )
        for row in range(1, rows + 1):
            if size >= 14 or row % 4 == 1:
                y = MARGIN + (row - 1) * size
                painter.drawText(
                    QRect(2, int(y), MARGIN - 4, int(size)),
                    Qt.AlignmentFlag.AlignCenter,
                    row_letters(row),
                )
        for row in range(1, rows + 1):
            for column in range(1, columns + 1):
                self._draw_well(painter, normalize_well((row, column)), most, size)
        painter.end()

    def _draw_well(self, painter: QPainter, well: str, most: int, size: float) -> None:
        rect = self.cell_rect(well)
        count = self.counts.get(well, 0)
        if count:
            share = 0.45 + 0.55 * count / most  # every imaged well clearly lit
            fill = QColor.fromRgbF(0.16 * share, 0.62 * share, 0.95 * share)
        else:
            fill = QColor("#2b2d31")
        painter.setBrush(fill)
        selected = well in self.selected
        painter.setPen(QPen(QColor("#ffd166"), 3) if selected else QPen(QColor("#3c3f44"), 1))
        painter.drawEllipse(rect) if size < 14 else painter.drawRoundedRect(rect, 3, 3)
        if count and size >= 18:
            painter.setPen(QColor("#ffffff"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(count))

    # ------------------------------------------------------------------ mouse

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None:
            self._press = event.position().toPoint()

    def mouseReleaseEvent(self, event: QMouseEvent | None) -> None:
        start, self._press = self._press, None
        if start is None or event is None:
            return
        end = event.position().toPoint()
        first, last = self.well_at(start), self.well_at(end)
        if first is None or last is None:
            return
        (r1, c1), (r2, c2) = well_key(first), well_key(last)
        wells = {
            normalize_well((r, c))
            for r in range(min(r1, r2), max(r1, r2) + 1)
            for c in range(min(c1, c2), max(c1, c2) + 1)
        }
        modifiers = event.modifiers()
        adding = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        if modifiers & adding:
            wells = self.selected ^ wells if len(wells) == 1 else self.selected | wells
        self.select(wells)
