"""Package attributes imported on first use (PEP 562), so the command-line tools' `--help` and
`--version` answer without loading torch, timm, Ray or Optuna (seconds on a laptop).

Hand-written: the standard library has `importlib.util.LazyLoader` for whole modules, not for a
package's re-exported names; this is the few lines that do the latter.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package` that imports `exports[name]` (a submodule name)
    the first time `name` is used, then caches it in the package's namespace."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        namespace[name] = value
        return value

    return __getattr__
