"""The last 24 hours, one point a minute: what the status page plots.

Every `interval` seconds (60) the history awaits its `source`, a callable that returns one
point: counts by status class and p50/p95/p99 per route template and per webhook over the
minute just ended, the outbox depth, the gateway latency, shards and guilds, rate-limit refusals
and Drive sync runs in that minute. The history never reads the recorder, the series or the
database itself: `control.status_page` builds the source from what `/api/observability` reads.

Memory is bounded whatever the traffic: at most `MINUTES` points (a ring), each packed into one
`bytes` object (28 bytes per series) with a tuple of series names, and at most `MAX_ROUTES`
routes and `MAX_WEBHOOKS` webhooks per point (the rest are summed into `(other)`). Route names
are templates (`GET /api/v1/guilds/{guild_id}/config`), never raw paths, and one string object
is shared by every point that names it. Nothing runs per request: with nobody looking, the
history costs one source call a minute.
"""

from __future__ import annotations

import asyncio
import math
import struct
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from utils.logging import get_logger

log = get_logger(__name__)

MINUTES = 24 * 60
INTERVAL_SECONDS = 60.0
MAX_ROUTES = 100
MAX_WEBHOOKS = 20
OTHER = "(other)"
CLASSES = ("2xx", "4xx", "429", "5xx")
QUANTILES = ("p50", "p95", "p99")
OUTBOX_STATUSES = ("pending", "sending", "dead")

# One point's gauges: wall time, seconds covered, gateway latency (ms, NaN: unknown), outbox
# pending/sending/dead, guilds, shards (-1: unknown), refusals and Drive sync runs in the
# point, then requests by class over every route.
_HEAD = struct.Struct("<dff5i2I4I")
# One series: requests by class, then p50/p95/p99 in ms (NaN: no sample).
_SERIES = struct.Struct("<4I3f")

Source = Callable[[], Awaitable[Mapping[str, Any]]]
Clock = Callable[[], float]


class _Point:
    __slots__ = ("blob", "names", "routes")

    def __init__(self, blob: bytes, names: tuple[str, ...], routes: int) -> None:
        self.blob = blob  # _HEAD, then one _SERIES per name
        self.names = names  # routes first, then webhooks
        self.routes = routes  # how many of `names` are routes


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else -1


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def _count(value: Any) -> int:
    number = _int(value)
    return number if 0 <= number < 2**32 else 0 if number < 0 else 2**32 - 1


def _requests(summary: Mapping[str, Any]) -> int:
    counts = summary.get("counts") or {}
    return sum(_count(counts.get(kind, 0)) for kind in CLASSES)


def _series_record(summary: Mapping[str, Any]) -> tuple[list[int], list[float]]:
    counts = summary.get("counts") or {}
    latency = summary.get("latency_ms") or {}
    return [_count(counts.get(kind, 0)) for kind in CLASSES], \
        [_float(latency.get(name)) for name in QUANTILES]


def _capped(table: Mapping[str, Any], limit: int) -> list[tuple[str, list[int], list[float]]]:
    """The busiest `limit - 1` series as they are and the rest summed into OTHER (its
    quantiles: the highest of theirs, an upper bound)."""
    if len(table) <= limit:
        return [(name, *_series_record(summary)) for name, summary in table.items()]
    names = sorted(table, key=lambda name: -_requests(table[name]))
    rows = [(name, *_series_record(table[name])) for name in names]
    kept, rest = rows[:limit - 1], rows[limit - 1:]
    counts = [sum(row[1][i] for row in rest) for i in range(len(CLASSES))]
    latency = [max((row[2][i] for row in rest if not math.isnan(row[2][i])), default=math.nan)
               for i in range(len(QUANTILES))]
    return [*kept, (OTHER, counts, latency)]


def _nullable(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) else round(value, digits)


