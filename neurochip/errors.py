"""Errors a user can cause; the CLI turns each into one line and exit code 2."""
import argparse


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
