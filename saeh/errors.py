"""Errors that describe a user's mistake rather than a bug.

The command-line scripts print these as one line and exit with status 2; anything else is a bug and keeps its
traceback.
"""


class SaehError(ValueError):
    """Bad input from the user: a wrong argument, file, shape or setting. The message says what was expected."""


class MissingDataError(SaehError, FileNotFoundError):
    """A dataset or file was not found; the message says where we looked and how to get it."""
