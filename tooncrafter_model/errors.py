"""toonfarm's error types: what went wrong says, by its type, who can fix it.

- `UserError`: the input is wrong (a shot list, a setting, a file, a checkpoint); another try cannot
  help, the user can. Also a ValueError, so validators that expect one (pydantic's) still see one.
- `TransientError`: the environment failed (a database connection, a network fetch, a worker's
  output); another try, later or elsewhere, may succeed.

Every message is one line naming the file and the field. The CLI prints these as that one line; any
other exception is a bug and shows as one (ARCHITECTURE.md, "Errors"). They live in the model package
because it is the lowest layer that cluster, tasks and flows all import; the shot DB, which imports
none of them, keeps its own error types and tasks classifies them where it opens the database.
"""

from __future__ import annotations


class ToonfarmError(Exception):
    """The root: an error whose message is meant for the user, one line naming the file and the field."""


class UserError(ToonfarmError, ValueError):
    """Bad input: fixing the input fixes it, retrying does not."""


class TransientError(ToonfarmError):
    """A failure of the environment that another try, later or on another worker, may not meet."""


def is_transient(exc: object) -> bool:
    """Whether another try may succeed: the error's type says so, nothing else does."""
    return isinstance(exc, TransientError)


def one_line(exc: BaseException) -> str:
    """An error as one line: a ToonfarmError's own first line; anything else named as unexpected (a bug
    that stopped one shot, not the batch: ARCHITECTURE.md, "Errors")."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if isinstance(exc, ToonfarmError) else f"unexpected {type(exc).__name__}: {text}"
