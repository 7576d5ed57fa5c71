"""The registry's tables. Existing SQLite and PostgreSQL registries read as they are: tables are only ever added.

There are no migrations: a new table is created on open (``create_all`` leaves existing ones alone), and columns
are never renamed or dropped, so a registry written by an older driftline keeps working.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

champions = sa.Table(
    "champions",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(200), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("version", sa.String(200), primary_key=True),
    sa.Column("tag", sa.String(400), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
)
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("from_version", sa.String(200)),
    sa.Column("to_version", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
gate_decisions = sa.Table(
    "gate_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("accepted", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # a records.BatchStatus
    sa.Column("stored_path", sa.Text),
    sa.Column("rows", sa.Integer),
    sa.Column("champion_version", sa.String(200)),
    sa.Column("drift_detected", sa.Boolean),
    sa.Column("drift", sa.JSON),  # DriftReport.as_dict()
    sa.Column("profile_path", sa.Text),
    sa.Column("report_path", sa.Text),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
)
monitor_decisions = sa.Table(
    "monitor_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("decision", sa.String(40), nullable=False),  # a statuses.Decision
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


def create(engine: sa.Engine) -> None:
    """Create the tables a registry lacks; existing tables and their rows are left as they are."""
    metadata.create_all(engine)
