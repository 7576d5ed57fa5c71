"""The request model generated from a training schema: a bad row names the field and the rule."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from driftline.loop.modeling import TrainingSchema
from driftline.serving.requests import describe_errors, row_model, to_frame

SAVED: dict[str, Any] = {
    "target": "y",
    "classes": [0, 1],
    "columns": [
        {"name": "amount", "kind": "numeric", "dtype": "float64", "nullable": False, "categories": []},
        {"name": "age", "kind": "numeric", "dtype": "float64", "nullable": True, "categories": []},
        {"name": "country", "kind": "categorical", "dtype": "str", "nullable": False, "categories": ["DE", "US"]},
        {"name": "tier", "kind": "categorical", "dtype": "int64", "nullable": False, "categories": ["1", "2"]},
    ],
}
SCHEMA = TrainingSchema.from_dict(SAVED)
GOOD = {"amount": 12.5, "age": None, "country": "US", "tier": 2, "extra": "ignored"}
Row = row_model(SCHEMA, "test row")


class Request(BaseModel):
    rows: Annotated[list[Row], Field(min_length=1, max_length=3)]  # type: ignore[valid-type]


def _errors(payload: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as raised:
        Request.model_validate_json(json.dumps(payload))
    return describe_errors(raised.value.errors(include_context=False, include_input=False))


def test_valid_rows_become_the_model_input_in_training_order() -> None:
    request = Request.model_validate({"rows": [GOOD, {"amount": 3, "age": 40, "country": "DE", "tier": 1}]})
    frame = to_frame(request.rows, SCHEMA)
    assert list(frame.columns) == ["amount", "age", "country", "tier"]
    assert frame["amount"].tolist() == [12.5, 3.0]
    assert frame["age"].isna().tolist() == [True, False]
    assert frame["tier"].tolist() == [2, 1]  # categories keep their training type (int here), not the schema's text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": "absent"}, "rows[0].amount: Field required"),
        ({"amount": "12"}, "rows[0].amount: Input should be a valid number"),
        ({"amount": True}, "rows[0].amount: Input should be a valid number"),
        ({"amount": None}, "rows[0].amount: Input should be a valid number"),
        ({"country": "FR"}, "rows[0].country: Input should be 'DE' or 'US'"),
        ({"country": None}, "rows[0].country: Input should be 'DE' or 'US'"),
        ({"tier": 3}, "rows[0].tier: Input should be 1 or 2"),
    ],
)
def test_a_bad_row_names_the_field_and_the_rule(change: dict[str, Any], message: str) -> None:
    row = {**GOOD, **change}
    if change.get("amount") == "absent":
        del row["amount"]
    assert message in _errors({"rows": [row]})


def test_nan_and_infinity_are_refused_even_where_null_is_allowed() -> None:
    with pytest.raises(ValidationError) as raised:
        Request.model_validate({"rows": [{**GOOD, "amount": math.inf, "age": math.nan}]})
    text = describe_errors(raised.value.errors())
    assert "rows[0].amount: Input should be a finite number" in text
    assert "rows[0].age: Input should be a finite number" in text


def test_empty_and_oversized_requests() -> None:
    assert "rows: List should have at least 1 item" in _errors({"rows": []})
    assert "rows: List should have at most 3 items" in _errors({"rows": [GOOD] * 4})


def test_every_broken_rule_is_reported_up_to_the_limit() -> None:
    text = _errors({"rows": [{"country": "XX"}] * 3})
    assert text.count("\n") == 10 and text.endswith("(and 2 more)")  # 3 rows x 4 problems, 10 shown


def test_a_saved_schema_round_trips() -> None:
    assert SCHEMA.as_dict() == SAVED
    assert TrainingSchema.from_dict(SCHEMA.as_dict()) == SCHEMA
    assert SCHEMA.names == ["amount", "age", "country", "tier"] and SCHEMA.classes == (0, 1)


def test_a_schema_that_is_not_one_names_what_it_lacks() -> None:
    from driftline.errors import StoreError

    with pytest.raises(StoreError, match="training schema: expected the keys target, classes and columns"):
        TrainingSchema.from_dict({"target": "y", "columns": [{"name": "amount"}]})


def test_the_schema_of_a_model_saved_by_the_old_layout_parses() -> None:
    import bentoml

    from driftline.examples.fraud import generate

    fixtures = Path(__file__).parents[1] / "fixtures"
    tag = json.loads((fixtures / "legacy-fraud.json").read_text())["tag"]
    try:
        saved = bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        saved = bentoml.models.import_model(str(fixtures / "legacy-fraud.bentomodel"))
    stored = saved.custom_objects["schema"]
    schema = TrainingSchema.from_dict(stored)
    assert schema.as_dict() == stored and schema.target == "is_fraud" and schema.classes == (0, 1)
    rows = generate(3, seed=4)[schema.names].to_dict("records")
    model = row_model(schema, "legacy")
    assert to_frame([model.model_validate(row) for row in rows], schema).columns.tolist() == schema.names
