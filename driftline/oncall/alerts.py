"""What on-call reads: one alert per thing that broke, with what broke, where to look, and the command to run.

An :class:`Alert` travels inside the driftline event that reports the thing (``payload.alert``); the Prefect
automations that ``driftline deploy`` creates send ``alert.subject`` and ``alert.body`` through the spec's
notification blocks. Identical alerts are sent once per ``notify.dedupe_minutes``: the event carries the alert's
dedupe key as the resource label ``driftline.alert-key`` and the automation fires once per key per window.

Dedupe keys (documented in docs/runbook.md): ``<kind>:<model>:<subject>``, where the subject is what makes two
alerts the same problem — the failed expectations (column + expectation), the drifted columns, the rejection's
outcome (regressed, incomparable or unservable), the promoted or rolled-back version.

Plain Python: no Prefect, so it is cheap to test and to reuse.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from driftline.spec import AlertKind

Severity = Literal["critical", "error", "warning", "info"]


@dataclass(frozen=True)
class Alert:
    kind: AlertKind  # one of spec.ALERT_KINDS: what `notify.alerts` selects and the runbook's section
    severity: Severity
    model: str
    version: str | None
    title: str
    what: list[str]
    command: str
    subject_key: str
    links: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        digest = hashlib.sha256(self.subject_key.encode()).hexdigest()[:16]
        return f"{self.kind}:{self.model}:{digest}"

    @property
    def subject(self) -> str:
        return f"[driftline {self.severity.upper()}] {self.model}: {self.title}"

    @property
    def body(self) -> str:
        lines = [
            f"severity: {self.severity}",
            f"model: {self.model}" + (f" (version {self.version})" if self.version else ""),
            "what happened:",
            *(f"  - {line}" for line in self.what),
            *(f"{name}: {url}" for name, url in self.links.items() if url),
            f"run this: {self.command}",
            f"runbook: docs/runbook.md#{self.kind.replace('_', '-')}",
        ]
        return "\n".join(lines)

    def as_payload(self) -> dict[str, Any]:
        return {**asdict(self), "subject": self.subject, "body": self.body, "dedupe_key": self.dedupe_key}


def _deployment(model: str) -> str:
    from driftline.oncall.events import deployment_name

    return deployment_name(model)


def validation_failed(
    model: str, version: str | None, batch: str, quarantined: str, failures: list[str], run_url: str | None
) -> Alert:
    folder = quarantined.rstrip("/").rsplit("/", 2)[-2] if "/" in quarantined else quarantined
    return Alert(
        kind="validation_failed",
        severity="error",
        model=model,
        version=version,
        title=f"batch {batch.rsplit('/', 1)[-1]} failed validation and was quarantined",
        what=[f"batch {batch} failed its expectation suite", *failures[:5], f"kept byte-identical at {quarantined}"],
        command=f"driftline replay {model} {folder}   (after fixing the data or the suite)",
        subject_key="|".join(sorted(f.split(" failed:", 1)[0] for f in failures)),
        links={"run": run_url or ""},
    )


def drift_detected(
    model: str,
    version: str,
    source: str,
    reason: str,
    columns: list[dict[str, Any]],
    report: str | None,
    run_url: str | None,
) -> Alert:
    top = sorted(columns, key=lambda c: -(c.get("score") or 0.0))[:5]
    scores = [
        f"{c['column']} ({c.get('role', 'feature')}): {c['method']} {c['score']:.3f} >= threshold "
        f"{c['threshold']:.3f} (noise floor {c.get('floor') or 0.0:.3f} at {c.get('rows', '?')} rows)"
        for c in top
    ]
    kinds = sorted({c.get("role", "feature") for c in columns})
    return Alert(
        kind="drift_detected",
        severity="warning",
        model=model,
        version=version,
        title=f"{'/'.join(kinds)} drift in {', '.join(c['column'] for c in top)} ({source}); retrain requested",
        what=[
            reason,
            *scores,
            f"the retrain/{_deployment(model)} deployment was triggered; its gate decides on promotion",
        ],
        command=f"driftline drift {model}   (if the retrained model misbehaves: driftline rollback {model})",
        subject_key=",".join(sorted(c["column"] for c in columns)),
        links={"report": f"file://{report}" if report else "", "run": run_url or ""},
    )


def drift_undecided(
    model: str, version: str, source: str, columns: list[dict[str, Any]], report: str | None, run_url: str | None
) -> Alert:
    """Columns whose drift could not be decided: too few rows, or nothing scorable. Never counted as fine."""
    lines = [
        f"{c['column']} ({c.get('role', 'feature')}): {c['status'].replace('_', ' ')}: {c['note']}" for c in columns
    ]
    unscorable = [c for c in columns if c["status"] == "unscorable"]
    return Alert(
        kind="drift_undecided",
        severity="warning",
        model=model,
        version=version,
        title=f"drift not decided for {len(columns)} column(s) ({source})",
        what=[
            *lines[:8],
            "these columns are neither drifted nor fine: a broken feed (all values missing, wrong type) or a "
            "batch too small to tell (drift.min_rows) hides drift",
        ],
        command=f"driftline drift {model}   (then check the feed of "
        f"{', '.join(c['column'] for c in (unscorable or columns)[:3])})",
        subject_key=",".join(sorted(f"{c['column']}:{c['status']}" for c in columns)),
        links={"report": f"file://{report}" if report else "", "run": run_url or ""},
    )


def model_rejected(
    model: str, champion: str | None, reason: str, run_url: str | None, outcome: str | None = None
) -> Alert:
    """A gate outcome that pages: ``regressed``, ``incomparable`` or ``unservable`` (the champion stays).

    Without ``outcome`` (older callers), a reason starting "servability" is ``unservable``, anything else
    ``regressed``. The outcome is the dedupe subject: a regression and a broken package are different problems.
    """
    if outcome is None:
        outcome = "unservable" if reason.startswith("servability") else "regressed"
    stays = f"champion {champion or '(none)'} stays"
    titles = {
        "regressed": f"challenger {_regression(reason)}; {stays}",
        "incomparable": f"challenger and champion could not be compared; {stays}",
        "unservable": f"packaged version failed the servability check; {stays}",
    }
    look = "the log named in the reason" if outcome == "unservable" else "the gate decision"
    return Alert(
        kind="model_rejected",
        severity="warning",
        model=model,
        version=champion,
        title=titles.get(outcome, f"challenger {outcome.replace('_', ' ')}; {stays}"),
        what=[f"outcome: {outcome}", reason],
        command=f"driftline status {model}   (nothing changed; look at {look} before retraining)",
        subject_key=outcome,
        links={"run": run_url or ""},
    )


def _regression(reason: str) -> str:
    """Where the challenger regressed, read from the gate's reason (driftline/gate.py words it)."""
    if "gate.min_metric" in reason:
        return "missed gate.min_metric"
    if "forgets the fixed holdout" in reason:
        return "regressed on the fixed holdout (gate.max_regression)"
    # "significantly worse: roc_auc on the 40 recent rows: ..." names the deciding rows between its first two colons.
    deciding = reason.split(":", 2)[1] if reason.startswith("significantly worse:") else ""
    if "recent rows" in deciding:
        return "regressed on the recent rows"
    if "fixed-holdout rows" in deciding:
        return "regressed on the fixed holdout"
    return "regressed"


