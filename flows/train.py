"""The training loop: load → validate → profile → train → evaluate → gate → package → servability → promote."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline.errors import DataValidationError
from driftline.loop.gate import GateDecision, Outcome
from driftline.loop.lineage import Lineage, TrainingIdentity, code_version
from driftline.oncall import alerts, events
from driftline.settings import quiet_telemetry
from driftline.spec import load_spec, training_digest
from tasks.artifacts import publish_gate, publish_lineage, publish_metrics, publish_validation
from tasks.data import check_columns, combine_batches, load_batches, reject_batch
from tasks.evaluation import score_holdout
from tasks.gate import check_unchanged, decide_promotion
from tasks.packaging import check_servability, package_model
from tasks.profiling import profile_batch
from tasks.registry import promote_version, read_champion, record_gate_decision, register_version
from tasks.training import (
    champion_window,
    fit_model,
    load_window,
    set_aside_window_batch,
    split_holdout,
    store_holdout,
)
from tasks.validation import validate_batch


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run decided: the outcome, the gate decision and, if promoted, the new champion.

    ``outcome`` is the gate's: accepted (promoted), not_better, regressed, incomparable, unservable or unchanged.
    """

    model: str
    promoted: bool
    outcome: Outcome
    decision: GateDecision
    version: str | None = None
    tag: str | None = None
    previous: str | None = None


@flow(name="train", flow_run_name="train-{model}")
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
    logger = get_run_logger()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    spec = load_spec(model, overrides)
    champion = read_champion(spec.name)
    previous = champion.version if champion else None

    history = load_batches(spec, data)
    check_columns(spec, history)  # a column the spec names but the data lacks is a spec error, not a quarantine
    recent = load_window(spec, window if window is not None else champion_window(spec, champion))
    reports = [validate_batch(batch, spec) for batch in history + recent]
    publish_validation(spec.name, reports)
    history_reports, recent_reports = reports[: len(history)], reports[len(history) :]
    # A window batch that fails today's suite leaves the window; only the source failing fails the run.
    for batch, report in zip(recent, recent_reports, strict=True):
        if not report.success:
            logger.warning("%s: %s", spec.name, set_aside_window_batch(batch, report, spec, run_id))
    recent = [batch for batch, report in zip(recent, recent_reports, strict=True) if report.success]
    failed = [(batch, report) for batch, report in zip(history, history_reports, strict=True) if not report.success]
    if failed:
        messages = [reject_batch(batch, report, spec)[1] for batch, report in failed]
        raise DataValidationError("\n".join(messages))

    batch = combine_batches(history + recent)
    suite_digest = history_reports[0].suite_digest
    code = code_version(spec.project_dir)
    identity = TrainingIdentity(batch.fingerprint, training_digest(spec, suite_digest), code)
    same = check_unchanged(spec, champion, identity)
    if same is not None:
        record_gate_decision(spec.name, same, run_id)
        publish_gate(spec.name, same)
        logger.info("%s: %s", spec.name, same.reason)
        return TrainOutcome(spec.name, promoted=False, outcome=Outcome.UNCHANGED, decision=same, previous=previous)

    profile = profile_batch(batch, spec)
    split = split_holdout(batch, spec, recent_rows=sum(b.rows for b in recent))
    holdout = store_holdout(split, spec)
    fitted = fit_model(split, spec)
    scores = score_holdout(fitted.model, champion, split, spec)
    publish_metrics(spec.name, scores.metrics, scores.champion.metrics, scores.champion.version)

    decision = decide_promotion(spec, split, scores)
    record_gate_decision(spec.name, decision, run_id)
    publish_gate(spec.name, decision)
    if not decision.accepted:
        return _not_promoted(spec.name, decision, previous)

    lineage = Lineage(
        model=spec.name,
        reason=reason,
        data_fingerprint=batch.fingerprint,
        data_sources=[b.origin for b in history + recent],
        rows=batch.rows,
        suite=str(spec.suite_path.name),
        suite_digest=suite_digest,
        spec_digest=identity.spec_digest,
        profile_path=profile.path,
        holdout_path=holdout.path,
        holdout_digest=holdout.digest,
        holdout_rows=holdout.rows,
        split_seed=split.seed,
        holdout_fraction=split.fraction,
        estimator=spec.estimator.kind,
        params=spec.estimator.params,
        seed=spec.estimator.seed,
        metrics=scores.metrics.values,
        gate=decision.as_dict(),
        schema=fitted.schema.as_dict(),
        code_version=code.commit,
        code_dirty=code.dirty,
        code_diff_digest=code.diff_digest,
        lock_digest=code.lock_digest,
        flow_run_id=run_id,
        window=[b.origin for b in recent],
        drift_event=drift_event,
    )
    tag = package_model(fitted, spec, lineage)
    version = tag.split(":", 1)[1]
    lineage = lineage.model_copy(update={"version": version, "tag": tag})
    register_version(lineage)
    publish_lineage(lineage)

    if spec.serving.check:
        servable = check_servability(tag, fitted, split.holdout, spec)
        if not servable.ok:
            decision = decision.unservable(servable.reason)
            record_gate_decision(spec.name, decision, run_id)
            publish_gate(spec.name, decision)  # the gate's "accepted" no longer holds: say so where it was said
            return replace(_not_promoted(spec.name, decision, previous, tag), version=version, tag=tag)
        decision = decision.with_evidence("servability", servable.as_dict())

    entry = promote_version(spec.name, version, champion, decision, run_id)
    logger.info("%s: promoted %s (was %s): %s", spec.name, tag, entry.from_version or "none", decision.reason)
    events.emit(
        events.MODEL_PROMOTED,
        spec.name,
        {"version": version, "tag": tag, "previous": entry.from_version, "reason": decision.reason},
        alerts.model_promoted(spec.name, version, entry.from_version, decision.reason, events.current_run_url()),
    )
    return TrainOutcome(spec.name, True, Outcome.ACCEPTED, decision, version, tag, entry.from_version)


def _not_promoted(model: str, decision: GateDecision, previous: str | None, tag: str | None = None) -> TrainOutcome:
    """Say why the challenger was not promoted: a page for a regression or failure, an INFO line otherwise."""
    logger = get_run_logger()
    assert decision.outcome is not None
    if not decision.pages:
        # Not significantly better is the gate working, not something for on-call: no driftline.model.rejected.
        logger.info("%s: challenger not promoted (%s): %s", model, decision.outcome, decision.reason)
        return TrainOutcome(model, promoted=False, outcome=decision.outcome, decision=decision, previous=previous)
    logger.warning("%s: challenger rejected (%s): %s", model, decision.outcome, decision.reason)
    events.emit(
        events.MODEL_REJECTED,
        model,
        {"reason": decision.reason, "outcome": decision.outcome, "tag": tag, "decision": decision.as_dict()},
        alerts.model_rejected(model, previous, decision.reason, events.current_run_url(), decision.outcome),
    )
    return TrainOutcome(model, promoted=False, outcome=decision.outcome, decision=decision, previous=previous)
