"""Exceptions that carry a message a user can act on.

Every error a user can cause (a bad config, a missing file, an unreachable server) is a
``PolyaError``: the CLI prints its message without a traceback and exits non-zero.
"""


class PolyaError(Exception):
    """A user-facing error: the message names what is wrong and what would be valid."""


class ConfigError(PolyaError):
    """A configuration value or file is invalid."""


class DataError(PolyaError):
    """A question source is missing, unreadable or malformed."""


class StoreError(PolyaError):
    """An artifact store location cannot be read or written."""


class ServerError(PolyaError):
    """An inference server could not be started, or stopped answering."""
