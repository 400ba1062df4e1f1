"""Small typed helpers over Qt (PyQt6 through qtpy) shared by the GUI's windows."""

from __future__ import annotations

from typing import Any, TypeVar

from qtpy import QtCore
from qtpy.QtWidgets import QHeaderView, QMainWindow, QStatusBar, QTableView

Signal: Any = QtCore.Signal  # type: ignore[attr-defined]  # qtpy's alias of pyqtSignal

T = TypeVar("T")


def present(value: T | None, what: str) -> T:
    """``value``, which Qt types as optional but always gives here."""
    if value is None:
        raise RuntimeError(f"Qt gave no {what}")
    return value


def status_bar(window: QMainWindow) -> QStatusBar:
    return present(window.statusBar(), "status bar")


def plain_table(table: QTableView, stretch: int | None = None) -> None:
    """Rows selected whole, not editable, no row numbers; columns fit their contents
    (``stretch``: that column takes the rest)."""
    from qtpy.QtWidgets import QAbstractItemView

    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    present(table.verticalHeader(), "row header").setVisible(False)
    header = present(table.horizontalHeader(), "column header")
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    if stretch is None:
        header.setStretchLastSection(True)
    else:
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
