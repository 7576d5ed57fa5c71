"""W1's anchor: the hand-written script a user would write instead of the train flow, with the same library calls.

    uv run python bench/plain_train.py --data b.parquet --suite expectations/fraud.json --spec deployments/fraud.toml

Read Parquet, validate with Great Expectations 1.x (the same suite), profile with whylogs' default resolver (the
same columns the flow profiles: the spec's, datetimes left out), fit the same scikit-learn pipeline with the same
XGBoost parameters (XGBoost's own default thread count), score ROC AUC on a 20% holdout, save to BentoML's model
store. No Prefect, no registry, no gate, no servability check. Prints one JSON line with the ROC AUC and the tag.
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--profile-out", type=Path, default=None, help="where to write the profile (default: none)")
    args = parser.parse_args()
    for name, value in (
        ("WHYLOGS_NO_ANALYTICS", "True"),
        ("BENTOML_DO_NOT_TRACK", "True"),
        ("GX_ANALYTICS_ENABLED", "False"),
    ):
        os.environ.setdefault(name, value)
    spec = tomllib.loads(args.spec.read_text())
    numeric, categorical = spec["features"]["numeric"], spec["features"]["categorical"]
    target = spec["target"]

    import pandas as pd

    frame = pd.read_parquet(args.data)

    # Great Expectations 1.x, the same suite.
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite

    raw = json.loads(args.suite.read_text())
    suite = ExpectationSuite(name=raw["name"], expectations=raw["expectations"])
    context = gx.get_context(mode="ephemeral")
    batch_definition = (
        context.data_sources.add_pandas("plain")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("all")
    )
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    if not result.success:
        raise SystemExit(f"{args.data}: fails {args.suite}")

    # whylogs' default profile of the columns the model uses (numpy 2 needs whylogs' old aliases back).
    import numpy as np

    for alias, value in (("unicode_", np.str_), ("string_", np.bytes_), ("float_", np.float64)):
        if alias not in np.__dict__:
            setattr(np, alias, value)
    import whylogs as why

    columns = [*numeric, *categorical, target]
    view = why.log(pandas=frame[columns]).view()
    if args.profile_out is not None:
        args.profile_out.write_bytes(view.serialize())

    # The same pipeline and XGBoost parameters as the spec.
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from xgboost import XGBClassifier

    split = spec["split"]
    train, holdout = train_test_split(frame, test_size=split["holdout_fraction"], random_state=split["seed"])
    features = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    estimator = XGBClassifier(**spec["estimator"]["params"], random_state=spec["estimator"]["seed"])
    model = Pipeline([("features", features), ("model", estimator)])
    model.fit(train[numeric + categorical], train[target])
    auc = roc_auc_score(holdout[target], model.predict_proba(holdout[numeric + categorical])[:, 1])

    import bentoml

    saved = bentoml.sklearn.save_model(spec["name"], model, labels={"task": spec["task"]}, metadata={"roc_auc": auc})
    print(json.dumps({"roc_auc": auc, "tag": str(saved.tag)}))


if __name__ == "__main__":
    main()
