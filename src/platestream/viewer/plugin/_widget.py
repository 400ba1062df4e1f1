"""The dock widget "platestream receiver": the user's own napari, listening on a port.

While it listens, producers, the CLI (``viewer status/snapshot/layers/clear``) and the
process manager see this napari as a platestream viewer, with the same layers, names, axes,
contrast, status figures and rules as the standalone viewer process: the parts are the
same (``Receiver``, the ``Pump`` and layer model, the status dock, assembled by
``viewer.process.assemble``). Only the process is napari's: a ``shutdown`` request stops
listening (it does not quit napari), no viewer record is written (so no tool ever signals
napari's process), and planes are kept in RAM (napari's session is the persistence).
The user's own layers are never touched; ``clear`` removes only streamed layers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)


class ReceiverWidget(QWidget):
    """Port (and host and keys, for producers on other hosts); start and stop listening."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.receiver: Any = None
        self.pump: Any = None
        self.caption: Any = None
        self.port = QSpinBox()
        self.port.setRange(1024, 64535)
        self.port.setValue(5555)
        self.host = QLineEdit("127.0.0.1")
        self.keys = QLineEdit()
        self.keys.setPlaceholderText("key folder: required beyond 127.0.0.1")
        self.button = QPushButton("Start listening")
        self.button.clicked.connect(self.toggle)
        self.state = QLabel("not listening")
        self.state.setWordWrap(True)
        form = QFormLayout()
        form.addRow("port", self.port)
        form.addRow("host", self.host)
        form.addRow("keys", self.keys)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.button)
        layout.addWidget(self.state)
        layout.addStretch(1)

    @property
    def listening(self) -> bool:
        return self.receiver is not None

    def toggle(self) -> None:
        if self.listening:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Listen on the chosen port; False (said in the widget) if it cannot."""
        if self.listening:
            return True
        from platestream.backend import KeyStore, Receiver, ReceiverOptions
        from platestream.viewer.layer_model import MemoryPlanes, Overviews
        from platestream.viewer.process import assemble, max_texture_side

        host, keys = self.host.text().strip() or "127.0.0.1", self.keys.text().strip()
        try:
            curve = KeyStore(Path(keys)).server() if keys else None
            receiver = Receiver(
                ReceiverOptions(host=host, port=self.port.value(), curve=curve, zero_copy=True)
            )
        except Exception as err:  # a taken port, a bind beyond loopback without keys...
            self.state.setText(f"cannot listen on {host}:{self.port.value()}: {err}")
            return False
        overviews = Overviews(max_side=max_texture_side())
        title = f"napari (plugin) :{receiver.data_port}"
        self.pump, self.caption = assemble(self.viewer, receiver, title, MemoryPlanes(), overviews)
        self.pump.on_shutdown = self.stop  # a shutdown request stops listening, not napari
        self.receiver = receiver.start()
        self.button.setText("Stop listening")
        self.state.setText(
            f"listening on {host}:{receiver.data_port} (control {receiver.control_port})"
        )
        return True

    def stop(self) -> None:
        """Stop listening: the ports are freed; the layers stay (the user's to keep)."""
        if not self.listening:
            return
        self.pump.close()
        self.receiver.close()
        if self.caption is not None:
            self.caption.overlay = None
        dock = self._status_dock()
        if dock is not None:
            self.viewer.window.remove_dock_widget(dock)
        self.receiver = self.pump = self.caption = None
        self.button.setText("Start listening")
        self.state.setText("not listening")

    def _status_dock(self) -> Any:
        docks = getattr(self.viewer.window, "dock_widgets", {})
        return docks.get("platestream")

    def closeEvent(self, event: Any) -> None:
        self.stop()
        super().closeEvent(event)
