"""Phase `proxy_length` (`--epochs auto`): dense's curve at doubling lengths on the search's seed
(search/epochs_auto.py decides), each length recorded in search.json as it finishes; returns the
chosen length. Everything after trains at it."""

from __future__ import annotations

from trilevel.core.errors import UserError
from trilevel.store.run_store import CurvePoint, EpochsAuto

from .. import epochs_auto
from . import Context


def run(ctx: Context) -> EpochsAuto:
    """Train the lengths the record lacks (resume keeps the finished ones); returns the record with
    `chosen` set. Ctrl-C raises KeyboardInterrupt with the finished lengths saved."""
    record = ctx.info.epochs_auto
    trainable = ctx.make_trainable()  # nothing is finished yet: no trial has started

    def measure(epochs: int) -> tuple[CurvePoint, float | None, int | None]:
        runs = ctx.run_points([{**ctx.dense, "seed": record.seed, "epochs": epochs}], f"epochs-auto-{epochs}",
                              trainable)
        if not runs:  # stopped before it started
            raise KeyboardInterrupt
        run = runs[0]
        if run.error is not None:
            raise UserError(f"dense failed while --epochs auto trained it for {epochs} epochs: {run.error[:300]}")
        if not run.finished(epochs):  # stopped (Ctrl-C): resume later
            raise KeyboardInterrupt
        ctx.note_data(run.report)
        return CurvePoint(epochs, run.report.val_acc, run.report.train_seconds), run.report.chance_acc, \
            run.report.num_val

    return epochs_auto.run(record, measure, lambda _: ctx.record(epochs_auto=record), ctx.say)