class History:
    """A ring of per-minute points, filled by awaiting `source` every `interval` seconds."""

    def __init__(self, source: Source, *, interval: float = INTERVAL_SECONDS,
                 minutes: int = MINUTES, clock: Clock = time.time) -> None:
        self.source = source
        self.interval = interval
        self.capacity = minutes
        self._clock = clock
        self._points: deque[_Point] = deque(maxlen=minutes)
        self._names: dict[str, str] = {}  # one shared string per series name
        self.ticks = 0
        self.tick_seconds = 0.0  # wall time spent taking points, source included

    def __len__(self) -> int:
        return len(self._points)

    async def tick(self) -> None:
        """Take one point now."""
        started = time.perf_counter()
        try:
            self.add(await self.source())
        finally:
            self.ticks += 1
            self.tick_seconds += time.perf_counter() - started

    async def run(self) -> None:
        """Take a point every `interval` seconds until cancelled; a failing source is logged
        and the minute skipped."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception as exc:
                log.warning("history point skipped", error_type=type(exc).__name__)

    def _intern(self, name: str) -> str:
        shared = self._names.get(name)
        if shared is None:
            if len(self._names) > 4 * (MAX_ROUTES + MAX_WEBHOOKS):
                # Forget names no point uses any more (routes come and go on reloads).
                alive = {n for point in self._points for n in point.names}
                self._names = {n: n for n in self._names if n in alive}
            shared = self._names[name] = sys.intern(str(name)[:200])
        return shared

    def add(self, point: Mapping[str, Any]) -> None:
        """Store one point (the shape `control.status_page` documents); missing parts are
        stored as unknown."""
        routes = _capped(point.get("routes") or {}, MAX_ROUTES)
        webhooks = _capped(point.get("webhooks") or {}, MAX_WEBHOOKS)
        totals = [sum(row[1][i] for row in routes) for i in range(len(CLASSES))]
        outbox = point.get("outbox") or {}
        head = _HEAD.pack(
            float(point.get("t", self._clock())), _float(point.get("seconds", self.interval)),
            _float(point.get("gateway_latency_ms")),
            *(_int(outbox.get(status)) for status in OUTBOX_STATUSES),
            _int(point.get("guilds")), _int(point.get("shards")),
            _count(point.get("rate_limit_refusals", 0)), _count(point.get("drive_sync_runs", 0)),
            *(min(total, 2**32 - 1) for total in totals))
        body = b"".join(_SERIES.pack(*counts, *latency) for _, counts, latency
                        in (*routes, *webhooks))
        names = tuple(self._intern(name) for name, _, _ in (*routes, *webhooks))
        self._points.append(_Point(head + body, names, len(routes)))

    def memory_bytes(self) -> int:
        """What the ring holds: points, their blobs and name tuples, the shared names."""
        total = sys.getsizeof(self._points) + sys.getsizeof(self._names)
        for point in self._points:
            total += sys.getsizeof(point) + sys.getsizeof(point.blob) \
                + sys.getsizeof(point.names)
        return total + sum(sys.getsizeof(name) for name in self._names)

    def read(self, minutes: int) -> dict[str, Any]:
        """The last `minutes` points, as columns: one list entry per point, `null` where a
        series had no request or a gauge was unknown."""
        points = list(self._points)[-minutes:] if minutes > 0 else []
        rows: list[dict[str, Any]] = []
        columns: dict[str, dict[str, dict[str, Any]]] = {"routes": {}, "webhooks": {}}
        for index, point in enumerate(points):
            head = _HEAD.unpack_from(point.blob)
            (t, seconds, gateway, pending, sending, dead, guilds, shards, refusals,
             drive_runs) = head[:10]
            rows.append({
                "t": round(t, 3), "seconds": _nullable(seconds),
                "requests": dict(zip(CLASSES, head[10:], strict=True)),
                "outbox": None if pending < 0 else
                {"pending": pending, "sending": max(sending, 0), "dead": max(dead, 0)},
                "gateway_latency_ms": _nullable(gateway, 1),
                "guilds": None if guilds < 0 else guilds,
                "shards": None if shards < 0 else shards,
                "rate_limit_refusals": refusals, "drive_sync_runs": drive_runs,
            })
            for position, name in enumerate(point.names):
                values = _SERIES.unpack_from(point.blob, _HEAD.size + position * _SERIES.size)
                table = columns["routes" if position < point.routes else "webhooks"]
                series = table.get(name)
                if series is None:
                    series = table[name] = {
                        "counts": {kind: [None] * len(points) for kind in CLASSES},
                        "latency_ms": {q: [None] * len(points) for q in QUANTILES}}
                for kind, value in zip(CLASSES, values[:4], strict=True):
                    series["counts"][kind][index] = value
                for q, value in zip(QUANTILES, values[4:], strict=True):
                    series["latency_ms"][q][index] = _nullable(value)
        return {"interval_seconds": self.interval, "capacity_minutes": self.capacity,
                "points": rows, "routes": dict(sorted(columns["routes"].items())),
                "webhooks": dict(sorted(columns["webhooks"].items())),
                "memory_bytes": self.memory_bytes(),
                "cost": {"ticks": self.ticks, "seconds": round(self.tick_seconds, 6)}}

    def names(self) -> Iterable[str]:
        """Every series name some point holds (tests and the memory bound use it)."""
        return {name for point in self._points for name in point.names}
