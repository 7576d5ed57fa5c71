"""Where driftline keeps its state, read from the environment each time it is asked.

Embedded defaults put everything under ``<project>/.driftline``: the registry (SQLite), the BentoML model store,
the profile store, quarantine, holdouts and the managed Prefect server's home. Each can be moved by
configuration (``DRIFTLINE_*`` environment variables), e.g. the registry to PostgreSQL or profiles to S3.

A project also has an identity (``DRIFTLINE_PROJECT``, or derived from its directory) that its events, automations,
deployments and artifact keys carry, so several projects can share one Prefect server without answering each
other's events.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.errors import DriftlineError

# Usage telemetry of the libraries driftline drives. Off unless the user sets these variables themselves.
TELEMETRY_OFF = {
    "WHYLOGS_NO_ANALYTICS": "True",
    "BENTOML_DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",  # Prefect's client-side SDK telemetry (prefect._internal.analytics)
}

# A project id goes into event resource ids (dot-separated), artifact keys (lowercase letters, digits and dashes
# only), tags and deployment names, so it is held to the strictest of them.
PROJECT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_SLUG_LENGTH = 24  # leaves room for "-" and the digest within PROJECT_ID's 40 characters
_DIGEST_LENGTH = 6  # 24 bits: two checkouts of the same name on one server collide with odds of 1 in 16 million


def derive_project_id(project_dir: Path) -> str:
    """Name a project after its folder plus a digest of its absolute path, so two checkouts named alike differ."""
    resolved = project_dir.resolve()
    slug = re.sub(r"[^a-z0-9]+", "-", resolved.name.lower()).strip("-")[:_SLUG_LENGTH].strip("-") or "project"
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:_DIGEST_LENGTH]
    return f"{slug}-{digest}"


class Settings(BaseSettings):
    """driftline's configuration; every field can be set as ``DRIFTLINE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="ignore")

    project_dir: Path = Field(default_factory=Path.cwd, description="holds deployments/ and expectations/")
    project: str | None = Field(
        default=None, description="the project's id on a shared Prefect server (default: derived from project_dir)"
    )
    home: Path | None = Field(default=None, description="state directory (default <project>/.driftline)")
    registry_url: str | None = Field(default=None, description="SQLAlchemy URL of the registry")
    profile_store: str | None = Field(default=None, description="path or fsspec URL of the profile store")
    prefect_port: int = Field(default=4200, description="port of the managed local Prefect server")
    prefect_server_home: Path | None = Field(default=None, description="default <project>/.driftline/prefect")

    @property
    def project_id(self) -> str:
        """The project's id: ``DRIFTLINE_PROJECT`` if set, else ``<folder>-<digest of its path>``."""
        if self.project is None:
            return derive_project_id(self.project_dir)
        if not PROJECT_ID.fullmatch(self.project):
            raise DriftlineError(
                "DRIFTLINE_PROJECT must be 1-40 lowercase letters, digits and dashes, starting and ending with a "
                f"letter or digit (got {self.project!r})"
            )
        return self.project

    @property
    def state_dir(self) -> Path:
        return (self.home or self.project_dir / ".driftline").resolve()

    @property
    def specs_dir(self) -> Path:
        return self.project_dir / "deployments"

    @property
    def suites_dir(self) -> Path:
        return self.project_dir / "expectations"

    @property
    def registry(self) -> str:
        return self.registry_url or f"sqlite:///{self.state_dir / 'registry.db'}"

    @property
    def profiles(self) -> str:
        return self.profile_store or str(self.state_dir / "profiles")

    @property
    def quarantine_dir(self) -> Path:
        return self.state_dir / "quarantine"

    @property
    def holdouts_dir(self) -> Path:
        return self.state_dir / "holdouts"

    @property
    def bentoml_home(self) -> Path:
        return Path(os.environ.get("BENTOML_HOME") or self.state_dir / "bentoml")

    @property
    def prefect_home(self) -> Path:
        # Apart from ``home`` so a throwaway state directory (the demo's) never takes the server with it.
        return (self.prefect_server_home or self.project_dir / ".driftline" / "prefect").resolve()


def get_settings() -> Settings:
    """Read the settings from the environment now (cheap; never cached, so tests and subprocesses agree)."""
    return Settings()


def quiet_telemetry() -> None:
    """Turn the libraries' usage telemetry off unless the user has set the variables themselves."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)


TEST_PAUSE_VARIABLE = "DRIFTLINE_TEST_PAUSE_AT"


def pause_at(point: str) -> None:
    """Hold the process here for good when ``DRIFTLINE_TEST_PAUSE_AT`` names this point.

    Reliability tests set it to stop a run at a known step (say, ``monitor.claimed``), kill its process group and check
    what the next run finds. Unset — always, outside those tests — it costs one environment lookup.
    """
    if os.environ.get(TEST_PAUSE_VARIABLE) != point:
        return
    import sys
    import time

    print(f"driftline: paused at {point}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)
