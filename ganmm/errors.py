"""The project's own error types: messages say what to do next."""


class GanmmError(Exception):
    """Base class of every error the project raises on purpose."""


class DataError(GanmmError, ValueError):
    """Input data cannot be used; the message says what to change."""


class ConfigError(GanmmError, ValueError):
    """A model or run setting is invalid; the message names it."""
