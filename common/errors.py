"""The one error type the CLI turns into a single line and a non-zero exit."""


class A2QError(Exception):
    """A user-facing error: bad input, a missing file, a failed run. The message is one line."""
