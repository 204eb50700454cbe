"""Basic auth for the Prometheus and Alertmanager a harness starts (their `--web.config.file`).

Every run gets its own random password: the plain text in a 0600 file for the clients (Prometheus'
`password_file` towards Alertmanager, the receiver's `alertmanager_password_file`, the harness and
the tests), and only its bcrypt hash in the web config both servers read. Nothing on loopback can
read an alert, post one or change a silence without it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

USERNAME = "sentinel"
# The password is 32 random bytes, so the hash's cost adds nothing against guessing; a low cost keeps
# the first check of each new connection cheap on a busy machine (both servers cache a verified pair).
BCRYPT_ROUNDS = 10


class WebAuthUnavailable(RuntimeError):
    """bcrypt is not installed; the message says how to install it."""


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` created 0600 (never readable by others, whatever the umask)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def bcrypt_hash(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    """The bcrypt hash of `password` in the `$2b$` form Prometheus' web config takes."""
    try:
        import bcrypt  # the `demo` extra: only the harness writes web configs
    except ImportError:
        raise WebAuthUnavailable("bcrypt is not installed: pip install 'tts-sentinel[demo]'") from None
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


@dataclass(frozen=True)
class WebAuth:
    """One user and password for a stack's Prometheus and Alertmanager, kept in `directory`."""

    directory: Path
    username: str = USERNAME

    @property
    def password_file(self) -> Path:
        """The plain password (0600): what clients read."""
        return self.directory / "web.password"

    @property
    def config_file(self) -> Path:
        """The servers' `--web.config.file` (0600): the user and the password's bcrypt hash."""
        return self.directory / "web-config.yml"

    def write(self) -> None:
        """Make a new random password and write both files."""
        self.directory.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(32)
        write_private(self.password_file, password + "\n")
        config = {"basic_auth_users": {self.username: bcrypt_hash(password)}}
        write_private(self.config_file, yaml.safe_dump(config, sort_keys=False))

    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8").strip()

    def auth(self) -> httpx.BasicAuth:
        """For httpx: `httpx.get(url, auth=web.auth())`."""
        return httpx.BasicAuth(self.username, self.password())

    def client_config(self) -> dict[str, Any]:
        """The `basic_auth` block of a Prometheus client config (alerting, scrape) using this user."""
        return {"basic_auth": {"username": self.username, "password_file": str(self.password_file)}}

    def receiver_config(self) -> dict[str, Any]:
        """The receiver's settings for paging through this Alertmanager."""
        return {"alertmanager_username": self.username, "alertmanager_password_file": str(self.password_file)}

    def describe(self) -> dict[str, str]:
        """What stack.json records: the user and where its password is (never the password)."""
        return {"username": self.username, "password_file": str(self.password_file)}

    @classmethod
    def from_record(cls, record: dict[str, str]) -> WebAuth:
        """The WebAuth a stack.json's `web_auth` entry describes."""
        password_file = Path(record["password_file"])
        if password_file.name != "web.password":
            raise ValueError(f"unexpected password file {password_file}")
        return cls(password_file.parent, record["username"])
