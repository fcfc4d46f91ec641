"""Who is calling: bearer tokens per user, read from a file only its owner may read.

The tokens file is TOML, ``[tokens]`` mapping each user name to a token. Quotas, export
directories and job listings are keyed on the user a token belongs to, never on anything the
client writes in a request body (a body's ``user`` let ``"q "`` escape ``q``'s quota).

Every user may run export jobs. Pausing the whole pipeline is a right of its own, given in
``[rights]`` (``alice = ["pause"]``): a pause may be ended by the user who asked for it, or by
one with ``"resume_any"`` (an operator ending a pause someone else left behind).
"""

from __future__ import annotations

import hmac
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from exporter.errors import ConfigError

USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # also a directory name: no separators
MIN_TOKEN_CHARS = 16


RIGHTS = frozenset({"pause", "resume_any"})


@dataclass(frozen=True)
class Tokens:
    by_user: dict[str, str]
    rights: dict[str, frozenset[str]] = field(default_factory=dict)

    def may(self, user: str, right: str) -> bool:
        return right in self.rights.get(user, frozenset())

    @classmethod
    def load(cls, path: str) -> Tokens:
        """The tokens in ``path``; no path: nobody may use the authenticated endpoints."""
        if not path:
            return cls({})
        file = Path(path)
        try:
            mode = file.stat().st_mode
            data = tomllib.loads(file.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"api_tokens_file {path} does not exist") from exc
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"api_tokens_file {path}: {exc}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"api_tokens_file {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                              f"chmod 600 it")
        return cls(_validated(path, data), _rights(path, data))

    def user_for(self, token: str) -> str | None:
        """The token's user; every stored token is compared, in constant time each."""
        found = None
        for user, expected in self.by_user.items():
            if hmac.compare_digest(token.encode(), expected.encode()):
                found = user
        return found


def _validated(path: str, data: dict) -> dict[str, str]:
    unknown = sorted(set(data) - {"tokens", "rights"})
    if unknown or not isinstance(data.get("tokens"), dict):
        raise ConfigError(f"api_tokens_file {path}: expected one [tokens] table of user = \"token\""
                          + (f", not {unknown}" if unknown else ""))
    tokens: dict[str, str] = {}
    for user, token in data["tokens"].items():
        if not USER_NAME.fullmatch(user):
            raise ConfigError(f"api_tokens_file {path}: user name {user!r} must be letters, digits, . _ - "
                              f"(at most 64)")
        if not isinstance(token, str) or len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"api_tokens_file {path}: the token of {user!r} must be a string of at least "
                              f"{MIN_TOKEN_CHARS} characters")
        if token in tokens.values():
            raise ConfigError(f"api_tokens_file {path}: two users share a token")
        tokens[user] = token
    return tokens


def _rights(path: str, data: dict) -> dict[str, frozenset[str]]:
    table = data.get("rights", {})
    if not isinstance(table, dict):
        raise ConfigError(f"api_tokens_file {path}: [rights] must map a user to a list of rights")
    rights: dict[str, frozenset[str]] = {}
    for user, given in table.items():
        if user not in data["tokens"]:
            raise ConfigError(f"api_tokens_file {path}: [rights] names {user!r}, who has no token")
        if not isinstance(given, list) or not all(isinstance(r, str) and r in RIGHTS for r in given):
            raise ConfigError(f"api_tokens_file {path}: the rights of {user!r} must be a list of "
                              f"{', '.join(sorted(RIGHTS))}")
        rights[user] = frozenset(given)
    return rights
