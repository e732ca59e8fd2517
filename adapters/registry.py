"""The adapter kinds an operator can be configured with: their config models and factories."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from adapters.file_drop import FileDropAdapter, FileDropConfig
from adapters.http_json import HttpJsonAdapter, HttpJsonConfig
from adapters.pull import PullAdapter, PullConfig
from adapters.simulator import SimulatorAdapter, SimulatorConfig
from service.ports import OperatorAdapter

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class AdapterConfigError(ValueError):
    """An adapter kind or configuration that cannot be used, with a message for humans."""


class AdapterKind(NamedTuple, Generic[ConfigT]):
    """A config model and the factory that builds an adapter from a validated config."""

    config_model: type[ConfigT]
    factory: Callable[[str, ConfigT], OperatorAdapter]


ADAPTER_KINDS: Mapping[str, AdapterKind[Any]] = {
    "http_json": AdapterKind(HttpJsonConfig, HttpJsonAdapter),
    "file_drop": AdapterKind(FileDropConfig, FileDropAdapter),
    "pull": AdapterKind(PullConfig, PullAdapter),
    "simulator": AdapterKind(SimulatorConfig, SimulatorAdapter),
}


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        valid = ", ".join(model.model_fields)
        return f"{field}: unknown field (valid fields: {valid})"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}"


def _lookup(kind: str) -> AdapterKind[Any]:
    try:
        return ADAPTER_KINDS[kind]
    except KeyError:
        valid = ", ".join(sorted(ADAPTER_KINDS))
        raise AdapterConfigError(f"unknown adapter kind {kind!r}; valid kinds: {valid}") from None


def _parse(kind: str, raw: object) -> BaseModel:
    entry = _lookup(kind)
    if not isinstance(raw, Mapping):
        raise AdapterConfigError(f"{kind} config must be a JSON object, got {type(raw).__name__}")
    try:
        parsed: BaseModel = entry.config_model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, entry.config_model) for e in exc.errors())
        raise AdapterConfigError(f"invalid {kind} config: {problems}") from None
    return parsed


def validate_config(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Return `raw` checked and normalised (defaults filled in), or raise AdapterConfigError."""
    return _parse(kind, raw).model_dump(mode="json")


def build_adapter(kind: str, operator_code: str, config: dict[str, Any]) -> OperatorAdapter:
    """Build the adapter for one operator from its stored kind and config."""
    parsed = _parse(kind, config)
    adapter: OperatorAdapter = ADAPTER_KINDS[kind].factory(operator_code, parsed)
    return adapter
