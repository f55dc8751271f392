"""The shot DB's errors; each message is one line naming the field, the shot or the database.

`ShotDBError` itself means the caller handed in something the shot DB cannot record, or broke one of
its invariants: a bug in the caller. Its two subclasses are what a user or the environment causes;
toonfarm's tasks map them onto its user-error and transient types (ARCHITECTURE.md, "Errors").
"""


class ShotDBError(Exception):
    """A shot DB call was given something it cannot record, or broke one of its rules."""


class ShotDBUsageError(ShotDBError):
    """What was asked cannot be answered as asked: an unknown shot, a bad URL, a database whose schema
    is not the one this code reads."""


class ShotDBUnavailable(ShotDBError):
    """The database could not be reached, or gave up under load (dropped connection, lock timeout,
    serialization failure); another try may succeed."""
