"""``platestream keys init | generate | show | allow | trust``: CURVE keys for remote viewers.

A viewer that listens beyond 127.0.0.1 accepts only producers whose public key it was
given (``allow``); a producer streams to a remote viewer only if it knows that viewer's
public key (``trust``). Secret keys never leave the machine they were made on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _store(args: argparse.Namespace) -> Any:
    from platestream.backend import KeyStore  # imports zmq: only when used

    return KeyStore(args.dir)


def cmd_init(args: argparse.Namespace) -> int:
    store = _store(args)
    for name in ("producer", "viewer"):
        public = store.directory / f"{name}.key"
        if public.exists() and not args.force:
            print(f"{name}: kept {public}")
            continue
        public, _secret = store.generate(name, force=args.force)
        print(f"{name}: created {public}")
    print(f"give {store.directory / 'producer.key'} to the viewers this machine streams to, and")
    print(f"{store.directory / 'viewer.key'} to the producers that stream to this machine")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        public, secret = _store(args).generate(args.name, force=args.force)
    except FileExistsError as err:
        print(f"platestream keys: {err}", file=sys.stderr)
        return 1
    print(f"public key: {public}\nsecret key: {secret} (keep it private)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from platestream.backend import load_public_key

    store = _store(args)
    print(f"key directory: {store.directory}")
    rows = [(name, store.directory / f"{name}.key") for name in ("producer", "viewer")]
    rows += [(f"allowed {p.stem}", p) for p in sorted(store.directory.glob("allowed/*.key"))]
    rows += [(f"viewer on {p.stem}", p) for p in sorted(store.directory.glob("viewers/*.key"))]
    for label, path in rows:
        key = load_public_key(path).decode() if path.exists() else "(none)"
        print(f"  {label:<28} {key}")
    return 0


def cmd_allow(args: argparse.Namespace) -> int:
    try:
        target = _store(args).allow(args.public_key, args.name)
    except (OSError, ValueError) as err:
        print(f"platestream keys: cannot allow {args.public_key}: {err}", file=sys.stderr)
        return 1
    print(f"allowed: {target}")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    try:
        target = _store(args).trust(args.host, args.public_key)
    except (OSError, ValueError) as err:
        print(f"platestream keys: cannot trust {args.public_key}: {err}", file=sys.stderr)
        return 1
    print(f"trusted the viewer on {args.host}: {target}")
    return 0


def register(groups: Any) -> None:
    keys = groups.add_parser("keys", help="CURVE key pairs for viewers on other hosts")
    keys.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="key directory (default: $PLATESTREAM_KEYS_DIR or ~/.config/platestream/keys)",
    )
    commands = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    commands.required = True

    init = commands.add_parser("init", help="create this machine's producer and viewer keys")
    init.add_argument("--force", action="store_true", help="replace existing keys")
    init.set_defaults(func=cmd_init)

    generate = commands.add_parser("generate", help="create a named key pair")
    generate.add_argument("name", help="file name stem, e.g. workstation")
    generate.add_argument("--force", action="store_true", help="replace an existing pair")
    generate.set_defaults(func=cmd_generate)

    show = commands.add_parser("show", help="print the public keys and where they are")
    show.set_defaults(func=cmd_show)

    allow = commands.add_parser("allow", help="let a producer's key stream to this viewer")
    allow.add_argument("public_key", type=Path, help="the producer's .key file")
    allow.add_argument("--name", help="name to file it under (default: the file's stem)")
    allow.set_defaults(func=cmd_allow)

    trust = commands.add_parser("trust", help="record the public key of a remote viewer")
    trust.add_argument("host", help="the viewer's host, as napari_host names it")
    trust.add_argument("public_key", type=Path, help="the viewer's .key file")
    trust.set_defaults(func=cmd_trust)
