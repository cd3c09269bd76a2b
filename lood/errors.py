"""The one exception type for input a user can fix."""


class LoodInputError(ValueError):
    """Bad user input (config, dataset file, record index): the message says what to change."""
