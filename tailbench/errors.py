"""The one exception type that reaches the user as a single line and exit code 2."""


class UserError(Exception):
    """Bad input or missing data: the message says what was wrong and what to do."""

    exit_code = 2
