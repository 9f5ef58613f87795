"""The one exception type for bad user input: the CLI prints it on one line and exits 2."""


class UserError(Exception):
    """Bad input (file, config, argument, missing tool). Message must be one clear line."""
