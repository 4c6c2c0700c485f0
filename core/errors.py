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


def suggest_across(name: str, places: dict[str, list[str]]) -> str:
    """' (did you mean X?)' for the closest name over several places, where a place is a label
    format (e.g. "'sparsity.{}'" or "'{}' at the top level") -> its valid names. The first place
    wins ties, so a key is matched where it stands before elsewhere."""
    best, score = None, 0.0
    for label, names in places.items():
        for match in difflib.get_close_matches(str(name), [str(n) for n in names], n=1):
            ratio = difflib.SequenceMatcher(None, str(name), match).ratio()
            if ratio > score:
                best, score = label.format(match), ratio
    return f" (did you mean {best}?)" if best else ""
