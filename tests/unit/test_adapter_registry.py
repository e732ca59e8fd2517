"""Adapter configs are checked with messages an admin can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters import signing
from adapters.file_drop import FileDropAdapter
from adapters.http_json import HttpJsonAdapter
from adapters.pull import PullAdapter
from adapters.registry import ADAPTER_KINDS, AdapterConfigError, build_adapter, validate_config
from adapters.simulator import SimulatorAdapter

SECRET = signing.generate_secret()
HTTP = {"url": "https://operator.example/fraudblock/orders", "secret": SECRET}
GOOD: dict[str, dict[str, Any]] = {
    "http_json": HTTP,
    "file_drop": {"outbox": "/srv/outbox/jio"},
    "pull": {},
    "simulator": {"outages": [{"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00Z"}]},
}


def test_config_errors_are_value_errors() -> None:
    assert issubclass(AdapterConfigError, ValueError)


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(AdapterConfigError, match="unknown adapter kind 'smtp'") as info:
        validate_config("smtp", {})
    for kind in ADAPTER_KINDS:
        assert kind in str(info.value)
    with pytest.raises(AdapterConfigError, match="valid kinds"):
        build_adapter("smtp", "jio", {})


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_good_configs_are_normalised_and_build(kind: str) -> None:
    normalised = validate_config(kind, GOOD[kind])
    assert validate_config(kind, normalised) == normalised
    adapter = build_adapter(kind, "jio", normalised)
    assert adapter.kind == kind
    assert adapter.max_batch == normalised["max_batch"]


def test_defaults_are_filled_in() -> None:
    assert validate_config("http_json", HTTP) == {
        **HTTP,
        "timeout_s": 10,
        "max_batch": 100,
        "accept_without_results": True,
        "previous_secret": None,
        "rotation_ends_at": None,
        "rotation_grace_s": None,
    }
    assert validate_config("file_drop", {"outbox": "/srv/x"}) == {
        "outbox": "/srv/x",
        "max_batch": 500,
        "group_readable": False,
    }
    simulator = validate_config("simulator", {})
    assert simulator["ack_mode"] == "sync"
    assert simulator["max_batch"] == 500


def test_built_adapters_have_the_right_type() -> None:
    assert isinstance(build_adapter("http_json", "jio", HTTP), HttpJsonAdapter)
    assert isinstance(build_adapter("file_drop", "jio", GOOD["file_drop"]), FileDropAdapter)
    assert isinstance(build_adapter("simulator", "jio", {}), SimulatorAdapter)
    pull = build_adapter("pull", "jio", {})
    assert isinstance(pull, PullAdapter) and pull.pushes is False


@pytest.mark.parametrize(
    ("kind", "raw", "fragments"),
    [
        ("http_json", {}, ["url: required", "secret: required"]),
        ("http_json", {**HTTP, "url": "ftp://operator.example/x"}, ["url:", "scheme"]),
        ("http_json", {**HTTP, "url": "not a url"}, ["url:"]),
        ("http_json", {**HTTP, "secret": "hunter2"}, ["secret:", "whsec_"]),
        ("http_json", {**HTTP, "secret": "whsec_%%%"}, ["secret:", "base64"]),
        ("http_json", {**HTTP, "secret": "whsec_c2hvcnQ="}, ["secret:", "24..64 bytes"]),
        ("http_json", {**HTTP, "max_batch": 0}, ["max_batch:", "greater than or equal to 1"]),
        ("http_json", {**HTTP, "max_batch": 1001}, ["max_batch:", "1000"]),
        ("http_json", {**HTTP, "timeout_s": -1}, ["timeout_s:"]),
        ("http_json", {**HTTP, "timeout": 5}, ["timeout: unknown field", "timeout_s"]),
        ("file_drop", {}, ["outbox: required"]),
        ("file_drop", {"outbox": "outbox/jio"}, ["outbox:", "absolute"]),
        ("pull", {"url": "https://x"}, ["url: unknown field"]),
        ("simulator", {"failure_rate": 2}, ["failure_rate:", "less than or equal to 1"]),
        ("simulator", {"ack_mode": "later"}, ["ack_mode:", "'sync' or 'accepted'"]),
        ("simulator", {"latency_ms": -5}, ["latency_ms:"]),
        ("simulator", {"reject_prefixes": [""]}, ["prefixes must not be empty"]),
        (
            "simulator",
            {"outages": [{"start": "2030-01-01T02:00:00Z", "end": "2030-01-01T01:00:00Z"}]},
            ["outages.0:", "end must be after its start"],
        ),
        (
            "simulator",
            {"outages": [{"start": "2030-01-01T00:00:00", "end": "2030-01-01T01:00:00Z"}]},
            ["outages.0.start:", "timezone"],
        ),
    ],
)
def test_bad_configs_name_the_bad_fields(
    kind: str, raw: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(AdapterConfigError) as info:
        validate_config(kind, raw)
    message = str(info.value)
    assert message.startswith(f"invalid {kind} config: ")
    for fragment in fragments:
        assert fragment in message
    with pytest.raises(AdapterConfigError):
        build_adapter(kind, "jio", raw)


def test_config_must_be_an_object() -> None:
    with pytest.raises(AdapterConfigError, match="must be a JSON object, got list"):
        validate_config("pull", [])  # type: ignore[arg-type]


def test_relative_outbox_is_refused_but_absolute_kept(tmp_path: Path) -> None:
    assert validate_config("file_drop", {"outbox": str(tmp_path)})["outbox"] == str(tmp_path)
