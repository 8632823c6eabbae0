"""Errors a user can fix. Entry points print their message and exit non-zero instead of showing a traceback."""


class UserError(RuntimeError):
    """Base class: the message names the file or setting at fault and how to fix it."""


class DataError(UserError):
    """A problem with the user's data files or dataset folders."""


class WeightsError(UserError):
    """Pretrained weights that are missing, unreadable, or do not match the architecture."""


class TrainingDiverged(UserError):
    """A loss went non-finite (or past its bound): the run stops without checkpointing the diverged state."""


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class ConfigError(UserError):
    """A config key with a wrong type, or one the configured class does not take."""
