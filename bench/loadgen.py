"""A small HTTP/1.1 load generator for loopback benchmarks (asyncio, keep-alive connections).

Bounded by design: it sends at most the requests it is given and stops at a time limit, and it
only ever connects to the host and port it is given (the benchmark passes 127.0.0.1).
Two modes:
- closed loop: `concurrency` connections, each sending its next request as soon as the previous
  one is answered (measures the server's capacity);
- open loop: requests started at a fixed `rate` per second whatever the server does (measures
  latency at an offered load, without coordinated omission).
"""

import asyncio
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Request:
    path: str
    body: bytes
    headers: dict


@dataclass
class Result:
    sent: int = 0
    statuses: dict = field(default_factory=dict)
    latencies_ms: list = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0
    total: int = 0  # requests given; those not sent before the time limit count as errors

    def record(self, status: int, latency_ms: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ms.append(latency_ms)

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def error_rate(self) -> float:
        """Share of the requests given that did not end in a 2xx (unsent ones included)."""
        total = self.total or self.sent
        return round(1 - self.ok / total, 4) if total else 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[
            min(999, max(0, int(p * 10) - 1))
        ]

    def summary(self) -> dict:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": self.errors,
            "error_rate": self.error_rate,
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
        }


class _Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def _open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, request: Request) -> int:
        if self.writer is None:
            await self._open()
        head = [f"POST {request.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        head += [f"Content-Length: {len(request.body)}", "Connection: keep-alive", "", ""]
        self.writer.write("\r\n".join(head).encode() + request.body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(conn: _Connection, request: Request, result: Result, retries: int) -> None:
    for attempt in range(retries + 1):
        started = time.perf_counter()
        try:
            status = await conn.send(request)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            conn.close()
            result.errors += 1
            if attempt == retries:
                return
            await asyncio.sleep(0.05 * (attempt + 1))
            continue
        result.record(status, (time.perf_counter() - started) * 1000)
        # A sender like Stripe retries every non-2xx; the benchmark does the same.
        if 200 <= status < 300 or attempt == retries:
            return
        await asyncio.sleep(0.05 * (attempt + 1))


async def closed_loop(host, port, requests, *, concurrency=32, time_limit=60.0, retries=0):
    result = Result(sent=len(requests), total=len(requests))
    queue = list(reversed(requests))
    deadline = time.perf_counter() + time_limit

    async def worker():
        conn = _Connection(host, port)
        while queue and time.perf_counter() < deadline:
            await _one(conn, queue.pop(), result, retries)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    result.sent = len(requests) - len(queue)
    return result


async def open_loop(host, port, requests, *, rate=200.0, time_limit=60.0, pool=64, retries=0):
    result = Result(sent=0, total=len(requests))
    idle = [_Connection(host, port) for _ in range(pool)]
    tasks = []
    started = time.perf_counter()

    async def fire(request):
        conn = idle.pop() if idle else _Connection(host, port)
        try:
            await _one(conn, request, result, retries)
        finally:
            idle.append(conn)

    for index, request in enumerate(requests):
        due = started + index / rate
        now = time.perf_counter()
        if now - started > time_limit:
            break
        if due > now:
            await asyncio.sleep(due - now)
        result.sent += 1
        tasks.append(asyncio.ensure_future(fire(request)))
    await asyncio.gather(*tasks)
    result.elapsed_s = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return result


def run_closed(host, port, requests, **kwargs) -> Result:
    return asyncio.run(closed_loop(host, port, requests, **kwargs))


def run_open(host, port, requests, **kwargs) -> Result:
    return asyncio.run(open_loop(host, port, requests, **kwargs))
