"""The registry's tables. Existing SQLite and PostgreSQL registries read as they are: tables and nullable columns
are only ever added.

There are no migration scripts: on open, a missing table is created (``create_all`` leaves existing ones alone)
and a missing column of :data:`ADDED_COLUMNS` is added (``ALTER TABLE ... ADD COLUMN``, nullable, so old rows
read as NULL). Columns are never renamed or dropped, so a registry written by an older driftline keeps working,
and an older driftline still reads a migrated one.
"""

from __future__ import annotations

from typing import Any

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
    # The claim's lease (see ADDED_COLUMNS): who holds it (host:pid:flow run) and until when, renewed while the
    # work goes on. NULL in rows written before leases: such a claim is taken over an hour after claimed_at.
    sa.Column("holder", sa.String(200)),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
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
version_checks = sa.Table(
    "version_checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("version", sa.String(200), nullable=False),
    sa.Column("check", sa.String(40), nullable=False),  # a records.Check
    sa.Column("status", sa.String(20), nullable=False),  # a records.CheckStatus
    sa.Column("detail", sa.Text, nullable=False),
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


# Columns added to existing tables after their first release, in order: an older registry gains them on open.
ADDED_COLUMNS = ((batches, ("holder", "lease_expires_at")),)


def create(engine: sa.Engine) -> None:
    """Create the tables a registry lacks and add the columns its tables lack; rows are left as they are."""
    metadata.create_all(engine)
    for table, names in ADDED_COLUMNS:
        for name in names:
            _add_column(engine, table, table.c[name])


def _add_column(engine: sa.Engine, table: sa.Table, column: sa.Column[Any]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` (nullable) unless the column is there; a racing opener's addition is fine."""
    if column.name in _columns(engine, table):
        return
    kind = column.type.compile(dialect=engine.dialect)
    statement = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    except sa.exc.DBAPIError:
        if column.name not in _columns(engine, table):  # not another process adding it first: a real failure
            raise


def _columns(engine: sa.Engine, table: sa.Table) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table.name)}
