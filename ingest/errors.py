"""Exception types of the ingest package; the CLI turns them into messages."""


class HmoError(Exception):
    """Base of every error the Observatory reports to a user."""


class ConfigurationError(HmoError):
    """The data directory or the environment is not usable."""


class WarehouseBusy(HmoError):
    """Another process holds the warehouse for writing."""


class SchemaMismatch(HmoError):
    """The warehouse was made by another version of the Observatory."""
