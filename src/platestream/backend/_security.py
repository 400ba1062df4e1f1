"""ZeroMQ CURVE: key pairs, where they live, and the viewer's allow-list check (ZAP).

Every viewer is a CURVE server, on loopback too: an analysis server is shared by many
users, and only the user who started a viewer (and the producers and tools that user runs)
may stream to it, control it or read from it. On one machine the credential is the user's
own key store, found by every producer, tool and viewer without being asked for
(``KeyStore.local_server`` / ``local_client``, ``credentials_for``): the viewer proves
itself with ``viewer.key_secret`` and accepts this user's ``producer.key``; both are made on
first use, their secrets readable by the user alone (like ssh's and Jupyter's files).
A viewer that listens beyond 127.0.0.1 additionally accepts the producer public keys of its
allow-list; a producer talking to a remote viewer must know that viewer's public key.

Key directory (``$PLATESTREAM_KEYS_DIR``, else ``$XDG_CONFIG_HOME/platestream/keys``)::

    producer.key, producer.key_secret   this machine's producer identity
    viewer.key,   viewer.key_secret     this machine's viewer identity
    allowed/<name>.key                  producers this machine's viewer accepts
    viewers/<host>.key                  remote viewers this machine's producers trust

Files use pyzmq's certificate format (``zmq.auth``), so ``zmq.auth`` tools read them too.
The directory is made 0700 and secret files 0600; a secret file that another user could
read, or that belongs to someone else, is refused (``KeyPermissionError``).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAIN = b"platestream"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class InsecureBindError(RuntimeError):
    """Refusing to listen beyond 127.0.0.1 without CURVE authentication."""


class KeyPermissionError(PermissionError):
    """A secret key file another user could read or replace: it is not used."""


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, 'localhost')."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # what an IPv6-enabled socket reports for 127.0.0.1
    return address.is_loopback


def is_local(host: str) -> bool:
    """True when ``host`` is this machine (loopback, or this machine's own name)."""
    return is_loopback(host) or host.lower() in {socket.gethostname().lower()}


@dataclass(frozen=True)
class KeyPair:
    """A CURVE key pair, Z85-encoded (40 characters each)."""

    public: bytes
    secret: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        public, secret = zmq.curve_keypair()
        return cls(public, secret)

    @classmethod
    def load(cls, path: Path) -> KeyPair:
        check_private(path)
        public, secret = zmq.auth.load_certificate(path)
        if secret is None:
            raise ValueError(f"{path} holds no secret key")
        return cls(public, secret)


def load_public_key(path: Path) -> bytes:
    public, _secret = zmq.auth.load_certificate(path)
    return public


@dataclass(frozen=True)
class CurveServer:
    """The viewer's credentials and the producer public keys it accepts."""

    keys: KeyPair
    allowed: frozenset[bytes]

    def apply(self, sock: zmq.Socket[bytes]) -> None:
        sock.curve_server = True
        sock.curve_secretkey = self.keys.secret
        sock.curve_publickey = self.keys.public
        sock.zap_domain = ZAP_DOMAIN


@dataclass(frozen=True)
class CurveClient:
    """A producer's credentials and the public key of the viewer it talks to."""

    keys: KeyPair
    server_public: bytes

    def apply(self, sock: zmq.Socket[bytes]) -> None:
        sock.curve_serverkey = self.server_public
        sock.curve_publickey = self.keys.public
        sock.curve_secretkey = self.keys.secret


def check_private(path: Path) -> None:
    """Refuse a secret file that is not this user's alone (owner and mode 0600 or less)."""
    info = os.stat(path)
    if info.st_uid != os.geteuid():
        raise KeyPermissionError(f"{path} belongs to uid {info.st_uid}, not to this user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyPermissionError(
            f"{path} can be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )


def default_keys_dir() -> Path:
    if os.environ.get("PLATESTREAM_KEYS_DIR"):
        return Path(os.environ["PLATESTREAM_KEYS_DIR"])
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "platestream" / "keys"


class KeyStore:
    """The key directory described in this module's docstring."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_keys_dir()

    def generate(self, name: str, *, force: bool = False) -> tuple[Path, Path]:
        """Create ``name.key`` and ``name.key_secret`` (mode 0600); refuse to overwrite."""
        with self._locked():
            public = self.directory / f"{name}.key"
            if public.exists() and not force:
                raise FileExistsError(f"{public} exists; use --force to replace it")
            return self._create(name)

    def _create(self, name: str) -> tuple[Path, Path]:
        # Written in a private (0700) folder, then renamed into place: the secret is never
        # readable by anyone else, and no reader sees half a file.
        with tempfile.TemporaryDirectory(dir=self.directory, prefix=".new-") as scratch:
            public_file, secret_file = zmq.auth.create_certificates(scratch, name)
            os.chmod(secret_file, 0o600)
            os.replace(secret_file, self.directory / f"{name}.key_secret")
            os.replace(public_file, self.directory / f"{name}.key")
        return self.directory / f"{name}.key", self.directory / f"{name}.key_secret"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The key directory (0700, made if missing), locked against other processes
        making the same keys at the same moment."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def ensure_local(self) -> None:
        """Make this user's producer and viewer pairs if either is missing."""
        names = ("producer", "viewer")
        if all((self.directory / f"{n}.key_secret").exists() for n in names):
            return
        with self._locked():
            for name in names:
                if not (self.directory / f"{name}.key_secret").exists():
                    self._create(name)
                    log.info("made this user's %s key in %s", name, self.directory)

    def pair(self, name: str) -> KeyPair:
        return KeyPair.load(self.directory / f"{name}.key_secret")

    def local_server(self) -> CurveServer:
        """A viewer's credentials: this user's viewer pair; it accepts this user's
        producers (and the allow-list's)."""
        self.ensure_local()
        return self.server()

    def local_client(self) -> CurveClient:
        """A producer's or tool's credentials for a viewer of this user on this machine."""
        self.ensure_local()
        return CurveClient(self.pair("producer"), self.pair("viewer").public)

    def allow(self, public_key_file: Path, name: str | None = None) -> Path:
        """Add a producer's public key to this viewer's allow-list."""
        load_public_key(public_key_file)  # refuse anything that is not a key file
        target = self.directory / "allowed" / f"{name or public_key_file.stem}.key"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(public_key_file, target)
        return target

    def trust(self, host: str, public_key_file: Path) -> Path:
        """Record the public key of the viewer on ``host`` for this machine's producers."""
        load_public_key(public_key_file)
        target = self.directory / "viewers" / f"{host}.key"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(public_key_file, target)
        return target

    def allowed(self) -> frozenset[bytes]:
        folder = self.directory / "allowed"
        if not folder.is_dir():
            return frozenset()
        return frozenset(load_public_key(path) for path in sorted(folder.glob("*.key")))

    def server(self) -> CurveServer:
        """The viewer pair; accepted: the allow-list and this store's own producer."""
        allowed = set(self.allowed())
        own = self.directory / "producer.key"
        if own.exists():
            allowed.add(load_public_key(own))
        return CurveServer(self.pair("viewer"), frozenset(allowed))

    def client(self, host: str) -> CurveClient | None:
        """Credentials for talking to the viewer on ``host``; None if either key is missing."""
        viewer_key = self.directory / "viewers" / f"{host}.key"
        if not viewer_key.exists() or not (self.directory / "producer.key_secret").exists():
            return None
        return CurveClient(self.pair("producer"), load_public_key(viewer_key))


def credentials_for(host: str, keystore: KeyStore | None = None) -> CurveClient | None:
    """What a producer or tool presents to the viewer on ``host``: on this machine, this
    user's own credentials (made on first use) - unless a viewer key was trusted for that
    very name (``keys trust 127.0.0.1 ...``: the far end of an ssh tunnel); elsewhere the
    trusted viewer key of that host, or None when there is none (then nothing is sent)."""
    store = keystore or KeyStore()
    if is_loopback(host):
        store.ensure_local()
        return store.client(host) or store.local_client()
    client = store.client(host)
    if client is None and is_local(host):
        return store.local_client()
    return client


class ZapAuthenticator:
    """Answers libzmq's ZAP requests: a CURVE client is accepted iff its key is allowed.

    Bound in the viewer's own context before any CURVE socket, so no connection is ever
    accepted unchecked; polled by the receive loop, so it needs no thread of its own.
    """

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], allowed: frozenset[bytes]):
        self.allowed = allowed
        self.denied = 0
        self.socket: zmq.Socket[bytes] = context.socket(zmq.REP)
        self.socket.linger = 0
        self.socket.bind(ZAP_ENDPOINT)

    def handle(self) -> None:
        frames = self.socket.recv_multipart()
        version, request_id = frames[0], frames[1] if len(frames) > 1 else b""
        ok, reason, user = self._decide(frames)
        if not ok:
            self.denied += 1
            address = frames[3].decode(errors="replace") if len(frames) > 3 else "?"
            log.warning("refused a producer from %s: %s", address, reason)
        status = b"200" if ok else b"400"
        self.socket.send_multipart([version, request_id, status, reason.encode(), user, b""])

    def _decide(self, frames: list[bytes]) -> tuple[bool, str, bytes]:
        if len(frames) < 7 or frames[0] != b"1.0":
            return False, "malformed ZAP request", b""
        mechanism, credentials = frames[5], frames[6]
        if mechanism != b"CURVE":
            return False, f"mechanism {mechanism!r} is not allowed", b""
        key = z85.encode(credentials)
        if key not in self.allowed:
            return False, f"public key {key.decode()} is not in the allow-list", b""
        return True, "OK", key

    def close(self) -> None:
        self.socket.close(linger=0)
