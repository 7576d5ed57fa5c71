"""Check prediction requests against a model's training schema: a bad row is a 4xx naming the field and the rule.

Plain Python (no BentoML, no Prefect), so the service, its tests and any client share one set of rules.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from driftline.errors import DataError

MAX_ROWS = 10_000


class RequestError(DataError):
    """A prediction request breaks the training schema; the message names the row, the field and the rule."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def to_frame(rows: list[dict[str, Any]], schema: dict[str, Any], max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Validate rows against the schema (``TrainingSchema.as_dict()``) and return them as the model's input frame.

    Fields the model does not use are ignored. Every broken rule is reported, up to ten, in one error.
    """
    if not isinstance(rows, list) or not rows:
        raise RequestError("rows: must be a non-empty list of objects")
    if len(rows) > max_rows:
        raise RequestError(f"rows: at most {max_rows} rows per request (got {len(rows)})")
    problems: list[str] = []
    columns = schema["columns"]
    allowed = {c["name"]: set(c["categories"]) for c in columns if c["kind"] == "categorical"}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(f"rows[{index}]: must be an object of field: value (got {type(row).__name__})")
            continue
        for column in columns:
            name = column["name"]
            where = f"rows[{index}].{name}"
            if name not in row:
                problems.append(f"{where}: required field is missing")
                continue
            value = row[name]
            if _missing(value):
                if not column["nullable"]:
                    problems.append(f"{where}: must not be null or NaN (the model was trained without missing values)")
                continue
            if column["kind"] == "numeric":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    problems.append(f"{where}: must be a number (got {type(value).__name__} {value!r})")
                elif math.isinf(value):
                    problems.append(f"{where}: must be finite (got {value!r})")
            elif str(value) not in allowed[name]:
                known = ", ".join(sorted(allowed[name])[:20])
                problems.append(f"{where}: unknown category {value!r} (known: {known})")
        if len(problems) >= 10:
            break
    if problems:
        more = " (first 10 shown)" if len(problems) >= 10 else ""
        raise RequestError("invalid request" + more + ":\n" + "\n".join(problems[:10]))
    return pd.DataFrame([{c["name"]: row.get(c["name"]) for c in columns} for row in rows])
