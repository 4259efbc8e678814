"""Bind-address policy: loopback by default, anything else only with CurveZMQ keys."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from protocol.errors import BadRequest
from protocol.keys import load_keypair

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(endpoint: str) -> bool:
    """Whether a tcp:// or ipc:// endpoint is reachable only from this machine."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    if parts.scheme != "tcp":
        return False
    host = (parts.hostname or "").strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_socket(
    ctx: zmq.Context, sock: zmq.Socket, endpoint: str, keys_dir: Path | None
) -> ThreadAuthenticator | None:
    """Make `sock` a CURVE server when keys are given; refuse non-loopback binds without them."""
    if keys_dir is None:
        if not is_loopback(endpoint):
            raise BadRequest(
                f"refusing to bind {endpoint} without CurveZMQ keys: anyone on the network could submit jobs. "
                "Run `vidrig keys DIR` and start the server with `--keys DIR`, or bind a loopback address."
            )
        return None
    public, secret = load_keypair(keys_dir / "server.key_secret")
    authorized = keys_dir / "authorized_clients"
    if not authorized.is_dir():
        raise BadRequest(f"no authorized_clients folder in {keys_dir} (made by `vidrig keys DIR`)")
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(authorized))
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    return auth
