"""Quiet by default: telemetry variables are set unless the user set them; state paths follow the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.settings import TELEMETRY_OFF, get_settings, quiet_telemetry


def test_telemetry_is_off_unless_the_user_turned_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TELEMETRY_OFF:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "true")  # the user's own choice wins
    quiet_telemetry()
    import os

    assert os.environ["GX_ANALYTICS_ENABLED"] == "true"
    assert os.environ["BENTOML_DO_NOT_TRACK"] == "true"
    assert os.environ["WHYLOGS_NO_ANALYTICS"] == "True"
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["DO_NOT_TRACK"] == "1"


def test_state_lives_under_the_project_unless_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRIFTLINE_HOME", "DRIFTLINE_REGISTRY_URL", "DRIFTLINE_PROFILE_STORE", "BENTOML_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(tmp_path))
    settings = get_settings()
    assert settings.state_dir == (tmp_path / ".driftline").resolve()
    assert settings.registry == f"sqlite:///{(tmp_path / '.driftline' / 'registry.db').resolve()}"
    assert settings.profiles == str((tmp_path / ".driftline" / "profiles").resolve())
    assert settings.bentoml_home == (tmp_path / ".driftline" / "bentoml").resolve()
    monkeypatch.setenv("DRIFTLINE_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DRIFTLINE_REGISTRY_URL", "postgresql+psycopg://u@h/db")
    settings = get_settings()
    assert settings.quarantine_dir == (tmp_path / "elsewhere" / "quarantine").resolve()
    assert settings.registry == "postgresql+psycopg://u@h/db"
    # The managed Prefect server stays with the project even when the state directory moves.
    assert settings.prefect_home == (tmp_path / ".driftline" / "prefect").resolve()


def test_a_project_is_named_after_its_folder_and_told_apart_by_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftline.settings import PROJECT_ID

    monkeypatch.delenv("DRIFTLINE_PROJECT", raising=False)
    ids = []
    for checkout in (tmp_path / "alice" / "Fraud Shop", tmp_path / "bob" / "Fraud Shop"):
        monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(checkout))  # the folder need not exist: no I/O
        ids.append(get_settings().project_id)
    assert ids[0] != ids[1]
    assert all(i.startswith("fraud-shop-") and len(i) == len("fraud-shop-") + 6 for i in ids)
    assert all(PROJECT_ID.fullmatch(i) for i in ids)
    # The same folder by another spelling of its path is the same project.
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(tmp_path / "alice" / "x" / ".." / "Fraud Shop"))
    assert get_settings().project_id == ids[0]


def test_driftline_project_names_the_project_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from driftline.errors import DriftlineError

    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("DRIFTLINE_PROJECT", "payments-eu")
    assert get_settings().project_id == "payments-eu"
    monkeypatch.setenv("DRIFTLINE_PROJECT", "Payments.EU")
    with pytest.raises(DriftlineError, match=r"DRIFTLINE_PROJECT must be .* \(got 'Payments\.EU'\)"):
        get_settings().project_id  # noqa: B018 (the property is the check)
