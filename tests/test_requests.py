"""Prediction requests are checked against the training schema, naming the row, the field and the rule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from driftline.requests import RequestError, to_frame

SCHEMA: dict[str, Any] = {
    "target": "y",
    "classes": [0, 1],
    "columns": [
        {"name": "amount", "kind": "numeric", "dtype": "float64", "nullable": False, "categories": []},
        {"name": "age", "kind": "numeric", "dtype": "float64", "nullable": True, "categories": []},
        {"name": "country", "kind": "categorical", "dtype": "str", "nullable": False, "categories": ["DE", "US"]},
    ],
}
GOOD = {"amount": 12.5, "age": None, "country": "US", "extra": "ignored"}


def test_valid_rows_become_the_model_input_in_training_order() -> None:
    frame = to_frame([GOOD, {"amount": 3, "age": 40, "country": "DE"}], SCHEMA)
    assert list(frame.columns) == ["amount", "age", "country"]
    assert frame["amount"].tolist() == [12.5, 3]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"age": 1, "country": "US"}, "rows[0].amount: required field is missing"),
        ({**GOOD, "amount": "12"}, "rows[0].amount: must be a number (got str '12')"),
        ({**GOOD, "amount": True}, "rows[0].amount: must be a number"),
        ({**GOOD, "amount": math.nan}, "rows[0].amount: must not be null or NaN"),
        ({**GOOD, "amount": math.inf}, "rows[0].amount: must be finite"),
        ({**GOOD, "country": "FR"}, "rows[0].country: unknown category 'FR' (known: DE, US)"),
        ({**GOOD, "country": None}, "rows[0].country: must not be null"),
    ],
)
def test_a_bad_row_names_the_field_and_the_rule(row: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as raised:
        to_frame([GOOD, row][1:], SCHEMA)
    assert message in str(raised.value)


def test_nullable_fields_accept_missing_values() -> None:
    assert to_frame([{**GOOD, "age": math.nan}], SCHEMA)["age"].isna().all()


def test_empty_oversized_and_malformed_requests() -> None:
    with pytest.raises(RequestError, match="non-empty list"):
        to_frame([], SCHEMA)
    with pytest.raises(RequestError, match=r"at most 3 rows per request \(got 4\)"):
        to_frame([GOOD] * 4, SCHEMA, max_rows=3)
    with pytest.raises(RequestError, match=r"rows\[1\]: must be an object"):
        to_frame([GOOD, [1, 2]], SCHEMA)  # type: ignore[list-item]


def test_every_broken_rule_is_reported_up_to_ten() -> None:
    with pytest.raises(RequestError) as raised:
        to_frame([{"country": "XX"}] * 20, SCHEMA)
    text = str(raised.value)
    assert "first 10 shown" in text and text.count("\n") == 10
