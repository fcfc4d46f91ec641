"""The exporter's settings: a number that is not finite is refused before anything starts."""

from __future__ import annotations

import pytest

from exporter import config
from exporter.errors import ConfigError

BASE = {"EXPORTER_POSTGRES_DSN": "postgresql://x", "EXPORTER_REDIS_URL": "redis://y",
        "EXPORTER_KAFKA_BOOTSTRAP": "127.0.0.1:9"}


@pytest.mark.parametrize("name", ["EXPORTER_POLL_INTERVAL_S", "EXPORTER_SOURCE_SETTLE_TIMEOUT_S",
                                  "EXPORTER_PAUSE_GRACE_S"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_setting_that_is_not_a_finite_number_is_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match="not a finite number"):
        config.load(environ={**BASE, name: value})


@pytest.mark.parametrize("value", ["0", "-1", "100000"])
def test_the_settle_timeout_is_bounded(value: str) -> None:
    with pytest.raises(ConfigError, match="source_settle_timeout_s"):
        config.load(environ={**BASE, "EXPORTER_SOURCE_SETTLE_TIMEOUT_S": value})


def test_finite_settings_load() -> None:
    loaded = config.load(environ={**BASE, "EXPORTER_POLL_INTERVAL_S": "0.05", "EXPORTER_SOURCE_SETTLE_TIMEOUT_S": "5"})
    assert (loaded.poll_interval_s, loaded.source_settle_timeout_s) == (0.05, 5.0)
