"""The base of every error a user can fix (a path, a setting, a file they gave).

The CLI prints these as one line with the fix and exits 2; anything else is a bug and keeps
its traceback. A light module, so the CLI can catch them without importing torch or Dask.
"""


class UserError(Exception):
    """A mistake in what the user asked for; the message names the thing and the fix."""
