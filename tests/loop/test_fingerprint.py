"""A batch's fingerprint covers its column names: a renamed column is another batch; the same frame is the same."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

from driftline.examples.fraud import generate
from driftline.loop.data import fingerprint
from tests.conftest import REPO

FRAUD_COLUMNS = list(generate(1, seed=0).columns)


@pytest.mark.parametrize("column", FRAUD_COLUMNS)
def test_renaming_any_column_changes_the_fingerprint(column: str) -> None:
    frame = generate(200, seed=5)
    renamed = frame.rename(columns={column: f"{column}_v2"})
    assert renamed[f"{column}_v2"].equals(frame[column])  # the cells and dtypes are untouched: only the name differs
    assert fingerprint(renamed) != fingerprint(frame)


def test_swapping_the_names_of_two_alike_columns_changes_the_fingerprint() -> None:
    frame = generate(200, seed=5)
    assert frame["amount"].dtype == frame["distance_km"].dtype
    swapped = frame.rename(columns={"amount": "distance_km", "distance_km": "amount"})
    assert fingerprint(swapped) != fingerprint(frame)


def test_reordering_the_columns_changes_the_fingerprint() -> None:
    frame = generate(200, seed=5)
    assert fingerprint(frame[list(reversed(frame.columns))]) != fingerprint(frame)


@pytest.mark.parametrize(
    ("label", "text"),
    [(1, "1"), (1.5, "1.5"), (True, "True"), (("amount", "eur"), "('amount', 'eur')")],
)
def test_a_label_renamed_to_its_own_text_changes_the_fingerprint(label: Any, text: str) -> None:
    # These hashed alike while labels were hashed as str(label): renaming 1 to "1" kept the fingerprint.
    frame = pd.DataFrame({"id": [1, 2, 3]})
    frame[label] = [0.5, 1.5, 2.5]
    assert fingerprint(frame.rename(columns={label: text})) != fingerprint(frame)


def test_the_same_frame_keeps_its_fingerprint_in_a_copy_and_a_rebuild() -> None:
    frame = generate(300, seed=6)
    rebuilt = pd.DataFrame({column: frame[column].to_numpy() for column in frame.columns})
    assert fingerprint(frame.copy()) == fingerprint(frame) == fingerprint(rebuilt)


def test_the_fingerprint_is_the_same_in_another_process_with_labels_of_any_type() -> None:
    code = (
        "import pandas as pd\n"
        "from driftline.loop.data import fingerprint\n"
        "frame = pd.DataFrame({'name': ['a', 'b'], 1: [1.0, 2.0], 2.5: [3, 4], ('x', 'y'): [True, False]})\n"
        "print(fingerprint(frame))\n"
    )
    # A different string-hash seed in the child: neither the cells nor the labels may depend on Python's hash().
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, env=env, timeout=120
    )
    frame = pd.DataFrame({"name": ["a", "b"], 1: [1.0, 2.0], 2.5: [3, 4], ("x", "y"): [True, False]})
    assert child.stdout.strip() == fingerprint(frame)


def test_fingerprints_of_frames_with_named_columns_did_not_change() -> None:
    # Pinned before the fix: batches whose columns are names (every file, SQL table and bundled dataset) keep the
    # fingerprints that registries, lineage and quarantine folders already hold.
    frame = pd.DataFrame(
        {
            "amount": [12.5, 3.0, 7.25],
            "country": pd.Series(["DE", "US", "BR"], dtype="str"),
            "hour": [1, 23, 0],
        }
    )
    assert fingerprint(frame) == "484241b1a8dc7f90af0023541b33d4600e9b7dc2c167a5cd1ea3be2fbac4f6ef"
    assert fingerprint(generate(500, seed=3)) == "6db76831209d15fd2884301f8e54b68dfc02a5c739141bbedcb72c63db07999a"
