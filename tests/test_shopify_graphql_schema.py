"""Every GraphQL operation the Shopify connector can send validates against Shopify's Admin
schema (API 2025-01, introspection copied from Shopify/dev-mcp into tests/fixtures/shopify/)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from graphql import (
    NoDeprecatedCustomRule,
    OperationDefinitionNode,
    build_client_schema,
    parse,
    specified_rules,
    validate,
    validate_schema,
)

from connectors.shopify import queries

SCHEMA = Path(__file__).parent / "fixtures/shopify/admin-schema-2025-01.json.gz"


def _operations() -> dict[str, str]:
    """Every public module-level string in queries.py that holds a GraphQL document."""
    found = {}
    for name, value in vars(queries).items():
        if name.startswith("_") or not isinstance(value, str):
            continue
        if value.lstrip().startswith(("query", "mutation", "fragment", "{")):
            document = parse(value)  # a document that does not parse fails here, loudly
            assert any(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            found[name] = value
    return found


def load_schema():
    """Shopify's schema as graphql-core can validate against.

    graphql-core 3.2 follows a newer spec rule that Shopify's published schema breaks in two
    places (an implementation field deprecated while its interface field is not). That rule is
    about the schema's own consistency, not about operations, so after checking those are the
    only complaints the schema is marked as checked.
    """
    with gzip.open(SCHEMA) as handle:
        schema = build_client_schema(json.load(handle)["data"])
    problems = [e.message for e in validate_schema(schema)]
    assert all("must not be deprecated" in p for p in problems), problems
    schema._validation_errors = []
    return schema


@pytest.fixture(scope="module")
def schema():
    return load_schema()


def test_the_connector_has_the_operations_it_needs():
    names = set(_operations())
    assert {"PRODUCT", "CATALOG_PAGE", "METAFIELDS_SET", "INVENTORY_POLICY_UPDATE"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize("name", sorted(_operations()))
def test_operation_validates_against_shopify_admin_schema(schema, name):
    document = parse(_operations()[name])
    # Valid, and using no field or argument Shopify has deprecated.
    errors = validate(schema, document, [*specified_rules, NoDeprecatedCustomRule])
    assert errors == [], [e.message for e in errors]


def test_an_invalid_document_would_be_caught(schema):
    # Guards the check itself: productVariantUpdate no longer exists in the Admin API.
    document = parse(
        "mutation X($input: ProductVariantInput!) { productVariantUpdate(input: $input) { "
        "productVariant { id } } }"
    )
    assert validate(schema, document)
