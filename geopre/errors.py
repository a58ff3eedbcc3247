"""The one exception type that means "the user asked for something that cannot be done".

The CLI prints such errors as a single line (no traceback unless ``--debug``) and exits non-zero;
every other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input or environment, phrased so the user can fix it."""


def check_minimums(config: object, minimums: dict[str, float]) -> None:
    """Raise a UserError naming the first of ``config``'s fields below its minimum, as the CLI
    option it comes from (``batch_size`` -> ``--batch-size``); a field left at None passes."""
    for name, least in minimums.items():
        value = getattr(config, name)
        if value is not None and value < least:
            raise UserError(f"--{name.replace('_', '-')} must be at least {least} (got {value})")
