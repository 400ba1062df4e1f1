"""Make the GUI's screenshots for the docs (docs/images/gui-*.png), with real viewers.

    xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python scripts/gui_screenshots.py

Starts two viewers on free ports (one is then killed, to show red), opens the demo plate
in the browser, streams two wells to the first viewer, and grabs both windows.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from qtpy.QtWidgets import QApplication

from platestream.config import NapariStreamingConfig
from platestream.gui import GuiApp
from platestream.pipeline import SyntheticPlate, write_plate
from platestream.viewer.manager import free_port, open_viewer

OUT = Path(__file__).resolve().parent.parent / "docs" / "images"


def spin(app: QApplication, done: object, timeout_s: float) -> None:
    """Run the Qt loop until ``done()`` holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {done}")
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="platestream-shots-"))
    os.environ["PLATESTREAM_RUNTIME_DIR"] = str(scratch / "runtime")
    app = QApplication(sys.argv[:1])
    root = scratch / "demo_plate"
    write_plate(SyntheticPlate(rows=4, columns=6, sites=2, size=256), root)
    settings = NapariStreamingConfig(store="memory")
    first = free_port(6555) or 6555
    screen = open_viewer(port=first, title="screen 42, live", config=settings)
    second = free_port(first + 1) or first + 1
    crashed = open_viewer(port=second, title="yesterday's run", config=settings)
    gui = GuiApp()
    gui.manager.show()
    browser = gui.show_browser(root)
    spin(app, lambda: browser.plate is not None and len(gui.instances.rows) == 2, 60)
    assert crashed.pong is not None
    os.kill(crashed.pong.pid, signal.SIGKILL)
    browser.grid.select({"B02", "B03", "C02", "C03"})
    spin(app, lambda: browser.target.findText(str(first)) >= 0, 10)
    browser.target.setCurrentText(str(first))
    browser.stream_selected()
    spin(app, lambda: browser.result is not None, 60)
    screen.wait_shown(browser.result.sent if browser.result else 0, timeout_s=60)
    browser.table.selectRow(
        browser.visible_rows.index(
            next(
                i
                for i, image in enumerate(browser.plate.images)  # type: ignore[union-attr]
                if image.name.components["well"] == "B02"
                and image.name.components["channel"] == "GFP"
            )
        )
    )
    spin(app, lambda: bool(browser.thumb_caption.text()), 10)
    spin(app, lambda: any(r.status == "red" for r in gui.instances.rows), 5)
    gui.manager.table.selectRow(0)
    app.processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    gui.manager.grab().save(str(OUT / "gui-manager.png"))
    browser.grab().save(str(OUT / "gui-browser.png"))
    screen.snapshot(OUT / "gui-streamed.png")
    print(f"wrote {OUT / 'gui-manager.png'}, {OUT / 'gui-browser.png'}, {OUT / 'gui-streamed.png'}")
    gui.close()
    screen.stop()
    crashed.stop()  # removes the dead viewer's record
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
