"""Model file digests: every file by relative path, symlinks never followed, and any difference refused by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from driftline.errors import ModelIntegrityError
from driftline.loop.integrity import NOT_A_FILE, differences, folder_digests, verify


def _model(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "model.yaml").write_text("name: fraud\n")
    (folder / "saved_model.pkl").write_bytes(b"\x80\x04pickled")
    (folder / "sub" / "extra.bin").write_bytes(b"\x00" * 3_000_000)  # more than one read chunk
    return folder


def test_every_file_is_digested_by_its_relative_path(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m")
    digests = folder_digests(folder)
    assert list(digests) == ["model.yaml", "saved_model.pkl", "sub/extra.bin"]
    assert digests["saved_model.pkl"] == hashlib.sha256(b"\x80\x04pickled").hexdigest()
    assert digests["sub/extra.bin"] == hashlib.sha256(b"\x00" * 3_000_000).hexdigest()


def test_a_symlink_is_recorded_as_not_a_file_and_never_followed(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (folder / "link.pkl").symlink_to(folder / "saved_model.pkl")
    (folder / "linked-dir").symlink_to(outside, target_is_directory=True)
    digests = folder_digests(folder)
    assert digests["link.pkl"] == NOT_A_FILE
    assert digests["linked-dir"] == NOT_A_FILE
    assert not any(path.startswith("linked-dir/") for path in digests)


def test_the_same_files_verify(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m")
    verify("fraud:v1", folder, folder_digests(folder))  # no error


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda f: (f / "saved_model.pkl").write_bytes(b"\x80\x04evil"), r"saved_model\.pkl changed"),
        (lambda f: (f / "sub" / "extra.bin").unlink(), r"sub/extra\.bin missing"),
        (lambda f: (f / "sitecustomize.py").write_text("x"), r"sitecustomize\.py extra"),
        (
            lambda f: ((f / "saved_model.pkl").unlink(), (f / "saved_model.pkl").symlink_to(f / "model.yaml")),
            r"saved_model\.pkl changed",
        ),
    ],
    ids=["changed", "missing", "extra", "replaced-by-a-symlink"],
)
def test_any_difference_is_refused_naming_model_version_and_file(tmp_path: Path, change: object, named: str) -> None:
    folder = _model(tmp_path / "m")
    recorded = folder_digests(folder)
    change(folder)  # type: ignore[operator]
    with pytest.raises(ModelIntegrityError, match=named) as refused:
        verify("fraud:v1", folder, recorded)
    assert str(refused.value).startswith("fraud version v1: refused to load")


def test_a_version_without_recorded_digests_is_refused_with_what_to_do(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m")
    for recorded in (None, {}):
        with pytest.raises(ModelIntegrityError, match=r"no file digests are recorded .*driftline trust fraud:v1"):
            verify("fraud:v1", folder, recorded)


def test_differences_lists_every_problem_sorted() -> None:
    assert differences({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "9", "d": "4"}) == [
        "b changed (sha256 9…, packaged 2…)",
        "c missing",
        "d extra (not packaged)",
    ]
