"""Secrets at rest: provider keys and GitHub tokens are encrypted with a key kept outside the database."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Mapping

PREFIX = "enc:v1:"


class SecretKeyError(RuntimeError):
    """A stored secret cannot be decrypted with the key at hand."""


class LockedSecret(str):
    """Stands in for a stored secret that cannot be decrypted here (the database moved without its key).

    It is an empty string, so code that does not know about it sees "no secret" and never sends
    anything; code that needs the secret checks `isinstance(value, LockedSecret)` and raises
    SecretKeyError(value.error), a message that says what to do.
    """

    error: str

    def __new__(cls, error: str) -> "LockedSecret":
        obj = super().__new__(cls, "")
        obj.error = error
        return obj


def is_encrypted(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX)


def require(value: str | None) -> str | None:
    """The secret itself, or SecretKeyError when it is locked."""
    if isinstance(value, LockedSecret):
        raise SecretKeyError(value.error)
    return value


def config_dir(env: Mapping[str, str]) -> Path:
    if env.get("HERMIT_CONFIG_DIR"):
        return Path(env["HERMIT_CONFIG_DIR"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base).expanduser() / "hermit"


def key_file(env: Mapping[str, str]) -> Path:
    return config_dir(env) / "secret.key"


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) under a key from HERMIT_SECRET_KEY or a 0600 key file.

    The key file is created only when a secret is first written, so read-only commands on a
    database without secrets never touch the config directory.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._fernet = None

    @property
    def source(self) -> str:
        if (self._env.get("HERMIT_SECRET_KEY") or "").strip():
            return "HERMIT_SECRET_KEY"
        return str(key_file(self._env))

    def _load(self, create: bool):
        if self._fernet is not None:
            return self._fernet
        from cryptography.fernet import Fernet

        raw = (self._env.get("HERMIT_SECRET_KEY") or "").strip()
        if raw:
            key = base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest())
        else:
            path = key_file(self._env)
            if path.exists():
                key = path.read_bytes().strip()
            elif create:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                key = Fernet.generate_key()
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:  # another process created it first: use theirs
                    key = path.read_bytes().strip()
                else:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(key + b"\n")
            else:
                raise SecretKeyError(
                    f"this database holds encrypted secrets but their key is missing (the database was moved "
                    f"without it): set HERMIT_SECRET_KEY, restore the key file {path}, or re-enter the secret"
                )
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise SecretKeyError(f"the secret key in {self.source} is not a valid key") from None
        return self._fernet

    def encrypt(self, value: str) -> str:
        if value.startswith(PREFIX):
            return value
        token = self._load(create=True).encrypt(value.encode())
        return PREFIX + token.decode()

    def reveal(self, value: str) -> str:
        """Like decrypt, but a secret that cannot be decrypted becomes a LockedSecret instead of an error."""
        try:
            return self.decrypt(value)
        except SecretKeyError as exc:
            return LockedSecret(str(exc))

    @property
    def reader(self) -> "RevealingCodec":
        """A codec for the store whose reads never fail (see LockedSecret); writes encrypt."""
        return RevealingCodec(self)

    def decrypt(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value  # plain text from an older database (re-encrypted when opened)
        from cryptography.fernet import InvalidToken

        try:
            return self._load(create=False).decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(
                f"a stored secret cannot be decrypted with the key from {self.source}: the database was "
                f"moved without its key; set HERMIT_SECRET_KEY to the original key or re-enter the secret"
            ) from None


class RevealingCodec:
    def __init__(self, box: SecretBox) -> None:
        self.box = box

    def encrypt(self, value: str) -> str:
        return self.box.encrypt(value)

    def decrypt(self, value: str) -> str:
        return self.box.reveal(value)
