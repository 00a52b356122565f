"""An annotation's ``shape``: the bounds every shape keeps, and the rules of the kinds pages draw.

Every shape is a JSON object within the bounds of ``classroom.domain.limits``
(size, nesting, points). A shape whose ``type`` is one the web client draws
(``circle``, ``stroke``, ``text``) is held to that kind's exact fields too, so a
mark one client made is a mark every other client can draw: coordinates are
fractions (0..1) of the screen's logical canvas, which has the same 16:10 aspect
ratio on every device, so a mark stays on the words it was put on. A shape of
another ``type`` (or none) keeps only the generic bounds, as before the kinds
were known: older clients that draw their own shapes keep working, and the pages
ignore what they cannot draw.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from classroom.domain.limits import SHAPE_MAX_BYTES, SHAPE_MAX_DEPTH, SHAPE_MAX_POINTS

COLORS = ("red", "blue", "green", "orange", "purple", "black")
"""The colours a known shape may have: the pages' palette, readable on every screen."""

STROKE_POINTS = (2, 500)
"""How many points a ``stroke`` has: a line needs two; a simplified scribble a few dozen."""


def shape_size(shape: Any) -> int | None:
    """Bytes of ``shape`` as compact JSON; None when it is not a JSON object."""
    if not isinstance(shape, dict):
        return None
    try:
        return len(orjson.dumps(shape))
    except (orjson.JSONEncodeError, TypeError):
        return None


def shape_depth_refusal(shape: Any) -> str | None:
    """Why ``shape`` nests too deep (``SHAPE_MAX_DEPTH``, the shape itself at level 1), or None.

    Walks without recursion and stops at the first container past the bound.
    """
    stack: list[tuple[Any, int]] = [(shape, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > SHAPE_MAX_DEPTH:
            return f"shape is nested more than {SHAPE_MAX_DEPTH} levels deep"
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return None


def shape_refusal(shape: Any) -> str | None:
    """Why a shape may not be kept (not JSON, too deep, too large, too many points), or None."""
    if isinstance(shape, dict):
        refusal = shape_depth_refusal(shape)
        if refusal is not None:
            return refusal
    size = shape_size(shape)
    if size is None:
        return "shape must be a JSON object"
    if size > SHAPE_MAX_BYTES:
        return f"shape is larger than {SHAPE_MAX_BYTES} bytes of JSON"
    points = shape.get("points")
    if isinstance(points, list) and len(points) > SHAPE_MAX_POINTS:
        return f"shape has more than {SHAPE_MAX_POINTS} points"
    return None


# -- the kinds the pages draw ----------------------------------------------------------------

Fraction = (
    Annotated[StrictInt, Field(ge=0, le=1)]
    | Annotated[StrictFloat, Field(ge=0, le=1, allow_inf_nan=False)]
)
"""A coordinate: a fraction of the canvas's width (x) or height (y)."""
Color = Literal["red", "blue", "green", "orange", "purple", "black"]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CircleShape(_Shape):
    """A circle around something: centre and radius, as fractions of the canvas."""

    type: Literal["circle"]
    x: Fraction
    y: Fraction
    r: Annotated[StrictFloat, Field(ge=0.005, le=0.5, allow_inf_nan=False)]
    color: Color | None = None


class StrokeShape(_Shape):
    """A freehand line: its points in order, each ``[x, y]``."""

    type: Literal["stroke"]
    points: Annotated[list[tuple[Fraction, Fraction]],
                      Field(min_length=STROKE_POINTS[0], max_length=STROKE_POINTS[1])]
    color: Color | None = None
    width: (Annotated[StrictInt, Field(ge=1, le=12)]
            | Annotated[StrictFloat, Field(ge=1, le=12, allow_inf_nan=False)] | None) = None


class TextShape(_Shape):
    """A short text put on the screen, its start at ``x``, ``y``."""

    type: Literal["text"]
    x: Fraction
    y: Fraction
    text: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    color: Color | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("blank")
        return value


KNOWN_SHAPES: dict[str, type[_Shape]] = {"circle": CircleShape, "stroke": StrokeShape,
                                         "text": TextShape}

_RULES = {
    "circle": "x and y in 0..1, r in 0.005..0.5",
    "stroke": (f"points: {STROKE_POINTS[0]} to {STROKE_POINTS[1]} [x, y] pairs in 0..1, "
               "width in 1..12"),
    "text": "x and y in 0..1, text of 1 to 200 characters, not blank",
}


def kind_refusal(shape: dict[str, Any]) -> str | None:
    """Why a shape of a known ``type`` breaks that kind's rules, or None (also for other types).

    The message names the kind, the field and the rule, never a value.
    """
    kind = shape.get("type")
    if not isinstance(kind, str) or kind not in KNOWN_SHAPES:
        return None
    model = KNOWN_SHAPES[kind]
    try:
        model.model_validate(shape)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        field = error["loc"][0] if error["loc"] else None
        if error["type"] == "extra_forbidden":
            return f"a {kind} shape takes only type, {_fields(model)}"
        if field == "color":
            return f"shape color must be one of {', '.join(COLORS)}"
        return f"a {kind} shape needs {_RULES[kind]} (field {field!r})"
    return None


def _fields(model: type[_Shape]) -> str:
    return ", ".join(name for name in model.model_fields if name != "type")


def shape_json_schema() -> dict[str, Any]:
    """The JSON Schema of a ``shape``: one of the known kinds, or any other object.

    For the AsyncAPI document: it lists the kinds' fields for client authors, while
    any object still matches (the generic bounds are in docs/protocol.md).
    """
    kinds = [model.model_json_schema() for model in KNOWN_SHAPES.values()]
    for schema in kinds:
        schema.pop("title", None)
    other = {"type": "object", "propertyNames": {"type": "string"},
             "description": "a shape of another type: only the generic bounds apply"}
    return {"anyOf": [*kinds, other],
            "description": "An annotation's shape; coordinates are fractions (0..1) of the "
                           "screen's 16:10 logical canvas."}
