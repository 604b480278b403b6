"""The directory's SCIM routes document what they send: a SCIM error (400
``invalidValue``/``invalidSyntax``) for input they refuse, never FastAPI's
default 422, which ``errors.ScimRoute`` turns into a 400 before it is sent
(tests/integration/test_directory_scim.py sends such requests)."""

from __future__ import annotations

from tests.support.openapi_matrix import documents


def scim_operations() -> list[tuple[str, str, dict]]:
    doc = documents()["directory"]
    return [(m.upper(), p, op) for p, item in doc["paths"].items() if p.startswith("/v2/") for m, op in item.items()]


def test_no_scim_operation_documents_a_422() -> None:
    assert len(scim_operations()) >= 10
    assert [(m, p) for m, p, op in scim_operations() if "422" in op["responses"]] == []


def test_a_scim_operation_taking_input_documents_its_400_as_a_scim_error() -> None:
    for method, path, op in scim_operations():
        if op.get("parameters") or "requestBody" in op:
            answer = op["responses"]["400"]["content"]["application/scim+json"]["schema"]
            assert answer["required"] == ["schemas", "status"], (method, path)


def test_the_problem_routes_keep_their_422() -> None:
    doc = documents()["directory"]
    assert "422" in doc["paths"]["/v1/people/{person_id}:erase"]["post"]["responses"]
