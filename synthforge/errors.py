"""The two kinds of failure a user can see.

`UserError` is anything the user can fix (recipe, data, arguments): the CLI prints its message as one line and
exits 2. `GateFailed` is a finished run whose quality gates failed: the output stays, the CLI exits 1. Everything
else is a bug and is allowed to raise with a traceback.
"""


class UserError(Exception):
    """A problem with the recipe, the data or the arguments, described in one line that names the culprit."""


class GateFailed(Exception):
    """The run finished but at least one quality gate failed; `result` is the finished RunResult."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result
