"""The request model of a served version, generated from its training schema: column names, types, categories.

A numeric field takes a JSON number (not a string, not a boolean, not NaN or infinity); a categorical field takes
one of the categories seen in training; a field may be null only if the column had missing values in training;
fields the model does not use are ignored. BentoML validates every request against this model before the model
runs, so a bad row is a 400 whose ``detail`` names the field (``loc``: ``["rows", 3, "amount"]``) and the rule
(``msg``) — never a 500. The model also documents the endpoints in the service's OpenAPI page.

Plain pydantic and pandas (no BentoML, no Prefect), so the service, its tests and any client share one set of rules.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from driftline.libs import lazy_module
from driftline.loop.modeling import ColumnSchema, TrainingSchema

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

MAX_ROWS = 10_000

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _categories(column: ColumnSchema) -> tuple[Any, ...]:
    """The allowed values in their JSON form: the schema keeps them as text, the column's dtype says what they were."""
    dtype, values = column.dtype, column.categories
    if dtype.startswith(("int", "uint", "Int", "UInt")):
        return tuple(int(v) for v in values)
    if dtype.startswith(("float", "Float")):
        return tuple(float(v) for v in values)
    if dtype in ("bool", "boolean"):
        return tuple(v == "True" for v in values)
    return tuple(values)


def row_model(schema: TrainingSchema, name: str = "Row") -> type[BaseModel]:
    """The pydantic model of one input row for a training schema."""
    fields: dict[str, Any] = {}
    for column in schema.columns:
        if column.kind == "numeric":
            kind: Any = Number
        else:
            kind = Literal[_categories(column)]
        if column.nullable:
            kind = kind | None
        fields[column.name] = (kind, Field(..., description=f"{column.kind} ({column.dtype} in training)"))
    identifier = re.sub(r"\W", "_", name) or "Row"
    model: type[BaseModel] = create_model(identifier, __config__=ConfigDict(extra="ignore", frozen=True), **fields)
    return model


def to_frame(rows: list[BaseModel] | list[dict[str, Any]], schema: TrainingSchema) -> pd.DataFrame:
    """Validated rows (models, or their ``model_dump()``) as the model's input frame, columns in training order."""
    records = [row if isinstance(row, dict) else row.model_dump() for row in rows]
    return pd.DataFrame(records, columns=schema.names)


def describe_errors(detail: list[dict[str, Any]], limit: int = 10) -> str:
    """A validation error list (pydantic's, as the service returns it) as ``rows[3].amount: rule`` lines."""
    lines = []
    for error in detail[:limit]:
        where = ""
        for part in error.get("loc", []):
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        lines.append(f"{where}: {error.get('msg', error)}")
    more = f"\n(and {len(detail) - limit} more)" if len(detail) > limit else ""
    return "\n".join(lines) + more