def model_promoted(model: str, version: str, previous: str | None, reason: str, run_url: str | None) -> Alert:
    return Alert(
        kind="model_promoted",
        severity="info",
        model=model,
        version=version,
        title=f"{version} promoted (was {previous or 'none'})",
        what=[reason],
        command=f"driftline rollback {model}   (back to {previous})" if previous else f"driftline status {model}",
        subject_key=version,
        links={"run": run_url or ""},
    )


def rolled_back(model: str, to_version: str, from_version: str, actor: str, reason: str) -> Alert:
    return Alert(
        kind="rolled_back",
        severity="warning",
        model=model,
        version=to_version,
        title=f"rolled back to {to_version} (from {from_version}) by {actor}",
        what=[f"reason: {reason}", f"the champion is {to_version} again; {from_version} stays in the store"],
        command=f"driftline rollback {model} --to {from_version}   (to undo)",
        subject_key=f"{from_version}->{to_version}",
    )


def run_failed_template(model: str) -> tuple[str, str]:
    """Subject and body (Prefect Jinja) for a failed or crashed flow run of the model."""
    subject = f"[driftline ERROR] {model}: flow run {{{{ flow_run.name }}}} {{{{ flow_run.state.name }}}}"
    body = "\n".join(
        [
            "severity: error",
            f"model: {model}",
            "what happened:",
            "  - flow run {{ flow_run.name }} ended {{ flow_run.state.name }}: {{ flow_run.state.message }}",
            "  - a failed or crashed run never changes the champion",
            "run: {{ flow_run|ui_url }}",
            f"run this: driftline status {model}   (then re-run: driftline train {model} / driftline monitor {model})",
            "runbook: docs/runbook.md#run-failed",
        ]
    )
    return subject, body


def heartbeat_template(model: str, minutes: float) -> tuple[str, str]:
    """Subject and body for the dead-man's switch: the monitor has not run for ``minutes``."""
    subject = f"[driftline CRITICAL] {model}: the monitor has not run for {minutes:g} minutes"
    body = "\n".join(
        [
            "severity: critical",
            f"model: {model}",
            "what happened:",
            f"  - no monitor/{_deployment(model)} run completed in the last {minutes:g} minutes "
            "(notify.heartbeat_minutes)",
            "  - new batches and served traffic are not being checked for drift",
            f"run this: driftline monitor {model}   (then check that `driftline serve-flows` or your worker runs)",
            "runbook: docs/runbook.md#heartbeat",
        ]
    )
    return subject, body
