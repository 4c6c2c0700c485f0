"""`trilevel-search`: search example/token/attention keep ratios for faster ViT training.

    trilevel-search --model deit_t --budget 40            # built-in digits, this machine
    trilevel-search --model deit_t --dataset folder --data /data/cifar10 --address auto
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys

from trilevel.core.cli import RUN_FLAGS, OneLineParser, add_run_flags, add_version_flag
from trilevel.core.config import DEFAULT_EPOCHS, RunConfig
from trilevel.core.errors import UserError
from trilevel.store.run_store import FULL_EPOCHS

from .constants import (EPOCHS_AUTO, EPOCHS_AUTO_MAX, EPOCHS_AUTO_START, FIDELITY_FACTOR, FIDELITY_MAX_SHARE,
                        PAPERS_MODES, SAMPLERS, TRAIN_SHORTER_FRACTIONS)

def _grace(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of epochs or auto, got {text!r}") from None


def _epochs(text: str) -> int | str:
    """--epochs: a number of epochs, or auto (search/epochs_auto.py)."""
    if text.strip().lower() == EPOCHS_AUTO:
        return EPOCHS_AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of epochs or auto, got {text!r}") from None


def _fractions(text: str) -> tuple[float, ...]:
    """`--train-shorter`: comma-separated fractions (1/3 style allowed), or none."""
    if text.strip().lower() in ("none", "off", "0"):
        return ()
    out = []
    for part in text.split(","):
        num, _, den = part.strip().partition("/")
        try:
            out.append(float(num) / (float(den) if den else 1.0))
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"expected fractions like 1/3,1/2,2/3 or none, got {text!r}") from None
    return tuple(out)


def _factor(text: str) -> float:
    """--fidelity: a factor > 1, or off/none/0."""
    if text.strip().lower() in ("off", "none", "0"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a factor like 2 or off, got {text!r}") from None
    if value <= 1:
        raise argparse.ArgumentTypeError(f"the factor must be > 1 (or off), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="trilevel-search", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="YAML base run config (model, data, recipe); flags override it")
    add_version_flag(p)
    add_run_flags(p, epochs_type=_epochs, epochs_help=(
        f"epochs of each trial (default {DEFAULT_EPOCHS}); auto: the shortest length at which dense stops gaining "
        "more than the noise, from dense trained first at 3, 6, 12, ... epochs up to --max-epochs"))
    search = p.add_argument_group("search")
    search.add_argument("--max-epochs", type=int, default=EPOCHS_AUTO_MAX, metavar="N",
                        help=f"--epochs auto trains dense at most this long (default {EPOCHS_AUTO_MAX})")
    search.add_argument("--budget", type=int, default=40, help="number of trials (default 40)")
    search.add_argument("--space", default="tri-level", help="tri-level (default), pss, full, or a YAML file")
    search.add_argument("--sampler", default="tpe", help=f"Optuna sampler: {', '.join(SAMPLERS)}")
    search.add_argument("--objective", default="time", choices=["time", "flops"],
                        help="cost to minimise: training time against dense, timed in pairs inside each trial "
                             "(default; other work on the machine does not move it) or FLOPs (deterministic)")
    search.add_argument("--papers", default="first", choices=PAPERS_MODES,
                        help="first (default): try the papers' settings the space holds right after dense "
                             "(counted in the budget); off: sampled points only")
    search.add_argument("--grace-epochs", type=_grace, default=None, metavar="N|auto",
                        help="epochs before a trial can be stopped (default auto: once the keep schedule settles)")
    search.add_argument("--reduction-factor", type=int, default=3, help="MO-ASHA keeps the top 1/factor per rung")
    pick = p.add_argument_group("noise and the pick")
    pick.add_argument("--max-acc-drop", type=float, default=0.5,
                      help="accuracy points below dense still acceptable for best.yaml (default 0.5)")
    pick.add_argument("--baseline-seeds", type=int, default=3, help="dense runs (seeds) for the noise band")
    pick.add_argument("--finalists", type=int, default=3,
                      help="front configurations re-trained on the dense baseline's extra seeds before best.yaml "
                           "is chosen on their mean accuracy (default 3; 0: pick on one seed)")
    pick.add_argument("--train-shorter", type=_fractions, default=TRAIN_SHORTER_FRACTIONS, metavar="F,F,..|none",
                      help="also train dense for these fractions of the epochs on the dense seeds; the pick must "
                           "beat that at equal speed (default 1/3,1/2,2/3)")
    pick.add_argument("--fidelity", type=_factor, default=FIDELITY_FACTOR, metavar="FACTOR|off",
                      help="train dense, the pick and its rivals FACTOR x longer on one seed and report whether the "
                           f"ranking holds (default {FIDELITY_FACTOR:g}; skipped, with the reason, when too costly)")
    pick.add_argument("--fidelity-max-share", type=float, default=FIDELITY_MAX_SHARE, metavar="S",
                      help="run the fidelity check only if it costs at most this share of the trials' training "
                           f"time (default {FIDELITY_MAX_SHARE:g})")
    pick.add_argument("--full-epochs", type=int, default=FULL_EPOCHS, metavar="N",
                      help="epochs of the full training you will run with the result: the report's final command "
                           f"and its saving estimate plan for it (default {FULL_EPOCHS}, DeiT's)")
    resources = p.add_argument_group("resources and cluster")
    resources.add_argument("--cpus-per-trial", type=float, default=1.0)
    resources.add_argument("--gpus-per-trial", type=float, default=0.0, help="fractional allowed, e.g. 0.25")
    resources.add_argument("--workers-per-trial", type=int, default=1, metavar="N",
                           help="train each trial data-parallel on N Ray Train workers (DDP: gloo on CPU, NCCL on "
                                "GPU), each with --cpus-per-trial CPUs and --gpus-per-trial GPUs (default 1: one process)")
    resources.add_argument("--concurrency", type=int,
                           help="trials at once (default: CPUs / (cpus-per-trial x workers-per-trial))")
    resources.add_argument("--address", help="join an existing Ray cluster (e.g. auto or HOST:PORT)")
    resources.add_argument("--storage", metavar="URI",
                           help="where Ray Tune keeps checkpoints and the run's records are mirrored, for a cluster "
                                "whose machines share no disk: s3://BUCKET/PATH, gs://BUCKET/PATH or a path every "
                                "node mounts (credentials and endpoint from AWS_* / GOOGLE_* variables); with "
                                "--resume on another machine, the search continues from what is stored there")
    output = p.add_argument_group("output")
    output.add_argument("--output", default="runs", help="parent directory of run directories")
    output.add_argument("--name", help="run name (default MODEL-DATASET-SPACE)")
    output.add_argument("--resume", action="store_true", help="continue an interrupted search to its budget")
    output.add_argument("--no-live", action="store_true", help="no live progress view")
    output.add_argument("--keep-checkpoints", action="store_true",
                        help="keep the trials' checkpoints once the search has finished (default: removed; "
                             "they only serve resuming an unfinished search)")
    return p


def options_from_args(args: argparse.Namespace, argv: list[str]):
    from .runner import SearchOptions

    base = (RunConfig.load(args.config) if args.config else RunConfig()).to_dict()  # as trilevel-train
    base.update({k: getattr(args, k) for k in RUN_FLAGS if getattr(args, k) is not None})
    epochs_auto = base.get("epochs") == EPOCHS_AUTO
    if epochs_auto:
        base["epochs"] = max(1, min(EPOCHS_AUTO_START, args.max_epochs))  # a placeholder: the curve chooses (search/epochs_auto.py)
    for key in ("data", "initial_checkpoint"):  # trials run in their own directories: absolute paths
        if base.get(key):
            base[key] = os.path.abspath(os.path.expanduser(base[key]))
    run = RunConfig.from_dict(base)
    return SearchOptions(
        run=run, budget=args.budget, space=args.space, sampler=args.sampler, objective=args.objective,
        grace_epochs=args.grace_epochs, reduction_factor=args.reduction_factor,
        max_acc_drop=args.max_acc_drop, baseline_seeds=args.baseline_seeds, finalists=args.finalists,
        train_shorter=tuple(args.train_shorter), fidelity=args.fidelity, fidelity_max_share=args.fidelity_max_share,
        full_epochs=args.full_epochs, papers=args.papers, epochs_auto=epochs_auto, max_epochs=args.max_epochs,
        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, workers_per_trial=args.workers_per_trial,
        concurrency=args.concurrency, address=args.address, storage=args.storage, output=args.output, name=args.name,
        resume=args.resume, seed=args.seed or 0, live=not args.no_live, keep_checkpoints=args.keep_checkpoints,
        command=shlex.join(["trilevel-search", *[a for a in argv if a != "--resume"]]),
    )


def main(argv: list[str] | None = None) -> int:
    """The command: options from flags, SIGTERM treated as Ctrl-C, the search, then the report
    and the exit code (0 done, 2 bad input, EXIT_NOT_LEARNED, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    previous = None
    try:
        from trilevel.store.run_store import NOT_LEARNED, SEARCH_INTERRUPTED
        from trilevel.reports.noise import EXIT_NOT_LEARNED

        from .runner import run_search

        def route_sigterm() -> None:  # after ray.init, which installs its own SIGTERM handler
            nonlocal previous
            previous = signal.signal(signal.SIGTERM, _sigterm_to_sigint)

        opts = options_from_args(args, argv)
        result = run_search(opts, echo=lambda line: print(line, flush=True), on_ray_started=route_sigterm)
    except UserError as exc:
        print(f"trilevel-search: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trilevel-search: interrupted; continue with --resume", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    again = f"{opts.command or 'the same command'} --resume"
    if result.status == NOT_LEARNED:
        print(result.explanation, file=sys.stderr)
        print(f"trilevel-search: dense did not learn; nothing ranked or exported (exit {EXIT_NOT_LEARNED})",
              file=sys.stderr)
        return EXIT_NOT_LEARNED
    if result.summary is not None:
        from trilevel.reports import render_report

        render_report(result.summary)
    if result.status == SEARCH_INTERRUPTED:
        when = "before the trials" if result.summary is None else ""
        print(f"trilevel-search: interrupted{' ' + when if when else ''}; continue with: {again}", file=sys.stderr)
        return 130
    return 0


def _sigterm_to_sigint(signum, frame) -> None:
    """Ray Tune stops gracefully on SIGINT only; route SIGTERM there."""
    os.kill(os.getpid(), signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
