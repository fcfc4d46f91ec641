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


def test_api_tokens_file_must_be_private_and_well_formed(tmp_path) -> None:  # noqa: ANN001
    import os

    from exporter.auth import Tokens

    good = tmp_path / "tokens.toml"
    good.write_text('[tokens]\nalice = "aaaaaaaaaaaaaaaaaaaa"\nbob = "bbbbbbbbbbbbbbbbbbbb"\n')
    os.chmod(good, 0o600)
    tokens = Tokens.load(str(good))
    assert tokens.user_for("b" * 20) == "bob" and tokens.user_for("b" * 19) is None
    assert Tokens.load("").user_for("a" * 20) is None  # no file: nobody is let in
    os.chmod(good, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        Tokens.load(str(good))
    for text, error in (('[tokens]\n"a/b" = "aaaaaaaaaaaaaaaaaaaa"\n', "user name"),
                        ('[tokens]\na = "short"\n', "at least 16"),
                        ('[tokens]\na = "aaaaaaaaaaaaaaaaaaaa"\nb = "aaaaaaaaaaaaaaaaaaaa"\n', "share a token"),
                        ('a = "aaaaaaaaaaaaaaaaaaaa"\n', "one \\[tokens\\] table")):
        bad = tmp_path / f"bad{len(text)}.toml"
        bad.write_text(text)
        os.chmod(bad, 0o600)
        with pytest.raises(ConfigError, match=error):
            Tokens.load(str(bad))


def test_a_bad_tokens_file_is_a_configuration_error_before_anything_starts(tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    from exporter.__main__ import main

    loose = tmp_path / "tokens.toml"
    loose.write_text('[tokens]\nalice = "aaaaaaaaaaaaaaaaaaaa"\n')
    loose.chmod(0o644)
    for name, value in {"EXPORTER_POSTGRES_DSN": "postgresql://x@127.0.0.1:1/x", "EXPORTER_REDIS_URL": "redis://h",
                        "EXPORTER_KAFKA_BOOTSTRAP": "127.0.0.1:1", "EXPORTER_API_TOKENS_FILE": str(loose)}.items():
        monkeypatch.setenv(name, value)
    assert main([]) == 2
    assert "readable by others" in capsys.readouterr().err


def test_the_producer_acknowledgement_is_a_setting_and_idempotence_needs_all() -> None:
    assert config.load(environ=BASE).kafka_acks == "all" and config.load(environ=BASE).kafka_idempotence
    leader_only = config.load(environ={**BASE, "EXPORTER_KAFKA_ACKS": "1", "EXPORTER_KAFKA_IDEMPOTENCE": "false"})
    assert (leader_only.kafka_acks, leader_only.kafka_idempotence) == ("1", False)
    with pytest.raises(ConfigError, match="kafka_idempotence needs kafka_acks=all"):
        config.load(environ={**BASE, "EXPORTER_KAFKA_ACKS": "1"})
    with pytest.raises(ConfigError, match="kafka_acks must be all or 1"):
        config.load(environ={**BASE, "EXPORTER_KAFKA_ACKS": "0"})


def test_the_durability_expectations_are_bounded_settings() -> None:
    loaded = config.load(environ={**BASE, "EXPORTER_KAFKA_MIN_INSYNC_REPLICAS": "2",
                                  "EXPORTER_REDIS_WAIT_REPLICAS": "1", "EXPORTER_REDIS_WAIT_TIMEOUT_MS": "500"})
    assert (loaded.kafka_min_insync_replicas, loaded.redis_wait_replicas, loaded.redis_wait_timeout_ms) == (2, 1, 500)
    default = config.load(environ=BASE)
    assert (default.kafka_min_insync_replicas, default.redis_wait_replicas) == (0, 0)
    with pytest.raises(ConfigError, match="kafka_min_insync_replicas needs kafka_acks=all"):
        config.load(environ={**BASE, "EXPORTER_KAFKA_MIN_INSYNC_REPLICAS": "2", "EXPORTER_KAFKA_ACKS": "1",
                             "EXPORTER_KAFKA_IDEMPOTENCE": "false"})
    for name, value in [("EXPORTER_REDIS_WAIT_REPLICAS", "-1"), ("EXPORTER_KAFKA_MIN_INSYNC_REPLICAS", "17")]:
        with pytest.raises(ConfigError, match="must be within 0..16"):
            config.load(environ={**BASE, name: value})
    # The wait is one command: it must end before the client's own timeout (2 s) does.
    for value in ("5", "2000", "nan"):
        with pytest.raises(ConfigError):
            config.load(environ={**BASE, "EXPORTER_REDIS_WAIT_TIMEOUT_MS": value})


@pytest.mark.parametrize(("defect", "acks", "idempotent"), [(None, "all", True), ("acks_leader_only", "1", False),
                                                            ("broker_errors_dead_lettered", "all", False)])
def test_the_producer_is_made_with_the_settings_or_the_seeded_defect(
        monkeypatch: pytest.MonkeyPatch, defect: str | None, acks: str, idempotent: bool) -> None:
    from exporter import defects, sinks

    made: list[dict] = []
    monkeypatch.setattr(sinks, "Producer", lambda settings: made.append(settings) or object())
    if defect:
        monkeypatch.setenv(defects.ENV, defect)
    else:
        monkeypatch.delenv(defects.ENV, raising=False)
    defects.active.cache_clear()
    try:
        sinks.KafkaSink(config.load(environ=BASE))
    finally:
        monkeypatch.delenv(defects.ENV, raising=False)
        defects.active.cache_clear()
    assert (made[0]["acks"], made[0]["enable.idempotence"]) == (acks, idempotent)
    assert made[0].get("retries") == (0 if defect == "broker_errors_dead_lettered" else None)


@pytest.mark.parametrize("defect", [None, "broker_errors_dead_lettered"])
def test_a_broker_error_leaves_the_record_for_redelivery_unless_the_defect_dead_letters_it(
        monkeypatch: pytest.MonkeyPatch, defect: str | None) -> None:
    from confluent_kafka import KafkaError

    from exporter import defects, sinks
    from exporter.buffer import Entry

    monkeypatch.setattr(sinks, "Producer", lambda settings: object())
    monkeypatch.setenv(defects.ENV, defect or "")
    defects.active.cache_clear()
    try:
        sink = sinks.KafkaSink(config.load(environ=BASE))
        entry = Entry(b"1-0", b"7", b"v")
        result = sinks.SendResult()
        sink._judge_reports([entry], {b"7": KafkaError(KafkaError.NOT_ENOUGH_REPLICAS)}, {}, 0, 0.0, result)
    finally:
        monkeypatch.delenv(defects.ENV, raising=False)
        defects.active.cache_clear()
    if defect:
        assert [(e.record_id, letter.reason) for e, letter in result.dead] == [(7, "rejected_by_broker")]
    else:
        assert result.dead == [] and [e.record_id for e, _why in result.failed] == [7]


def test_sentinels_are_host_port_pairs_and_the_client_asks_them_for_the_primary() -> None:
    from exporter.redis_clients import connect

    loaded = config.load(environ={**BASE, "EXPORTER_REDIS_URL": "redis://exporter:pw@ignored:1/3",
                                  "EXPORTER_REDIS_SENTINELS": "127.0.0.1:26379, [::1]:26380",
                                  "EXPORTER_REDIS_SENTINEL_SERVICE": "buffer"})
    assert loaded.sentinel_addresses == [("127.0.0.1", 26379), ("::1", 26380)]
    clients = connect(loaded, 1.0)
    try:
        pool = clients.client.connection_pool
        # The URL gives the credentials and database; the address is the sentinels' to give.
        assert pool.service_name == "buffer" and len(clients.sentinels) == 2  # type: ignore[attr-defined]
        kwargs = pool.connection_kwargs
        assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("exporter", "pw", 3)
        assert "host" not in kwargs and kwargs["retry"].get_retries() == 0
    finally:
        clients.close()
    for bad in ("127.0.0.1", "host:port", "h:0", "h:70000", " , "):
        with pytest.raises(ConfigError, match="redis_sentinels"):
            config.load(environ={**BASE, "EXPORTER_REDIS_SENTINELS": bad})
    with pytest.raises(ConfigError, match="redis_sentinel_service is empty"):
        config.load(environ={**BASE, "EXPORTER_REDIS_SENTINELS": "h:1", "EXPORTER_REDIS_SENTINEL_SERVICE": " "})
