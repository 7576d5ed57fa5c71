"""driftline's exceptions: one small hierarchy, so callers catch what they can handle.

    DriftlineError
     ├── SpecError            a model spec or suite file breaks a rule (names the file, key and rule)
     ├── DataError            a batch cannot be read or lacks a declared column (names the file and column)
     │    ├── DataValidationError   a batch failed its expectation suite and was quarantined
     │    └── UnreadableFile        a file's content cannot be a batch (empty, damaged, wrong encoding or format)
     ├── TrainingError        the data cannot be split or fitted as the spec asks
     ├── PromotionConflict    the champion changed since the run began (compare-and-set lost)
     ├── NotPromotable        the version has not passed every check a champion needs (names the check)
     ├── ModelIntegrityError  a stored model's files differ from the digests recorded at packaging (names the file)
     ├── StoreError           a model, profile or registry record is missing or unreadable
     └── ServerError          the managed Prefect server could not be started or reached

Messages say what was expected and what was found, so on-call can act from the Prefect UI alone.
A gate rejection and drift are results, not exceptions.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Base class of every error driftline raises on purpose."""


class SpecError(DriftlineError):
    """A model spec, an override or an expectation suite breaks a rule."""


class DataError(DriftlineError):
    """A batch cannot be read, or lacks a column the spec declares."""


class DataValidationError(DataError):
    """A batch failed its expectation suite; it has been quarantined, not dropped."""


class UnreadableFile(DataError):
    """A file's content cannot be read as a batch: reading it again gives the same answer (never retried).

    ``reason`` is one of ``driftline.loop.data.Reason`` (empty, unreadable, wrong_encoding, unknown_format).
    """

    def __init__(self, path: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[UnreadableFile], tuple[str, str, str]]:
        return (UnreadableFile, (self.path, self.reason, str(self)))  # pickles whole (Prefect keeps task errors)


class TrainingError(DriftlineError):
    """The data cannot be split or fitted the way the spec asks."""


class PromotionConflict(DriftlineError):
    """The champion changed since this run read it; nothing was promoted."""


class NotPromotable(DriftlineError):
    """The version lacks a passed check (servability, digests, gate); nothing was promoted."""


class ModelIntegrityError(DriftlineError):
    """A stored model's files are not the ones packaged (changed, missing, extra, or never recorded); not loaded."""


class StoreError(DriftlineError):
    """A model version, profile or registry record is missing or unreadable."""


class ServerError(DriftlineError):
    """The managed Prefect server could not be started or reached."""
