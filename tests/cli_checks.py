"""Shared by the experiment tests: bad command-line input ends in one clear error before any model loads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lens_bias.errors import InputError


def assert_refused(main: Callable[[list[str]], Any], argv: list[str], message: str, capsys) -> None:
    """``main(argv)`` (with a model name that cannot load) ends in one clear error naming ``message``: an
    InputError, or argparse's usage error (exit code 2) for malformed flags."""
    try:
        main(["--model", "no-such-model", *argv])
    except InputError as error:
        assert message in str(error)
    except SystemExit as exit_:  # argparse's own usage errors
        assert exit_.code == 2 and message in capsys.readouterr().err
    else:
        pytest.fail("the bad input was accepted")
