"""Errors a user can cause; the CLI turns each into one line and exit code 2."""
import argparse
import functools
import sys


class UserError(Exception):
    """Bad input (argument, file, checkpoint): reported in one line, exit 2."""


class ArchitectureError(UserError):
    """Unknown, malformed or inconsistent architecture string or preset."""


class CheckpointError(UserError):
    """A checkpoint that is truncated, of another version or another network."""


class DataError(UserError):
    """A missing, truncated, corrupted or mismatching dataset file."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are a :class:`UserError` (one line, exit 2) instead of
    usage text; every command of the project parses with it."""

    def error(self, message):
        raise UserError(message)


def command(main):
    """Decorate a command's ``main(argv=None) -> int``: a :class:`UserError` it
    raises becomes one line ``error: ...`` on stderr and exit code 2 (no traceback)."""
    @functools.wraps(main)
    def run(argv=None) -> int:
        try:
            return main(argv)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return run
