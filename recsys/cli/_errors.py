"""The errors a subcommand raises for the user: one line on stderr, and an exit code."""

from __future__ import annotations


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code ``code`` (2: bad usage, 1: failure)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CLIError):
    """Bad usage (a missing or invalid option, a path the command must not write): exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=2)
