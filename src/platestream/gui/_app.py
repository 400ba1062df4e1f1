"""``platestream gui``: the manager window, and the browser on demand (or at start with a
plate folder)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._browser_window import BrowserWindow
from ._instances import Instances
from ._manager_window import ManagerWindow

log = logging.getLogger(__name__)


class GuiApp:
    """The two windows over one instance list: the browser streams to the manager's viewers."""

    def __init__(self, refresh_ms: int = 1000) -> None:
        self.instances = Instances(refresh_ms)
        self.manager = ManagerWindow(self.instances)
        self.browser: BrowserWindow | None = None
        self.manager.browse_requested.connect(self.show_browser)

    def show_browser(self, plate: Path | None = None) -> BrowserWindow:
        if self.browser is None:
            self.browser = BrowserWindow(self.instances)
        self.browser.show()
        self.browser.raise_()
        if isinstance(plate, Path):
            self.browser.open_plate(plate)
        return self.browser

    def report_error(self, kind: type[BaseException], error: BaseException, trace: Any) -> None:
        """An exception that escaped a slot: logged and said in the manager's status bar.
        (With Python's own hook in place, PyQt6 would abort the whole application.)"""
        log.error("GUI error", exc_info=(kind, error, trace))
        self.manager.say(f"error: {kind.__name__}: {error}")

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
        self.manager.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the GUI until its main window closes; ``argv``: [PLATE_FOLDER]."""
    from qtpy.QtWidgets import QApplication

    args = list(argv or [])
    app: Any = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("platestream")
    gui = GuiApp()
    gui.manager.show()
    if args:
        gui.show_browser(Path(args[0]))
    app.lastWindowClosed.connect(app.quit)
    previous, sys.excepthook = sys.excepthook, gui.report_error
    try:
        code = app.exec()
    finally:
        sys.excepthook = previous
        gui.close()
    return int(code)
