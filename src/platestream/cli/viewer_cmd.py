"""``platestream viewer start | list | status | stop | kill | snapshot | clear``.

Every command names a viewer by its data port (the control port is that + 1000) and, for
a viewer on another host, ``--host`` (reached with the key store's trusted key for that
host, or a key directory given with ``--keys``). ``list`` finds this machine's viewers by
their records, on any port - as the GUI's instance list does. Nothing that does not prove
to be a platestream viewer is ever stopped or killed. Qt is imported only by ``start``
(in the viewer process itself: a foreground start becomes that process).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def _fail(message: str) -> int:
    print(f"platestream viewer: {message}", file=sys.stderr)
    return 1


def _port_range(text: str) -> range:
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PORT or FIRST-LAST, got {text!r}") from None
    if not 1 <= low <= high <= 64535 or high - low > 10000:
        raise argparse.ArgumentTypeError(f"bad port range {text!r}")
    return range(low, high + 1)


def streaming_config(args: argparse.Namespace) -> Any:
    """The viewer's streaming settings: defaults, then a pipeline file's
    ``[pipeline.napari_streaming]`` (``--config``), then the command line's options."""
    import dataclasses

    from platestream.config import NapariStreamingConfig, is_unset

    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        from platestream.pipeline import load_pipeline_file

        section = load_pipeline_file(args.config).config.napari_streaming
        for spec in dataclasses.fields(section):
            value = getattr(section, spec.name)
            if not is_unset(value):
                values[spec.name] = value
    for option, name in (
        ("store", "store"),
        ("store_dir", "store_dir"),
        ("memory_mb", "viewer_memory_mb"),
        ("overview", "overview"),
        ("overview_tile", "overview_tile_px"),
        ("overview_sites", "overview_site_layout"),
    ):
        value = getattr(args, option, None)
        if value is not None:
            values[name] = value
    if getattr(args, "port", None) is not None:
        values["napari_port"] = args.port
    return NapariStreamingConfig(**values)


def start_viewer(args: argparse.Namespace, extra: list[str] | None = None) -> int:
    """Run a viewer here (this process becomes it) or detached; ``extra``: more viewer
    options (``--run RUN`` to reopen a run)."""
    from platestream.config import resolve_current

    config = streaming_config(args)
    resolved = resolve_current(config).value
    show: list[str] = []
    for spec in getattr(args, "show", None) or []:
        show += ["--show", spec]  # checked by the viewer (parse_show), with its error
    extra = show + (extra or [])
    if show:
        from platestream.layering import parse_show

        try:
            parse_show(show[1::2])
        except ValueError as err:
            return _fail(str(err))
    keys = getattr(args, "keys", None)
    if not args.detach:  # this process becomes the viewer
        return _become_viewer(args, resolved, extra, keys)
    from platestream.backend import is_loopback
    from platestream.viewer.manager import NapariStreamVisualizer

    if not is_loopback(args.host) and not keys:
        return _fail(
            f"a viewer bound to {args.host} is reachable from other hosts: give it a key "
            "directory with --keys (made by 'platestream keys init'); it then requires CURVE"
        )
    visualizer = NapariStreamVisualizer(
        config,
        title=args.title,
        persistent=True,
        on_conflict=args.on_conflict,
        headless=args.headless,
        bind_host=args.host,
        keys=keys,
    )
    visualizer.extra_arguments = extra or []
    visualizer.start_viewer(async_mode=False)
    visualizer.close()  # persistent: the viewer stays
    if visualizer.pong is None:
        return _fail(visualizer.error or "the viewer did not start")
    pong = visualizer.pong
    print(f"viewer on port {visualizer.port} (control {visualizer.port + 1000}), pid {pong.pid}")
    return 0


