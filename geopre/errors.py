"""The one exception type that means "the user asked for something that cannot be done".

The CLI prints such errors as a single line (no traceback unless ``--debug``) and exits non-zero;
every other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input or environment, phrased so the user can fix it."""
