"""The instance manager window: every viewer, green or red, with its counters; launch,
quit, force kill, snapshot and clear; remote viewers added by address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPainter, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from platestream.pipeline import load_pipeline_file
from platestream.viewer.manager import free_port

from ._instances import FAILED, GREEN, STARTING, Instances, Row
from ._qt import Signal, plain_table, present, status_bar

COLUMNS = ("", "port", "pid", "title", "status", "queue", "received", "shown", "dropped", "rate")
COLOURS = {GREEN: "#2ecc40", STARTING: "#f5a623", FAILED: "#e0302f"}
RED_COLOUR = "#e0302f"


def dot(colour: str, size: int = 14) -> QIcon:
    """A filled circle: the row's indicator."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


def row_cells(row: Row) -> list[str]:
    live = row.status == GREEN
    counts = [str(row.queue)]
    counts += [str(v) if live else "-" for v in (row.received, row.displayed, row.dropped)]
    counts.append(f"{row.rate:g}/s" if live else "-")
    status = row.status + (f" ({row.note})" if row.note else "")
    return ["", row.label, str(row.pid or "-"), row.title, status, *counts]


class ManagerWindow(QMainWindow):
    """``platestream gui``'s main window."""

    browse_requested = Signal()

    def __init__(self, instances: Instances | None = None) -> None:
        super().__init__()
        self.setWindowTitle("platestream - viewers")
        self.instances = instances or Instances()
        self.instances.changed.connect(self._show_rows)
        self.instances.message.connect(self.say)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self._launch_box())
        self.table = self._table()
        layout.addWidget(self.table, stretch=1)
        layout.addLayout(self._row_buttons())
        layout.addWidget(self._remote_box())
        self.setCentralWidget(central)
        self.resize(980, 560)
        self.count = QLabel("looking for viewers ...")
        status_bar(self).addPermanentWidget(self.count)
        self.last_message = ""
        self.instances.refresh()

    # ------------------------------------------------------------------ layout

    def _launch_box(self) -> QGroupBox:
        box = QGroupBox("Launch a viewer")
        form = QHBoxLayout(box)
        self.port = QSpinBox()
        self.port.setRange(1024, 64535)
        self.port.setValue(free_port(5555) or 5555)
        self.port.setToolTip("its data port (control: +1000); the next free one by default")
        self.title = QLineEdit("platestream")
        self.config_path = QLineEdit()
        self.config_path.setPlaceholderText("display config (pipeline TOML), optional")
        pick = QPushButton("...")
        pick.clicked.connect(self._pick_config)
        self.launch_button = QPushButton("Launch")
        self.launch_button.clicked.connect(self.launch)
        for label, widget in (("port", self.port), ("title", self.title)):
            form.addWidget(_label(label))
            form.addWidget(widget)
        form.addWidget(self.config_path, stretch=1)
        form.addWidget(pick)
        form.addWidget(self.launch_button)
        return box

    def _table(self) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setHorizontalHeaderLabels(COLUMNS)
        plain_table(table, stretch=3)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        return table

    def _row_buttons(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.quit_button = QPushButton("Quit")
        self.kill_button = QPushButton("Force kill...")
        self.snapshot_button = QPushButton("Snapshot...")
        self.clear_button = QPushButton("Clear")
        browse = QPushButton("Browse a plate...")
        browse.clicked.connect(self.browse_requested.emit)
        for button, slot in (
            (self.quit_button, self.quit_selected),
            (self.kill_button, self.kill_selected),
            (self.snapshot_button, self.snapshot_selected),
            (self.clear_button, self.clear_selected),
        ):
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(browse)
        return buttons

    def _remote_box(self) -> QGroupBox:
        box = QGroupBox("Add a viewer on another host (CURVE)")
        form = QFormLayout(box)
        line = QHBoxLayout()
        self.remote_host = QLineEdit()
        self.remote_host.setPlaceholderText("host or address")
        self.remote_port = QSpinBox()
        self.remote_port.setRange(1, 64535)
        self.remote_port.setValue(5555)
        self.remote_key = QLineEdit()
        self.remote_key.setPlaceholderText("its viewer.key (trusted in your key store), optional")
        add = QPushButton("Add")
        add.clicked.connect(self.add_remote)
        for widget in (self.remote_host, self.remote_port, self.remote_key, add):
            line.addWidget(widget)
        form.addRow(line)
        return box

    # ------------------------------------------------------------------ the list

    def _show_rows(self) -> None:
        chosen = self.selected()
        rows = self.instances.rows
        self.table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, text in enumerate(row_cells(row)):
                item = self.table.item(index, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(index, column, item)
                item.setText(text)
                item.setData(Qt.ItemDataRole.UserRole, row.label)
            indicator = present(self.table.item(index, 0), "indicator cell")
            indicator.setIcon(dot(COLOURS.get(row.status, RED_COLOUR)))
            indicator.setToolTip("responsive" if row.status == GREEN else row.note or row.status)
            if chosen is not None and row.label == chosen.label:
                self.table.selectRow(index)
        live = sum(row.status == GREEN for row in rows)
        self.count.setText(f"{len(rows)} viewer(s), {live} responsive")

    def selected(self) -> Row | None:
        items = self.table.selectedItems()
        if not items:
            return None
        return self.instances.row(str(items[0].data(Qt.ItemDataRole.UserRole)))

    def say(self, text: str) -> None:
        """Show ``text`` in the status bar (and keep it as ``last_message``)."""
        self.last_message = text
        status_bar(self).showMessage(text, 15000)

    # ------------------------------------------------------------------ actions

    def _pick_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Display config", "", "TOML (*.toml)")
        if path:
            self.config_path.setText(path)

    def launch(self) -> None:
        config: Any = None
        text = self.config_path.text().strip()
        if text:
            try:
                config = load_pipeline_file(Path(text)).config.napari_streaming
            except (OSError, ValueError) as err:
                QMessageBox.warning(self, "Display config", str(err))
                return
        port = self.port.value()
        self.instances.launch(port, self.title.text() or "platestream", config)
        self.port.setValue(free_port(port + 1) or port + 1)

    def quit_selected(self) -> None:
        row = self.selected()
        if row is not None:
            self.instances.quit(row)

    def kill_selected(self) -> None:
        row = self.selected()
        if row is None or not self.confirm_kill(row):
            return
        self.instances.force_kill(row)

    def confirm_kill(self, row: Row) -> bool:
        answer = QMessageBox.question(
            self,
            "Force kill",
            f"Kill the viewer on {row.label} (pid {row.pid}) without letting it finish?\n"
            "Images it has not shown are lost.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def snapshot_selected(self) -> None:
        row = self.selected()
        if row is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save snapshot", f"viewer-{row.address.port}.png", "PNG (*.png)"
        )
        if path:
            self.instances.snapshot(row, Path(path))

    def clear_selected(self) -> None:
        row = self.selected()
        if row is not None:
            self.instances.clear(row)

    def add_remote(self) -> None:
        host = self.remote_host.text().strip()
        if not host:
            self.say("give the viewer's host")
            return
        key = self.remote_key.text().strip()
        try:
            self.instances.add_remote(host, self.remote_port.value(), Path(key) if key else None)
        except (OSError, ValueError) as err:
            QMessageBox.warning(self, "Remote viewer", f"{key}: {err}")

    def closeEvent(self, event: Any) -> None:
        self.instances.close()
        super().closeEvent(event)


def _label(text: str) -> QWidget:
    return QLabel(text)
