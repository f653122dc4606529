"""Where one shard worker's time goes, stage by stage (not a benchmark: no tshark beside it).

    python benchmarks/worker_stages.py CAPTURE [--shards 2] [--profile]

Runs shard 0 of ``--shards`` of ``sipflow calls CAPTURE --format json`` (the retiring worker
of ``sipflow.shard``) in this process, up to the coordinator's plan, with the stages below
timed by wrapping them: the per-message ones (``call_id_hint``, ``parse_or_failure``,
``Tracker.feed``) and the per-leg ones (freezing, correlation facts, outline, JSON). The
wrappers add about half a microsecond a call, so read the shares, not the absolute figures.
``--profile`` runs the same under cProfile instead and prints its top lines.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from sipflow import shard
from sipflow.model import dialog, tracker, transaction
from sipflow.pipeline import AnalysisOptions, gc_paused

_clock = time.perf_counter
_spent: Counter[str] = Counter()
_calls: Counter[str] = Counter()


def _timed(owner: Any, name: str, label: str) -> None:
    inner: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = _clock()
        try:
            return inner(*args, **kwargs)
        finally:
            _spent[label] += _clock() - began
            _calls[label] += 1

    setattr(owner, name, wrapper)


class _Coordinator:
    """The worker's end of the pipe: answers ``end`` with the last time fed, then stops it."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.ended = False

    def send(self, message: tuple[str, Any]) -> None:
        if message[0] == "fed":
            self.last = message[1][0]

    def poll(self) -> bool:
        return True

    def recv(self) -> tuple[str, Any]:
        if self.last is not None and not self.ended:
            self.ended = True
            return ("end", self.last)
        return ("stop", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("capture")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="cProfile instead of the stage timers")
    args = parser.parse_args()
    if not args.profile:
        for owner, name, label in [
            (shard, "call_id_hint", "Call-ID read alone (every packet)"),
            (shard, "parse_or_failure", "parse (own packets)"),
            (tracker.Tracker, "feed", "Tracker.feed"),
            (tracker.Tracker, "_freeze_leg", "leg frozen"),
            (transaction.TransactionBuilder, "build", "transaction frozen"),
            (dialog.DialogBuilder, "build", "dialog frozen"),
            (tracker.Tracker, "_forget", "leg forgotten"),
            (shard, "_facts", "correlation facts"),
            (shard, "_detached_row", "facts detached (SDP read)"),
            (shard, "leg_outline", "leg outline"),
            (shard, "leg_text", "leg JSON"),
            (shard, "transfer_facts", "transfer facts"),
        ]:
            _timed(owner, name, label)
    worker = shard._Worker(_Coordinator(), (args.capture,), AnalysisOptions(), 0, args.shards)  # type: ignore[arg-type]
    profile = cProfile.Profile() if args.profile else None
    began = _clock()
    with gc_paused():
        if profile is not None:
            profile.enable()
        with suppress(SystemExit):  # the stop after ``end``: the plan is not made here
            worker.run({}, None)
        if profile is not None:
            profile.disable()
    total = _clock() - began
    print(f"shard 0 of {args.shards}, read to the plan: {total:.2f} s")
    if profile is not None:
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(30)
        return 0
    print(f"{'stage':36} {'s':>8} {'share':>6} {'calls':>9} {'us/call':>8}")
    for label, spent in _spent.most_common():
        count = _calls[label]
        print(f"{label:36} {spent:8.2f} {spent / total:6.1%} {count:9,d} {spent / count * 1e6:8.2f}")
    rest = total - sum(_spent.values())
    print(f"{'the rest (reading, dedupe, retire scan)':36} {rest:8.2f} {rest / total:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
