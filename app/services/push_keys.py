"""The VAPID key pair that signs every push: made on first use, kept in the instance folder, never in git.

The private key lives in ``<instance>/vapid_private.pem`` (mode 0600). Several processes may start at
once (gunicorn workers, ``flask push-worker``), so the file is created exclusively and the loser of the
race reads the winner's key instead of writing its own.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid

KEY_FILE = "vapid_private.pem"
_cache: dict[str, Vapid] = {}
_lock = threading.Lock()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _create_key_file(path: Path) -> None:
    vapid = Vapid()
    vapid.generate_keys()
    pem = vapid.private_pem()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def vapid_key(instance_path: str | Path) -> Vapid:
    """Return the school's VAPID key, making and storing it the first time."""
    path = Path(instance_path) / KEY_FILE
    with _lock:
        cached = _cache.get(str(path))
        if cached is not None:
            return cached
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            _create_key_file(path)
        vapid = Vapid.from_pem(path.read_bytes())
        _cache[str(path)] = vapid
        return vapid


def application_server_key(instance_path: str | Path) -> str:
    """The public key as browsers want it for ``pushManager.subscribe``: base64url, uncompressed point."""
    public = vapid_key(instance_path).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(public)
