"""CurveZMQ key pairs on disk: generate a server and a client pair, load them back."""

from __future__ import annotations

import shutil
from pathlib import Path

import zmq
import zmq.auth

from .errors import BadRequest


def generate_keys(directory: str | Path) -> dict[str, Path]:
    """Write server and client key pairs into `directory`, plus `authorized_clients/` with the client's public key."""
    if not zmq.has("curve"):
        raise BadRequest("this pyzmq/libzmq build has no CurveZMQ support")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    server_public, server_secret = zmq.auth.create_certificates(directory, "server")
    client_public, client_secret = zmq.auth.create_certificates(directory, "client")
    authorized = directory / "authorized_clients"
    authorized.mkdir(exist_ok=True)
    shutil.copy(client_public, authorized / "client.key")
    for secret in (server_secret, client_secret):
        Path(secret).chmod(0o600)
    return {
        "server_public": Path(server_public),
        "server_secret": Path(server_secret),
        "client_public": Path(client_public),
        "client_secret": Path(client_secret),
        "authorized": authorized,
    }


def load_keypair(secret_file: Path) -> tuple[bytes, bytes]:
    """(public, secret) from a `.key_secret` certificate file."""
    if not secret_file.is_file():
        raise BadRequest(f"CurveZMQ secret key file not found: {secret_file} (make one with `vidrig keys DIR`)")
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise BadRequest(f"{secret_file} holds no secret key")
    return public, secret


def load_public_key(public_file: Path) -> bytes:
    """The public key from a `.key` certificate file."""
    if not public_file.is_file():
        raise BadRequest(f"CurveZMQ public key file not found: {public_file}")
    public, _ = zmq.auth.load_certificate(public_file)
    return public
