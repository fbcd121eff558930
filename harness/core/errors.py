"""The harness's domain exceptions: library code raises these (and logs through
``logging.getLogger(__name__)``); only the command line (harness/cli.py) turns them into a message
and an exit status — 1 for :class:`HarnessError` and :class:`RunFailed`, 2 for :class:`UsageProblem`
(docs/architecture.md, "Exit status")."""

from __future__ import annotations


class HarnessError(Exception):
    """Something the user must be told in one line; exit status 1."""


class UsageProblem(HarnessError):
    """What was asked cannot be done as asked (a config clash, another run in the folder); exit status 2."""


class RunFailed(HarnessError):
    """Work ran and some of it failed; what failed has been logged already. Exit status 1, no further message."""
