"""A shipped target definition edited one way, and the refusal it must meet (the unit tests of each
target's bad input start from here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.model.target import TargetDefinition, TargetError


def refused_at_its_line(source: Path, tmp_path: Path, edit: tuple[str, str], where: str) -> tuple[str, int]:
    """``source`` with ``edit`` applied is refused, naming the file, a line and ``where``; the
    message and the line it names."""
    text = source.read_text()
    assert edit[0] in text
    (tmp_path / "t.toml").write_text(text.replace(edit[0], edit[1]))
    with pytest.raises(TargetError) as caught:
        TargetDefinition.load(tmp_path / "t.toml")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 't.toml'}:") and where in message, message
    return message, int(message.split(":")[1])
