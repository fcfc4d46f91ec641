"""Bearer tokens for the exporter's job API, made fresh for every run.

The harness makes one token per user it acts as (itself, the users of an export burst, Locust's
API users), writes them to a file only its owner can read and gives the exporter that file's
path through the target definition's ``{api_tokens_file}`` placeholder. A target that declares
``api_auth = "bearer"`` gets ``Authorization: Bearer`` on every request the harness makes.
"""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.services.servers import write_secret

HARNESS_USER = "faultline"
BURST_USERS = 100  # ExportBurst.users is at most this
LOAD_USERS = 64  # Locust's API users share these (user n takes load-{n % 64})


def burst_user(n: int) -> str:
    return f"burst-{n}"


def load_user(n: int) -> str:
    return f"load-{n % LOAD_USERS}"


@dataclass(frozen=True)
class ApiTokens:
    by_user: dict[str, str]

    @classmethod
    def generate(cls) -> ApiTokens:
        users = [HARNESS_USER, *(burst_user(n) for n in range(BURST_USERS)), *(load_user(n) for n in range(LOAD_USERS))]
        return cls({user: secrets.token_urlsafe(24) for user in users})

    @classmethod
    def read(cls, path: Path) -> ApiTokens:
        return cls(dict(tomllib.loads(path.read_text())["tokens"]))

    def write(self, path: Path) -> Path:
        """(Re)write the file, 0600 from the moment it exists."""
        path.unlink(missing_ok=True)
        # The harness pauses and resumes as itself (the bundled exporter's rights table; a target
        # that reads only [tokens] ignores it).
        write_secret(path, "[tokens]\n" + "".join(f'"{u}" = "{t}"\n' for u, t in self.by_user.items())
                     + f'\n[rights]\n"{HARNESS_USER}" = ["pause", "resume_any"]\n')
        return path

    def header(self, user: str = HARNESS_USER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.by_user[user]}"}
