"""User-facing errors: one exception type the CLI turns into a one-line message and exit code 2."""


class GenError(Exception):
    """A problem the user can fix (bad argument, bad file); the message says what and how."""
