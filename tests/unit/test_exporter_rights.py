"""Pausing the whole pipeline is a right of its own, and a pause is ended by whoever asked for it
(or an operator with resume_any): before, every token could pause and resume, anyone's pause."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.auth import Tokens
from exporter.errors import ConfigError
from exporter.pausing import NotYours, Pauser, PauseStatus


def _tokens(tmp_path: Path, text: str) -> Tokens:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    path.chmod(0o600)
    return Tokens.load(str(path))


def test_rights_are_read_from_the_tokens_file(tmp_path: Path) -> None:
    a, b, o = "a" * 20, "b" * 20, "o" * 20
    tokens = _tokens(tmp_path, f'[tokens]\nalice = "{a}"\nbob = "{b}"\nops = "{o}"\n\n[rights]\nalice = ["pause"]\n'
                               'ops = ["pause", "resume_any"]\n')
    assert tokens.may("alice", "pause") and not tokens.may("alice", "resume_any")
    assert not tokens.may("bob", "pause")  # no [rights] line: exports only
    assert tokens.may("ops", "resume_any")


@pytest.mark.parametrize("rights,fragment", [
    ('[rights]\nalice = ["root"]\n', "must be a list of"),
    ('[rights]\nmallory = ["pause"]\n', "who has no token"),
    ('rights = 5\n', "[rights] must map"),
])
def test_bad_rights_are_refused_at_start(tmp_path: Path, rights: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        _tokens(tmp_path, rights + '[tokens]\nalice = "%s"\n' % ("a" * 20) if rights.startswith("rights")
                else '[tokens]\nalice = "%s"\n\n' % ("a" * 20) + rights)


class _Control:
    def __init__(self) -> None:
        import threading

        self.pause_requested = threading.Event()
        self.pause_deadline: float | None = None


def test_a_pause_is_ended_by_its_owner_or_an_operator_only() -> None:
    pauser = Pauser(_Control(), buffer=None)  # type: ignore[arg-type]
    pauser.status = PauseStatus(state="paused", by="alice")
    with pytest.raises(NotYours, match="asked for by 'alice'"):
        pauser.resume("bob", any_pause=False)
    assert pauser.status.state == "paused"
    assert pauser.resume("ops", any_pause=True).state == "running"
    pauser.status = PauseStatus(state="paused", by="alice")
    assert pauser.resume("alice", any_pause=False).state == "running"
