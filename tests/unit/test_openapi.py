"""The OpenAPI document built from operations and pydantic models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import BaseModel, Field, computed_field
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.http.openapi import (
    PROBLEM_MEDIA_TYPE,
    Operation,
    build_openapi,
    openapi_path,
    operation_id,
)


class Target(BaseModel):
    """A sample nested model."""

    kind: Literal["msisdn", "imei"]
    value: str = Field(description="As submitted.")


class Legal(BaseModel):
    """A sample model nested one level deeper."""

    basis: str
    issued_at: datetime


class Order(BaseModel):
    """A sample model used as both request and response, with a computed field."""

    case_ref: str
    targets: list[Target]
    legal: Legal | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def target_count(self) -> int:
        """How many targets the order names."""
        return len(self.targets)


class OrderPage(BaseModel):
    """A sample page of responses."""

    items: list[Order]
    next_after: int | None = None


class OrderQuery(BaseModel):
    """Sample query parameters."""

    status: Literal["open", "closed"] | None = Field(None, description="Only orders in this state.")
    since: datetime | None = Field(None, alias="from", description="Created at or after.")
    limit: int = Field(50, ge=1, le=500)
    unit: str


def sample_operations() -> list[Operation]:
    """Return a small API that uses every feature of Operation."""
    return [
        Operation(
            "POST",
            "/v1/orders",
            "Submit an order",
            "orders",
            request_model=Order,
            response_model=Order,
            status=201,
            errors=(409, 422),
            headers=(("Idempotency-Key", "Makes a retried submission safe."),),
        ),
        Operation(
            "GET",
            "/v1/orders",
            "List orders",
            "orders",
            response_model=OrderPage,
            query_model=OrderQuery,
        ),
        Operation("GET", r"/v1/orders/{id:\d+}", "Get an order", "orders", response_model=Order),
        Operation("GET", "/v1/orders.csv", "Export orders", "exports", content_type="text/csv"),
        Operation("DELETE", "/v1/orders/{id}", "Cancel", "orders", status=204, errors=(404,)),
        Operation("GET", "/healthz", "Health", "ops", auth=False),
    ]


@pytest.fixture
def doc() -> dict[str, Any]:
    """A document built from the sample operations."""
    return build_openapi(
        sample_operations(), title="sample", version="1.2.3", description="A sample API."
    )


def refs_in(node: Any) -> Iterator[str]:
    """Yield every `$ref` value anywhere in a JSON-like tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "sample", "version": "1.2.3", "description": "A sample API."}
    assert [tag["name"] for tag in doc["tags"]] == ["orders", "exports", "ops"]


def test_nested_models_are_hoisted_into_components(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert {"Target", "Legal", "OrderPage", "Problem", "ProblemFieldError"} <= set(schemas)
    assert '"$defs"' not in repr(doc).replace("'", '"')
    for ref in refs_in(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas


def test_requests_use_validation_and_responses_serialization_schemas(doc: dict[str, Any]) -> None:
    post = doc["paths"]["/v1/orders"]["post"]
    request_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    response_ref = post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    schemas = doc["components"]["schemas"]
    request_name = request_ref.rsplit("/", 1)[-1]
    response_name = response_ref.rsplit("/", 1)[-1]
    assert "target_count" not in schemas[request_name]["properties"]
    assert "target_count" in schemas[response_name]["properties"]
    assert post["requestBody"]["required"] is True


def test_error_responses_are_problem_json(doc: dict[str, Any]) -> None:
    for path_item in doc["paths"].values():
        for op in path_item.values():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert response["content"] == {
                        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    post = doc["paths"]["/v1/orders"]["post"]
    # an operation with a body can also answer 400, 408 and 413; an authenticated one 503
    assert sorted(post["responses"]) == ["201", "400", "401", "408", "409", "413", "422", "503"]
    assert "401" not in doc["paths"]["/healthz"]["get"]["responses"]


def test_problem_schema_accepts_a_validation_problem(doc: dict[str, Any]) -> None:
    registry: Registry[Any] = Registry().with_resource(
        "urn:doc", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    schema = {"$ref": "urn:doc#/components/schemas/Problem"}
    validator = Draft202012Validator(schema, registry=registry)
    problem = {
        "type": "https://fraudblock.example/problems/validation",
        "title": "Invalid request",
        "status": 422,
        "detail": "1 target is invalid.",
        "errors": [{"field": "targets.0.value", "loc": ["targets", 0, "value"], "message": "bad"}],
    }
    assert list(validator.iter_errors(problem)) == []
    assert list(validator.iter_errors({"title": "x", "status": 422, "errors": [{}]})) != []


def test_query_model_fields_become_query_parameters(doc: dict[str, Any]) -> None:
    params = {p["name"]: p for p in doc["paths"]["/v1/orders"]["get"]["parameters"]}
    assert set(params) == {"status", "from", "limit", "unit"}
    assert all(p["in"] == "query" for p in params.values())
    assert params["status"]["description"] == "Only orders in this state."
    assert params["from"]["description"] == "Created at or after."
    assert params["limit"]["schema"]["maximum"] == 500
    assert params["unit"]["required"] is True
    assert params["limit"]["required"] is False


def test_path_and_header_parameters(doc: dict[str, Any]) -> None:
    get_one = doc["paths"]["/v1/orders/{id}"]["get"]
    assert get_one["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    header = doc["paths"]["/v1/orders"]["post"]["parameters"][0]
    assert (header["name"], header["in"], header["required"]) == (
        "Idempotency-Key",
        "header",
        False,
    )


def test_security_and_content_types(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["paths"]["/v1/orders"]["get"]["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    csv = doc["paths"]["/v1/orders.csv"]["get"]["responses"]["200"]
    assert csv["content"] == {"text/csv": {"schema": {"type": "string"}}}
    assert "content" not in doc["paths"]["/v1/orders/{id}"]["delete"]["responses"]["204"]


def test_operation_ids_are_derived_and_unique(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert operation_id("GET", r"/v1/block-requests/{id:\d+}") == "get_v1_block_requests_by_id"
    assert operation_id("POST", "/v1/acks/batch") == "post_v1_acks_batch"
    assert openapi_path(r"/v1/x/{id:\d+}/y/{name}") == "/v1/x/{id}/y/{name}"


def test_declared_path_params_must_match_the_path() -> None:
    bad = Operation("GET", "/v1/orders/{id}", "Get", "orders", path_params=("order_id",))
    with pytest.raises(ValueError, match="path_params"):
        build_openapi([bad], title="t", version="1")


def test_duplicate_operations_are_refused() -> None:
    op = Operation("GET", "/v1/orders", "List", "orders")
    with pytest.raises(ValueError, match="duplicate"):
        build_openapi([op, op], title="t", version="1")


def test_empty_api_is_valid() -> None:
    doc = build_openapi([], title="t", version="1")
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert set(doc["components"]["schemas"]) == {"Problem", "ProblemFieldError"}
