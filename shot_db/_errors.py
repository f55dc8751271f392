"""The one error the shot DB raises for bad input or a broken invariant; its message names the field."""


class ShotDBError(ValueError):
    """A shot DB call was given something it cannot record, or asked for something that is not there."""
