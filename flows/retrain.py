"""The retrain loop: one run per model at a time, on history plus the recent window, judged by the gate."""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger, tags
from prefect.runtime import flow_run

from driftline.monitoring.policy import PolicyDecision
from driftline.monitoring.retraining import RetrainOutcome
from driftline.oncall import events
from driftline.settings import pause_at, quiet_telemetry
from driftline.spec import ModelSpec, load_spec
from flows.train import train
from tasks.retraining import (
    record_retrain,
    record_retrain_skip,
    release_retrain_lease,
    start_retrain,
    take_retrain_lease,
)


@flow(name="retrain", flow_run_name="retrain-{model}")
def retrain(model: str, fingerprint: str = "", reason: str = "scheduled") -> RetrainOutcome:
    """Retrain a model on its source plus the recent window; skip (and say why) if one is running or cooling down.

    Started nightly (``reason="scheduled"``) or by a ``driftline.drift.detected`` event (``reason="drift"``,
    ``fingerprint`` of the drifted batch).
    """
    quiet_telemetry()
    run_id = str(flow_run.get_id()) if flow_run.get_id() else f"local-{uuid.uuid4()}"
    spec = load_spec(model)
    running = take_retrain_lease(spec, holder=run_id)
    pause_at("retrain.leased")
    if running is not None:
        return skip(spec, running, fingerprint, run_id)
    try:
        start = start_retrain(spec, fingerprint=fingerprint, reason=reason, flow_run_id=run_id)
        if start.skipped is not None:
            return skip(spec, start.skipped, fingerprint, run_id)
        with tags(*events.holder_tags(flow_run.tags)):  # a killed CLI process's training run is reconciled too
            trained = train(model=spec.name, reason=reason, window=start.window, drift_event=start.drift_event)
        return record_retrain(spec, trained=trained, fingerprint=fingerprint, flow_run_id=run_id)
    finally:
        release_retrain_lease(spec, holder=run_id)


def skip(spec: ModelSpec, skipped: PolicyDecision, fingerprint: str, run_id: str) -> RetrainOutcome:
    """Record and log why this retrain does not run."""
    outcome = record_retrain_skip(spec, skipped=skipped, fingerprint=fingerprint, flow_run_id=run_id)
    get_run_logger().info("%s: retrain skipped (%s): %s", spec.name, skipped.decision, skipped.reason)
    return outcome
