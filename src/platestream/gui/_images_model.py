"""The browser's table of images as a Qt model that makes its cells when they are drawn:
a plate of 100,000 images is a list of indices, not 700,000 table items."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt

from platestream.pipeline import PlateImage

COMPONENTS = ("well", "site", "channel", "z_index", "timepoint")
HEADERS = ("well", "site", "channel", "z", "timepoint", "size", "path")


def image_cells(image: PlateImage, root: Path) -> list[str]:
    components = image.name.components
    cells = [str(components.get(name, "")) for name in COMPONENTS]
    size = " x ".join(str(n) for n in image.shape) + f" {image.dtype}"
    return [*cells, size, str(image.path.relative_to(root))]


class ImagesModel(QAbstractTableModel):
    """Rows: the shown images (``rows``: indices into the plate's images)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: Sequence[PlateImage] = ()
        self.root = Path()
        self.rows: list[int] = []

    def show(self, images: Sequence[PlateImage], root: Path, rows: list[int]) -> None:
        self.beginResetModel()
        self.images, self.root, self.rows = images, root, rows
        self.endResetModel()

    def rowCount(self, parent: Any = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent: Any = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not index.isValid():
            return None
        image = self.images[self.rows[index.row()]]
        return image_cells(image, self.root)[index.column()]

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None