def _become_viewer(
    args: argparse.Namespace, resolved: Any, extra: list[str], keys: Path | None
) -> int:
    """Replace this process with the viewer's own command (same pid, same terminal), so a
    foreground viewer is recognised, stopped and killed like a detached one."""
    import os

    from platestream.viewer.manager import store_arguments, viewer_command

    command = viewer_command(
        resolved.napari_port,
        args.title,
        host=args.host,
        headless=args.headless,
        extra=(["--keys", str(keys.resolve())] if keys else []) + store_arguments(resolved) + extra,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # returns only by raising


def cmd_start(args: argparse.Namespace) -> int:
    return start_viewer(args)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """The viewer's run store options (they override ``--config``'s)."""
    parser.add_argument(
        "--config",
        type=Path,
        help="a pipeline TOML file whose [pipeline.napari_streaming] settings apply",
    )
    parser.add_argument(
        "--store", choices=("disk", "memory"), help="keep planes on disk (default) or in RAM"
    )
    parser.add_argument("--store-dir", help="the folder of runs (default: the user's data dir)")
    parser.add_argument(
        "--memory-mb", type=int, help="RAM for planes with a disk store (default 2048)"
    )
    parser.add_argument(
        "--show",
        action="append",
        metavar="COMPONENT=VALUES",
        help="show only part of the stream, e.g. --show well=A01,A02 --show channel=DAPI "
        "(producers send this viewer nothing else; repeat for more components)",
    )
    parser.add_argument(
        "--no-overview",
        dest="overview",
        action="store_const",
        const=False,
        help="no plate overview (shown by default once a plate has more than one well)",
    )
    parser.add_argument("--overview-tile", type=int, help="a well's tile in the overview, px")
    parser.add_argument(
        "--overview-sites", help="sites in an overview tile: auto (default) or rows x columns"
    )


def _addresses(args: argparse.Namespace) -> list[Any]:
    from platestream.backend import is_local
    from platestream.viewer.manager import Address, key_dir, local_addresses

    keys = key_dir(args.keys)
    if is_local(args.host):  # the records, and the ports asked for
        found = local_addresses(args.ports or ())
        return [Address(a.host, a.port, keys) for a in found]
    ports = args.ports or _port_range("5555-5575")  # another host: no records to read
    return [Address(args.host, port, keys) for port in ports]


def cmd_list(args: argparse.Namespace) -> int:
    from platestream.viewer.manager import survey

    infos = survey(_addresses(args))
    if args.json:
        print(json.dumps([info.row() for info in infos]))
        return 0
    if not infos:
        ports = "" if args.ports is None else f" on ports {args.ports.start}-{args.ports.stop - 1}"
        print(f"no platestream viewer of yours on {args.host}{ports}")
        return 0
    color = sys.stdout.isatty()
    header = f"{'port':>5}  {'pid':>7}  {'status':<6}  {'queue':>5}  {'recv':>7}  "
    print(header + f"{'shown':>7}  {'drop':>5}  {'rate':>6}  title")
    for info in infos:
        row = info.row()
        status = info.status
        shown = f"{GREEN if status == 'green' else RED}{status}{RESET}" if color else status
        counts = "  ".join(
            f"{row.get(k, '-')!s:>{w}}"
            for k, w in (
                ("queue", 5),
                ("received", 7),
                ("displayed", 7),
                ("dropped", 5),
                ("rate", 6),
            )
        )
        note = f" ({info.note})" if info.note else ""
        port = info.address.label
        print(f"{port:>5}  {info.pid:>7}  {shown:<6}  {counts}  {info.title}{note}")
    return 0


def _no_viewer(port: int) -> str:
    return (
        f"no viewer of yours answers on port {port} (nothing is there, or it could not prove "
        "it is your viewer: another user's viewer, or another program)"
    )


def _request(args: argparse.Namespace, message: Any, timeout_s: float = 5.0) -> Any:
    from platestream.backend import ControlTimeout
    from platestream.schemas import Error
    from platestream.viewer.manager import request_viewer

    try:
        reply = request_viewer(args.host, args.port, message, timeout_s, args.keys)
    except ControlTimeout:
        return None
    if isinstance(reply.message, Error):
        raise RuntimeError(reply.message.message)
    return reply


def cmd_status(args: argparse.Namespace) -> int:
    from platestream.schemas import StatusRequest, unstructure

    reply = _request(args, StatusRequest())
    if reply is None:
        return _fail(_no_viewer(args.port))
    print(json.dumps(unstructure(reply.message), indent=2))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from platestream.viewer.manager import stop_viewer

    result = stop_viewer(args.host, args.port, args.timeout, args.keys)
    if result.gone:
        print(result.how)
        return 0
    return _fail(result.how)


def cmd_kill(args: argparse.Namespace) -> int:
    from platestream.backend import is_local
    from platestream.viewer.manager import Holder, inspect, kill_viewer

    if not is_local(args.host):
        return _fail(
            f"kill signals a process on this machine; {args.host} is another host "
            "(use 'stop', which asks the viewer there to shut down)"
        )
    state = inspect(args.port, args.host, keys=args.keys)
    if state.holder in (Holder.FREE, Holder.FOREIGN) or state.process is None:
        return _fail(f"no platestream viewer on port {args.port}; nothing killed")
    if not kill_viewer(state.process):
        return _fail(f"pid {state.process.pid} is not the viewer any more, or survived")
    print(f"killed viewer pid {state.process.pid} on port {args.port}")
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    from platestream.schemas import Snapshot

    reply = _request(args, Snapshot(canvas_only=not args.window), timeout_s=30.0)
    if reply is None or len(reply.frames) != 1:
        return _fail(f"no snapshot from port {args.port}")
    args.file.write_bytes(reply.frames[0])
    print(f"{args.file}: {len(reply.frames[0])} bytes")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    from platestream.schemas import Clear

    if _request(args, Clear(), timeout_s=10.0) is None:
        return _fail(_no_viewer(args.port))
    print(f"cleared the viewer on port {args.port}")
    return 0


def _keys_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=Path,
        help="a key directory to reach the viewer with (default: your key store; a viewer "
        "started with --keys is reached with its own)",
    )


