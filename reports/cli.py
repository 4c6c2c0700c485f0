"""`trilevel-report RUN_DIR`: re-render the report, plot and exports of a search, running nothing.

Works on finished, interrupted and still-running searches alike (it only reads `search.json` and
`trials.jsonl`). Bad input is one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from trilevel.core.cli import add_version_flag
from trilevel.core.errors import UserError
from trilevel.reports.selection import PickKind


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trilevel-report",
        description="Show the Pareto-optimal pruning configurations of a trilevel-search run and export "
        "pareto.json/.yaml, best.yaml/.json and pareto.png into the run directory.",
    )
    add_version_flag(parser)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by trilevel-search")
    parser.add_argument("--max-acc-drop", type=float, default=None, metavar="X",
                        help="accuracy budget in percentage POINTS below dense (default: the search's own)")
    parser.add_argument("--no-plot", action="store_true", help="skip pareto.png and pareto.html")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from .noise import EXIT_NOT_LEARNED
        from .render import render_report
        from .summary import write_outputs

        if args.max_acc_drop is not None and not args.max_acc_drop >= 0:
            raise UserError(f"--max-acc-drop must be >= 0 accuracy points, got {args.max_acc_drop:g}")
        summary = write_outputs(args.run_dir, args.max_acc_drop, plot=not args.no_plot)
        render_report(summary)
        if summary.selection.kind == PickKind.NOT_LEARNED:
            return EXIT_NOT_LEARNED
    except UserError as exc:
        print(f"trilevel-report: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `trilevel-report RUN | head`: the reader left; not an error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is silent
        except (OSError, ValueError):
            pass
        return 0
    except OSError as exc:  # e.g. a read-only run directory
        target = exc.filename2 or exc.filename  # os.replace(tmp, dst): name the destination
        where = f": {target}" if target else ""
        print(f"trilevel-report: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
