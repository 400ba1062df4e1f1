"""The image browser: open a plate folder, see it as a well grid and a table of images
(filtered by any component), a thumbnail of the selected image, and stream the chosen
images to a viewer of the instance list (or a new one) in the background."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QItemSelection, QItemSelectionModel, Qt
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from platestream.config import natural_key, well_key
from platestream.layering import BUILTIN_PARSERS, RegexParser
from platestream.pipeline import Plate, PlateError, PlateImage, read_plate
from platestream.viewer.manager import free_port

from ._images_model import COMPONENTS, HEADERS, ImagesModel
from ._instances import GREEN, STARTING, Instances
from ._plate_grid import PlateGrid
from ._qt import Signal, plain_table, present, status_bar
from ._stream_job import JobResult, stream_images
from ._thumbnail import thumbnail

ALL = "all"
NEW_VIEWER = "a new viewer"


class BrowserWindow(QMainWindow):
    """Browse a plate and stream chosen images to a viewer."""

    _plate_read = Signal(object)
    _thumbnail_made = Signal(object, object)
    _progress = Signal(int, int)
    _finished = Signal(object)

    def __init__(self, instances: Instances) -> None:
        super().__init__()
        self.setWindowTitle("platestream - image browser")
        self.instances = instances
        self.plate: Plate | None = None
        self.visible_rows: list[int] = []  # table row -> index into plate.images
        self.result: JobResult | None = None
        self._cancel = threading.Event()
        self._pool = ThreadPoolExecutor(2, "platestream-gui-browser")
        self._job: Any = None
        self._plate_read.connect(self._show_plate)
        self._thumbnail_made.connect(self._show_thumbnail)
        self._progress.connect(self._on_progress)
        self._finished.connect(self._on_finished)
        instances.changed.connect(self._refresh_targets)
        self.setCentralWidget(self._body())
        self.resize(1200, 760)

    # ------------------------------------------------------------------ layout

    def _body(self) -> QWidget:
        central = QWidget()
        layout = QVBoxLayout(central)
        top = QHBoxLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a plate folder (ImageXpress, Opera Phenix, ...)")
        self.folder.returnPressed.connect(lambda: self.open_plate(Path(self.folder.text())))
        self.pattern = QLineEdit()
        self.pattern.setPlaceholderText("file name pattern (regex), if no known convention")
        self.pattern.setToolTip(
            "a regular expression with named groups (well, or row and column; site, channel, "
            r"z_index, timepoint), matching whole file names, e.g. "
            r"(?P<well>[A-P]\d\d)_s(?P<site>\d+)_(?P<channel>\w+)\.tif"
        )
        self.pattern.returnPressed.connect(lambda: self.open_plate(Path(self.folder.text())))
        pick = QPushButton("Open plate...")
        pick.clicked.connect(self._pick_folder)
        top.addWidget(self.folder, stretch=2)
        top.addWidget(self.pattern, stretch=1)
        top.addWidget(pick)
        layout.addLayout(top)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._left())
        splitter.addWidget(self._right())
        splitter.setSizes([420, 780])
        layout.addWidget(splitter, stretch=1)
        layout.addLayout(self._stream_bar())
        return central

    def _left(self) -> QWidget:
        left = QWidget()
        column = QVBoxLayout(left)
        self.grid = PlateGrid()
        self.grid.selection_changed.connect(self.select_wells)
        self.thumb = QLabel("select an image")
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setMinimumSize(256, 256)
        self.thumb.setStyleSheet("background: #111; color: #888")
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(90)
        self.skipped.setToolTip("files that cannot be read, and why")
        self.thumb_caption = QLabel("")
        self.thumb_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column.addWidget(self.grid, stretch=1)
        column.addWidget(self.thumb)
        column.addWidget(self.thumb_caption)
        column.addWidget(QLabel("unreadable files"))
        column.addWidget(self.skipped)
        return left

    def _right(self) -> QWidget:
        right = QWidget()
        column = QVBoxLayout(right)
        filters = QHBoxLayout()
        self.filters: dict[str, QComboBox] = {}
        for name, header in zip(COMPONENTS, HEADERS, strict=False):
            box = QComboBox()
            box.addItem(ALL)
            box.currentTextChanged.connect(self._apply_filters)
            filters.addWidget(QLabel(header))
            filters.addWidget(box)
            self.filters[name] = box
        filters.addStretch(1)
        column.addLayout(filters)
        self.model = ImagesModel()
        self.table = QTableView()
        self.table.setModel(self.model)
        plain_table(self.table)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.selection = present(self.table.selectionModel(), "selection model")
        self.selection.selectionChanged.connect(self._on_rows_selected)
        column.addWidget(self.table, stretch=1)
        return right

    def _stream_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        self.selection_label = QLabel("no image selected")
        self.target = QComboBox()
        self.target.setMinimumWidth(220)
        self.stream_button = QPushButton("Stream selected")
        self.stream_button.clicked.connect(self.stream_selected)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel.set)
        bar.addWidget(self.selection_label)
        bar.addStretch(1)
        bar.addWidget(QLabel("Stream to"))
        bar.addWidget(self.target)
        bar.addWidget(self.stream_button)
        bar.addWidget(self.progress, stretch=1)
        bar.addWidget(self.cancel_button)
        self._refresh_targets()
        return bar

    # ------------------------------------------------------------------ the plate

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Plate folder")
        if path:
            self.open_plate(Path(path))

    def open_plate(self, root: Path, pattern: str | None = None) -> None:
        """Read the plate in a worker thread (headers only); it shows when read. Its file
        names are read by the known conventions, or by ``pattern`` (a regular expression
        with named groups; default: the pattern field's)."""
        self.folder.setText(str(root))
        if pattern is not None:
            self.pattern.setText(pattern)
        text = self.pattern.text().strip()
        try:
            parsers = (RegexParser(text),) if text else BUILTIN_PARSERS
        except ValueError as err:  # a bad pattern: said, nothing read
            status_bar(self).showMessage(str(err))
            return
        status_bar(self).showMessage(f"reading {root} ...")

        def work() -> None:
            try:
                self._plate_read.emit(read_plate(root, parsers))
            except (PlateError, OSError, ValueError) as err:
                self._plate_read.emit(err)

        self._pool.submit(work)

    def _show_plate(self, plate: Plate | Exception) -> None:
        if isinstance(plate, Exception):
            status_bar(self).showMessage(str(plate))
            return
        self.plate = plate
        counts = Counter(str(image.name.components.get("well", "")) for image in plate.images)
        self.grid.set_counts({well: n for well, n in counts.items() if well})
        for name, box in self.filters.items():
            values = {image.name.components.get(name) for image in plate.images} - {None}
            box.blockSignals(True)
            box.clear()
            box.addItem(ALL)
            box.addItems([str(v) for v in sorted(values, key=_sort_key(name))])
            box.setEnabled(len(values) > 1)
            box.blockSignals(False)
        self.skipped.clear()
        for path, why in plate.skipped:
            self.skipped.addItem(f"{path.name}: {why}")
        self._apply_filters()
        channels = ", ".join(plate.channel_names.values()) or "numbered"
        status_bar(self).showMessage(
            f"{plate.root.name}: {plate.format}, {len(plate.images)} images in "
            f"{len(counts)} wells, channels {channels}; {len(plate.skipped)} unreadable"
        )

    def _apply_filters(self) -> None:
        if self.plate is None:
            return
        wanted = {n: b.currentText() for n, b in self.filters.items() if b.currentText() != ALL}
        self.visible_rows = [
            index
            for index, image in enumerate(self.plate.images)
            if all(str(image.name.components.get(n)) == v for n, v in wanted.items())
        ]
        self.model.show(self.plate.images, self.plate.root, self.visible_rows)
        self._on_rows_selected()

    # ------------------------------------------------------------------ selection

    def select_wells(self, wells: list[str]) -> None:
        """Select every (shown) image of ``wells`` in the table."""
        chosen = set(wells)
        selection = QItemSelection()
        assert self.plate is not None
        first = None  # runs of adjacent rows become one range each
        for row, index in enumerate([*self.visible_rows, -1]):
            inside = index >= 0 and self.plate.images[index].name.components.get("well") in chosen
            if inside and first is None:
                first = row
            elif not inside and first is not None:
                right = self.model.index(row - 1, len(HEADERS) - 1)
                selection.select(self.model.index(first, 0), right)
                first = None
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.selection.select(selection, flags)

    def selected_images(self) -> list[PlateImage]:
        if self.plate is None:
            return []
        rows = sorted({index.row() for index in self.selection.selectedRows()})
        return [self.plate.images[self.visible_rows[row]] for row in rows]

    def _on_rows_selected(self, *_: Any) -> None:
        images = self.selected_images()
        self.selection_label.setText(f"{len(images)} image{'s' * (len(images) != 1)} selected")
        current = self.selection.currentIndex()
        if images:
            row = current.row() if current.isValid() else -1
            image = (
                self.plate.images[self.visible_rows[row]]
                if self.plate is not None and 0 <= row < len(self.visible_rows)
                else images[0]
            )
            self._pool.submit(self._make_thumbnail, image.path)

    def _make_thumbnail(self, path: Path) -> None:
        try:
            self._thumbnail_made.emit(path, thumbnail(path))
        except ValueError as err:
            self._thumbnail_made.emit(path, str(err))

    def _show_thumbnail(self, path: Path, pixels: np.ndarray | str) -> None:
        if isinstance(pixels, str):
            self.thumb.setText(f"{path.name}:\n{pixels}")
            self.thumb_caption.setText("")
            return
        height, width = pixels.shape
        image = QImage(pixels.tobytes(), width, height, width, QImage.Format.Format_Grayscale8)
        pixmap = QPixmap.fromImage(image.copy())  # copy: the array may go away
        self.thumb.setPixmap(pixmap.scaled(256, 256, Qt.AspectRatioMode.KeepAspectRatio))
        self.thumb.setToolTip(str(path))
        self.thumb_caption.setText(path.name)

    # ------------------------------------------------------------------ streaming

    def _refresh_targets(self) -> None:
        current = self.target.currentText()
        labels = [r.label for r in self.instances.rows if r.status in (GREEN, STARTING)]
        shown = [self.target.itemText(i) for i in range(self.target.count())]
        if [*labels, NEW_VIEWER] == shown:
            return
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems([*labels, NEW_VIEWER])
        if current in labels:
            self.target.setCurrentText(current)
        self.target.blockSignals(False)

    def stream_selected(self) -> None:
        """Stream the selected images to the chosen viewer, in a worker thread."""
        images = self.selected_images()
        if not images or self._job is not None:
            return
        choice = self.target.currentText()
        if choice == NEW_VIEWER or not choice:
            port = free_port(5555) or 5555
            title = self.plate.root.name if self.plate is not None else "platestream"
            handle, owned = self.instances.launch(port, title), False
        else:
            row = self.instances.row(choice)
            if row is None:
                status_bar(self).showMessage(f"{choice}: no such viewer any more")
                return
            handle, owned = self.instances.stream_handle(row.address)
        self._cancel.clear()
        self.progress.setRange(0, len(images))
        self.progress.setValue(0)
        self.stream_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        status_bar(self).showMessage(f"streaming {len(images)} images to {choice} ...")

        def work() -> None:
            try:
                result = stream_images(images, handle, self._progress.emit, self._cancel)
            except Exception as err:  # reported in the window, never raised into Qt
                result = JobResult(total=len(images), error=f"{type(err).__name__}: {err}")
            finally:
                if owned:
                    handle.close()
            self._finished.emit(result)

        self._job = self._pool.submit(work)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _on_finished(self, result: JobResult) -> None:
        self._job = None
        self.result = result
        self.stream_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        for path, why in result.skipped:
            self.skipped.addItem(f"{path.name}: {why}")
        status_bar(self).showMessage(result.summary())

    @property
    def streaming(self) -> bool:
        return self._job is not None

    def closeEvent(self, event: Any) -> None:
        self._cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().closeEvent(event)


def _sort_key(component: str) -> Any:
    if component == "well":
        return lambda value: well_key(value)
    return lambda value: natural_key(value)
