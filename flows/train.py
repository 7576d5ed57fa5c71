"""The training loop: load → validate → profile → train → evaluate → gate → package → servability → promote."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from driftline import alerts, events
from driftline.errors import DataValidationError
from driftline.gate import GateDecision
from driftline.lineage import Lineage, git_commit, lock_digest
from driftline.modeling import holdout_mask
from driftline.settings import quiet_telemetry
from driftline.spec import load_spec
from tasks.artifacts import publish_gate, publish_lineage, publish_metrics, publish_validation
from tasks.data import combine_batches, load_batches, reject_batch
from tasks.evaluation import evaluate_champion, evaluate_model, evaluate_window
from tasks.gate import decide_promotion
from tasks.packaging import check_servability, package_model
from tasks.profiling import profile_batch
from tasks.registry import promote_version, read_champion, record_gate_decision, register_version
from tasks.training import fit_model, read_holdout, split_holdout, store_holdout
from tasks.validation import validate_batch


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run decided: the gate decision and, if promoted, the new champion."""

    model: str
    promoted: bool
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
    """Train a challenger for a model and promote it if it beats the champion on the same holdout.

    ``data`` replaces the spec's file source for this run; ``overrides`` sets spec keys
    (``{"estimator.params.max_depth": 2}``) for an experiment; ``window`` adds recent batches (paths) to the
    training data, and both models are also scored on their held-out rows; ``drift_event`` goes into the lineage.
    """
    quiet_telemetry()
    logger = get_run_logger()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    spec = load_spec(model, overrides)
    champion = read_champion(spec.name)

    history = load_batches(spec, data)
    recent = [batch for path in window or [] for batch in load_batches(spec, path)]
    batches = history + recent
    reports = [validate_batch(batch, spec) for batch in batches]
    publish_validation(spec.name, reports)
    failed = [(batch, report) for batch, report in zip(batches, reports, strict=True) if not report.success]
    if failed:
        messages = [reject_batch(batch, report, spec)[1] for batch, report in failed]
        raise DataValidationError("\n".join(messages))

    batch = combine_batches(batches)
    profile = profile_batch(batch, spec)
    split = split_holdout(batch, spec)
    holdout = store_holdout(split, spec)
    fitted = fit_model(split, spec)
    challenger = evaluate_model(fitted.model, split, spec)
    champion_score = evaluate_champion(champion, split, spec)
    publish_metrics(spec.name, challenger, champion_score.metrics, champion_score.version)
    windows = {}
    if champion is not None:
        fixed = read_holdout(spec.name, champion.version)
        windows["champion_holdout"] = evaluate_window(fitted.model, champion, fixed, spec)
    if recent:
        recent_rows = combine_batches(recent).frame
        windows["recent_window"] = evaluate_window(
            fitted.model, champion, recent_rows[holdout_mask(recent_rows, spec)], spec
        )

    decision = decide_promotion(spec, challenger, champion_score, split.holdout_digest, windows)
    record_gate_decision(spec.name, decision, run_id)
    publish_gate(spec.name, decision)
    if not decision.accepted:
        logger.warning("%s: challenger rejected: %s", spec.name, decision.reason)
        previous = champion.version if champion else None
        events.emit(
            events.MODEL_REJECTED,
            spec.name,
            {"reason": decision.reason, "decision": decision.as_dict()},
            alerts.model_rejected(spec.name, previous, decision.reason, events.current_run_url()),
        )
        return TrainOutcome(spec.name, promoted=False, decision=decision, previous=previous)

    commit, dirty = git_commit(spec.project_dir)
    lineage = Lineage(
        model=spec.name,
        reason=reason,
        data_fingerprint=batch.fingerprint,
        data_sources=[b.origin for b in batches],
        rows=batch.rows,
        suite=str(spec.suite_path.name),
        suite_digest=reports[0].suite_digest,
        profile_path=profile.path,
        holdout_path=holdout.path,
        holdout_digest=holdout.digest,
        holdout_rows=holdout.rows,
        split_seed=split.seed,
        holdout_fraction=split.fraction,
        estimator=spec.estimator.kind,
        params=spec.estimator.params,
        seed=spec.estimator.seed,
        metrics=challenger.values,
        gate=decision.as_dict(),
        schema=fitted.schema.as_dict(),
        code_version=commit,
        code_dirty=dirty,
        lock_digest=lock_digest(spec.project_dir),
        flow_run_id=run_id,
        window=[batch.origin for batch in recent],
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
            decision = replace(decision, accepted=False, reason=f"servability check failed: {servable.reason}")
            record_gate_decision(spec.name, decision, run_id)
            logger.warning("%s: %s not promoted: %s", spec.name, tag, decision.reason)
            previous = champion.version if champion else None
            events.emit(
                events.MODEL_REJECTED,
                spec.name,
                {"reason": decision.reason, "tag": tag},
                alerts.model_rejected(spec.name, previous, decision.reason, events.current_run_url()),
            )
            return TrainOutcome(spec.name, False, decision, version, tag, previous)
        decision = replace(decision, windows={**decision.windows, "servability": servable.as_dict()})

    entry = promote_version(spec.name, version, champion, decision, run_id)
    logger.info("%s: promoted %s (was %s): %s", spec.name, tag, entry.from_version or "none", decision.reason)
    events.emit(
        events.MODEL_PROMOTED,
        spec.name,
        {"version": version, "tag": tag, "previous": entry.from_version, "reason": decision.reason},
        alerts.model_promoted(spec.name, version, entry.from_version, decision.reason, events.current_run_url()),
    )
    return TrainOutcome(spec.name, True, decision, version, tag, entry.from_version)
