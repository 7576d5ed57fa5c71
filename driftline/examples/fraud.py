"""A seeded synthetic card-fraud dataset: numeric, categorical and timestamp columns, a binary target.

``--drift`` shifts the distributions (bigger amounts, more online spending, a different country mix) and moves the
fraud pattern with them; ``--corrupt`` breaks rows the way a bad upstream export does (negative amounts, missing
categories, unknown country codes, impossible hours), for the suite to catch.

    python -m driftline.examples.fraud --rows 5000 --seed 1 --out data/fraud/batch-0001.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

CATEGORIES = ("grocery", "restaurants", "fuel", "travel", "electronics", "online")
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "NG")
_CATEGORY_SHARES = (0.30, 0.20, 0.15, 0.10, 0.10, 0.15)
_DRIFTED_CATEGORY_SHARES = (0.20, 0.15, 0.10, 0.10, 0.15, 0.30)
_COUNTRY_SHARES = (0.55, 0.15, 0.10, 0.10, 0.06, 0.04)
_DRIFTED_COUNTRY_SHARES = (0.40, 0.15, 0.10, 0.10, 0.15, 0.10)
_CATEGORY_RISK = {"grocery": -0.6, "restaurants": -0.4, "fuel": -0.2, "travel": 0.5, "electronics": 0.9, "online": 1.1}
_COUNTRY_RISK = {"US": -0.3, "GB": -0.2, "DE": -0.2, "FR": -0.1, "BR": 0.7, "NG": 1.0}


def generate(
    rows: int = 5000,
    seed: int = 0,
    *,
    drift: bool = False,
    corrupt: bool = False,
    start: str = "2026-01-01T00:00:00",
) -> pd.DataFrame:
    """Generate ``rows`` transactions; the same arguments always give the same frame."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(mean=3.6 + (0.5 if drift else 0.0), sigma=1.0, size=rows), 2)
    category = rng.choice(CATEGORIES, size=rows, p=_DRIFTED_CATEGORY_SHARES if drift else _CATEGORY_SHARES)
    country = rng.choice(COUNTRIES, size=rows, p=_DRIFTED_COUNTRY_SHARES if drift else _COUNTRY_SHARES)
    card_present = (rng.random(rows) < (0.45 if drift else 0.65)).astype("int64")
    hour = rng.integers(0, 24, size=rows)
    distance_km = np.round(rng.exponential(scale=25.0, size=rows), 2)
    tx_count_24h = rng.poisson(lam=3.0, size=rows)
    seconds = np.sort(rng.integers(0, 86_400, size=rows))
    event_time = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")

    night = ((hour < 6) | (hour >= 23)).astype(float)
    logit = -6.3 + 2.0 * (
        0.9 * np.log1p(amount / 100.0)
        + np.vectorize(_CATEGORY_RISK.get)(category)
        + np.vectorize(_COUNTRY_RISK.get)(country)
        - 1.0 * card_present
        + 0.8 * night
        + 0.015 * distance_km
        + 0.15 * tx_count_24h
    )
    is_fraud = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")

    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{seed:04d}-{i:07d}" for i in range(rows)],
            "amount": amount,
            "merchant_category": category,
            "country": country,
            "card_present": card_present,
            "hour": hour.astype("int64"),
            "distance_km": distance_km,
            "tx_count_24h": tx_count_24h.astype("int64"),
            "event_time": event_time,
            "is_fraud": is_fraud,
        }
    )
    if corrupt:
        frame = _corrupt(frame, rng)
    return frame


def _corrupt(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    frame = frame.copy()
    broken = max(1, len(frame) // 20)
    frame.loc[rng.choice(len(frame), broken, replace=False), "amount"] = -frame["amount"].abs().median()
    frame.loc[rng.choice(len(frame), broken, replace=False), "merchant_category"] = None
    frame.loc[rng.choice(len(frame), broken, replace=False), "country"] = "XX"
    frame.loc[rng.choice(len(frame), broken, replace=False), "hour"] = 27
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift", action="store_true", help="shift the distributions")
    parser.add_argument("--corrupt", action="store_true", help="break some rows for validation to catch")
    parser.add_argument("--start", default="2026-01-01T00:00:00", help="first event time (ISO timestamp)")
    parser.add_argument("--out", type=Path, required=True, help="a .parquet or .csv path")
    args = parser.parse_args(argv)
    frame = generate(args.rows, args.seed, drift=args.drift, corrupt=args.corrupt, start=args.start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"{args.out}: {len(frame)} rows, fraud rate {frame['is_fraud'].mean():.3f}")


if __name__ == "__main__":
    main()
