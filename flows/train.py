"""The training loop: load → validate → profile → train → evaluate → gate → package → servability → promote."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline.errors import DataValidationError
from driftline.loop.gate import GateDecision, Outcome
from driftline.loop.lineage import Lineage, TrainingIdentity
from driftline.loop.training import Packaged, TrainOutcome
from driftline.loop.validation import Validated
from driftline.registry import Champion
from driftline.settings import pause_at, quiet_telemetry
from driftline.spec import ModelSpec, load_spec
from tasks.artifacts import publish_gate, publish_lineage, publish_metrics, publish_validation
from tasks.data import check_columns, combine_batches, load_batches, reject_batch
from tasks.evaluation import score_holdout
from tasks.gate import check_unchanged, decide_promotion
from tasks.notification import notify_model_promoted, notify_model_rejected, notify_validation_failed
from tasks.packaging import (
    STOP_SERVICES,
    check_servability,
    package_model,
    start_servability_service,
)
from tasks.profiling import profile_batch
from tasks.registry import (
    promote_version,
    read_champion,
    record_gate_decision,
    record_servability,
    register_version,
)
from tasks.training import (
    champion_window,
    fit_model,
    load_libraries,
    load_window,
    set_aside_window_batch,
    split_holdout,
    store_holdout,
)
from tasks.validation import validate_batch


@flow(
    name="train",
    flow_run_name="train-{model}",
    on_completion=STOP_SERVICES,
    on_failure=STOP_SERVICES,
    on_crashed=STOP_SERVICES,
    on_cancellation=STOP_SERVICES,
)
def train(
    model: str,
    data: str | None = None,
    overrides: dict[str, Any] | None = None,
    reason: str = "manual",
    window: list[str] | None = None,
    drift_event: dict[str, Any] | None = None,
) -> TrainOutcome:
    """Train a challenger for a model and promote it if it beats the champion on the same held-out rows.

    ``data`` replaces the spec's file source for this run; ``overrides`` sets spec keys
    (``{"estimator.params.max_depth": 2}``) for an experiment; ``window`` adds recent batches (paths) to the
    training data, and both models are also scored on their held-out rows, which then decide. Without
    ``window``, the champion's own window (its batches still accepted) is used, so a plain train sees the data the
    champion saw. ``drift_event`` goes into the lineage.
    """
    quiet_telemetry()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    spec = load_spec(model, overrides)
    champion = read_champion(spec)
    # Started now, it has imported everything by the time the model is packaged (the check then takes seconds).
    service = start_servability_service(spec) if spec.serving.check else None

    checked = validated_data(spec, champion, data, window, run_id)
    pause_at("train.loaded")
    batch = combine_batches(spec, batches=checked.training)
    identity = TrainingIdentity.of_run(spec, batch.fingerprint, checked.suite_digest)
    unchanged = check_unchanged(spec, champion=champion, identity=identity)
    if unchanged is not None:
        return reject(spec, unchanged, champion, run_id)

    load_libraries(spec)  # in this thread: two threads importing the same packages can deadlock
    profile = profile_batch.submit(spec, batch=batch)  # alongside the fit: whylogs in one thread, XGBoost's threads
    split = split_holdout(spec, batch=batch, recent_rows=checked.recent_rows)
    holdout = store_holdout(spec, split=split)
    fitted = fit_model(spec, split=split)
    pause_at("train.fitted")
    scores = score_holdout(spec, model=fitted.model, champion=champion, split=split)
    publish_metrics(spec, scores.metrics, scores.champion)
    decision = decide_promotion(spec, split=split, scores=scores)
    if not decision.accepted:
        return reject(spec, decision, champion, run_id)
    record_gate_decision(spec, decision=decision, flow_run_id=run_id)
    publish_gate(spec, decision)

    lineage = Lineage.for_run(
        spec,
        reason=reason,
        data=checked,
        identity=identity,
        profile_path=profile.result().path,
        holdout=holdout,
        fitted=fitted,
        metrics=scores.metrics,
        decision=decision,
        flow_run_id=run_id,
        drift_event=drift_event,
    )
    packaged = package_model(spec, fitted=fitted, lineage=lineage)
    register_version(spec, lineage=packaged.lineage, decision=decision)
    publish_lineage(spec, packaged.lineage)
    pause_at("train.packaged")
    if not spec.serving.check:
        record_servability(spec, version=packaged.version, report=None)
    else:
        servable = check_servability(spec, tag=packaged.tag, fitted=fitted, holdout=split.holdout, service=service)
        record_servability(spec, version=packaged.version, report=servable)
        if not servable.ok:
            return reject(spec, decision.unservable(servable.reason), champion, run_id, packaged)
        decision = decision.with_evidence("servability", servable.as_dict())
    return promote(spec, packaged, champion, decision, run_id)


def validated_data(
    spec: ModelSpec, champion: Champion | None, data: str | None, window: list[str] | None, run_id: str | None
) -> Validated:
    """Load the source and the recent window and validate them: a window batch that fails today's suite leaves the
    window; a source batch that fails fails the run. Either is quarantined and on-call is told."""
    history = load_batches(spec, location=data)
    check_columns(spec, batches=history)  # a column the spec names but the data lacks is a spec error, not a quarantine
    recent = load_window(spec, paths=window if window is not None else champion_window(spec, champion=champion))
    checked = Validated(
        history=[(batch, validate_batch(spec, batch=batch)) for batch in history],
        recent=[(batch, validate_batch(spec, batch=batch)) for batch in recent],
    )
    publish_validation(spec, checked.reports)
    for batch, report in checked.failed_recent:
        set_aside = set_aside_window_batch(spec, batch=batch, report=report, flow_run_id=run_id)
        notify_validation_failed(spec, set_aside.rejected, champion)
        get_run_logger().warning("%s: %s", spec.name, set_aside.reason)
    if checked.failed_history:
        rejected = [reject_batch(spec, batch=batch, report=report) for batch, report in checked.failed_history]
        for each in rejected:
            notify_validation_failed(spec, each, champion)
        passed = [(batch, report) for batch, report in checked.history if report.success]
        if spec.source.on_unreadable == "fail" or not passed:
            raise DataValidationError("\n".join(each.message for each in rejected))
        for (
            each
        ) in rejected:  # source.on_unreadable = "skip": named, copied to quarantine, left in place, not trained on
            get_run_logger().warning('%s: skipped (source.on_unreadable = "skip"): %s', spec.name, each.message)
        return Validated(history=passed, recent=checked.recent)
    return checked


def promote(
    spec: ModelSpec, packaged: Packaged, champion: Champion | None, decision: GateDecision, run_id: str | None
) -> TrainOutcome:
    """Make the packaged version champion if the champion is still the one the run started from; announce it."""
    entry = promote_version(spec, version=packaged.version, expected=champion, decision=decision, flow_run_id=run_id)
    get_run_logger().info(
        "%s: promoted %s (was %s): %s", spec.name, packaged.tag, entry.from_version or "none", decision.reason
    )
    notify_model_promoted(spec, packaged, entry, decision)
    return TrainOutcome(spec.name, True, Outcome.ACCEPTED, decision, packaged.version, packaged.tag, entry.from_version)


def reject(
    spec: ModelSpec,
    decision: GateDecision,
    champion: Champion | None,
    run_id: str | None,
    packaged: Packaged | None = None,
) -> TrainOutcome:
    """Record and publish a decision that keeps the champion; page on-call for a regression or failure only."""
    logger = get_run_logger()
    record_gate_decision(spec, decision=decision, flow_run_id=run_id)
    publish_gate(spec, decision)  # unservable: the gate's "accepted" no longer holds, so say so where it was said
    if decision.pages:
        logger.warning("%s: challenger rejected (%s): %s", spec.name, decision.outcome, decision.reason)
        notify_model_rejected(spec, decision, champion, packaged)
    elif decision.outcome == Outcome.UNCHANGED:
        logger.info("%s: %s", spec.name, decision.reason)
    else:
        # Not significantly better is the gate working, not something for on-call: no driftline.model.rejected.
        logger.info("%s: challenger not promoted (%s): %s", spec.name, decision.outcome, decision.reason)
    return TrainOutcome.kept(spec.name, decision, champion.version if champion else None, packaged)
