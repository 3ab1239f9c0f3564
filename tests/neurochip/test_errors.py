"""neurochip.errors: user errors as one line and exit code 2."""
from __future__ import annotations

import pytest

from neurochip.errors import ArgumentParser, CheckpointError, UserError, command


def test_command_turns_a_user_error_into_one_line_and_exit_2(capsys):
    @command
    def main(argv=None):
        if argv:
            raise CheckpointError(f"bad {argv[0]}")
        print("ran")
        return 0

    assert main([]) == 0 and capsys.readouterr().out == "ran\n"
    assert main(["x.npz"]) == 2
    assert capsys.readouterr().err == "error: bad x.npz\n"
    assert main.__name__ == "main"


def test_command_lets_a_bug_through():
    @command
    def main(argv=None):
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):
        main([])


def test_argument_parser_errors_are_user_errors():
    p = ArgumentParser(prog="x")
    p.add_argument("--n", type=int)
    with pytest.raises(UserError, match="argument --n: invalid int value"):
        p.parse_args(["--n", "two"])
