"""The ``platestream`` command line.

Every module ``platestream.cli.<name>_cmd`` with a ``register(subparsers)`` function adds
one command group; they are found at run time, so a new group needs no edit here.
Imports stay inside the commands, so ``platestream --help`` imports no Qt.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from platestream import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platestream",
        description="Stream pipeline images live into napari, laid out by plate metadata.",
    )
    parser.add_argument("--version", action="version", version=f"platestream {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups.required = True
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.endswith("_cmd"):
            module = importlib.import_module(f"{__name__}.{module_info.name}")
            module.register(groups)
    return parser


#: platestream's own errors that are about the user's input or machine, not a bug: the CLI
#: prints them as one line (what and where) and exits 1 instead of showing a traceback.
USER_ERRORS = (
    "ConfigError",
    "PlateError",
    "FileNameError",
    "PlateMetadataError",
    "InsecureBindError",
    "PortConflict",
    "ViewerError",
    "SegmentError",
    "ControlTimeout",
    "StoreError",
)


def _is_user_error(err: BaseException) -> bool:
    return type(err).__module__.startswith("platestream.") and any(
        cls.__name__ in USER_ERRORS for cls in type(err).__mro__
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (``platestream ... | head``): not an error of ours. Point
        # stdout at /dev/null so the interpreter's last flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except Exception as err:
        if not _is_user_error(err):
            raise  # a bug: the traceback is what a report needs
        print(f"platestream {args.command}: {err}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
