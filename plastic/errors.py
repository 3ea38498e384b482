"""The project's own error types: the CLI turns any of them into one red line and exit code 1."""


class PlasticError(Exception):
    """Base class for every error a user can cause (bad file, bad option, wrong model)."""


class CheckpointError(PlasticError):
    """A model or adapter checkpoint is missing, corrupt, or belongs to another backbone."""


class ConfigError(PlasticError):
    """A configuration value or option is invalid."""


class RuleError(PlasticError):
    """A learning rule is unknown, broken, or was given bad parameters."""


class TraceError(PlasticError):
    """A spike-trace store is missing, corrupt, truncated, or incompatible."""


def one_line(exc: BaseException) -> str:
    """An error as one line for people: an OSError as `path: reason`, others by message."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