def register(groups: Any) -> None:
    viewer = groups.add_parser("viewer", help="start, list and control napari viewers")
    viewer.add_argument(
        "--host",
        default="127.0.0.1",
        help="the viewers' host; for start, the address to bind (beyond 127.0.0.1 with --keys)",
    )
    commands = viewer.add_subparsers(dest="viewer_command", metavar="ACTION")
    commands.required = True

    start = commands.add_parser("start", help="run a viewer (here, or detached with --detach)")
    start.add_argument("--port", type=int, help="data port (control: +1000; default 5555)")
    start.add_argument("--title", default="platestream", help="the window title")
    add_store_options(start)
    start.add_argument("--detach", action="store_true", help="in the background; outlives us")
    start.add_argument(
        "--keys",
        type=Path,
        help="a key directory (platestream keys init): the viewer requires CURVE with its "
        "keys; needed with a --host other than 127.0.0.1",
    )
    start.add_argument(
        "--headless",
        action="store_true",
        help="no display here: the viewer runs its own Xvfb, for as long as it lives",
    )
    start.add_argument(
        "--on-conflict",
        choices=("next", "fail"),
        default="fail",
        help="if the port is another program's: try the next one, or fail (default)",
    )
    start.set_defaults(func=cmd_start)

    listing = commands.add_parser("list", help="viewers on a range of ports, green or red")
    listing.add_argument(
        "--ports",
        type=_port_range,
        help="data ports to look at too, FIRST-LAST (this machine's viewers are found by "
        "their records on any port; on another --host, default 5555-5575)",
    )
    _keys_option(listing)
    listing.add_argument("--json", action="store_true", help="one JSON list")
    listing.set_defaults(func=cmd_list)

    for name, func, text in (
        ("status", cmd_status, "every counter of a viewer, as JSON"),
        ("stop", cmd_stop, "shut a viewer down (gracefully, then by its verified pid)"),
        ("kill", cmd_kill, "SIGKILL a viewer, after checking the pid is that viewer"),
        ("clear", cmd_clear, "remove every streamed layer"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("port", type=int, help="the viewer's data port (e.g. 5555)")
        _keys_option(command)
        if name == "stop":
            command.add_argument(
                "--timeout",
                type=float,
                default=5.0,
                help="seconds to wait for it to stop when asked, then after SIGTERM (default 5)",
            )
        command.set_defaults(func=func)

    snapshot = commands.add_parser("snapshot", help="save a PNG of what the viewer shows")
    snapshot.add_argument("port", type=int, help="the viewer's data port (e.g. 5555)")
    snapshot.add_argument("file", type=Path, help="the PNG file to write")
    snapshot.add_argument("--window", action="store_true", help="the whole window")
    _keys_option(snapshot)
    snapshot.set_defaults(func=cmd_snapshot)
