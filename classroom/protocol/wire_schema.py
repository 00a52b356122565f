"""How the wire's pydantic models become JSON Schema for the AsyncAPI document.

One rule differs from pydantic's default: in a model that refuses unknown fields
(event payloads, every server frame), an optional field is *left out*, never sent
as ``null``, and a published ``null`` is refused (``event field 'score' must not be
null``). Such a field's schema is its value's type alone, without ``null`` and
without ``"default": null``. Commands ignore unknown fields and accept ``null`` for
an optional field (``"since": null`` is no ``since``), so theirs stay nullable.
A field that is always present and may be ``null`` (``state.screen``) keeps ``null``.

And a mapping (an annotation's ``shape``) says that its keys are strings, which JSON
takes for granted but MessagePack does not: the server refuses a map keyed by
``bin`` or numbers there (a command's unknown fields, whatever their keys, are ignored).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

REF_TEMPLATE = "#/components/schemas/{model}"


class WireJsonSchema(GenerateJsonSchema):
    """pydantic's generator, with optional fields of closed models never ``null``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._closed: list[bool] = []

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        """Note whether the model being generated refuses unknown fields."""
        self._closed.append(schema["cls"].model_config.get("extra") == "forbid")
        try:
            return super().model_schema(schema)
        finally:
            self._closed.pop()

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        """An optional field of a closed model: its type alone (absent, never ``null``)."""
        if not (self._closed and self._closed[-1] and schema.get("default", ...) is None):
            return super().default_schema(schema)
        inner = schema["schema"]
        if inner["type"] == "nullable":
            inner = inner["schema"]
        return self.generate_inner(inner)


    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        """A mapping: pydantic's schema, with keys that are strings."""
        json_schema = super().dict_schema(schema)
        json_schema.setdefault("propertyNames", {"type": "string"})
        return json_schema


def wire_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """The JSON Schema of each model (and of the models they use), keyed by model name."""
    _, top = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF_TEMPLATE, schema_generator=WireJsonSchema,
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas
