"""The Observatory's exception types; every stage raises them and the CLI turns them into one message."""


class HmoError(Exception):
    """Base of every error the Observatory reports to a user."""


class ConfigurationError(HmoError):
    """The data directory or the environment is not usable."""


class WarehouseBusy(HmoError):
    """Another process holds the warehouse for writing."""


class SchemaMismatch(HmoError):
    """The warehouse was made by another version of the Observatory."""
