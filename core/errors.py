"""One exception type for bad user input.

Every command catches `UserError` at its entry point and prints its message as one line on stderr
with a non-zero exit (2), never a traceback. Raise it with a message that says what is wrong and
what would be right.
"""

import difflib


class UserError(ValueError):
    """Bad input from the user: a clear one-line message, exit code 2."""


def suggest(name: str, valid) -> str:
    """' (did you mean 'x'?)' for the closest valid name, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
