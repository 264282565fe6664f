"""REST latency of the task list with 10,000 tasks, one client and 20 concurrent clients.

A site holds 10,000 enabled tasks with the varied schedules of ``bench.idle_cpu`` (none
fires while we measure); ``taskops serve`` runs it (``taskops.testing.serve_site``: the
REST API and the engine in one jupyter-server). Clients send
``GET /apps/WebHostTaskManagement/api/v1/tasks`` with ``Authorization: token ...`` over
keep-alive ``http.client`` connections and read the whole answer (not parsed):

- one client, requests one after another;
- 20 clients at once (threads), each sending its requests one after another.

Latency is from sending the request to the last byte of the answer: median and p99, and
requests per second over each phase. As the floor, the same server's cheapest authenticated
route, ``GET .../engine`` (the lease row), under the same two loads. A second server then
holds the same number of tasks with only 500 distinct schedules among them (so taskops'
per-expression caches, 4,096 entries, always hit) for one more one-client row.
Target: p50 at most 250 ms for the task list with 10,000 tasks (one client).
"""

from __future__ import annotations

import http.client
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import Table, p50, p99, ratio, site_with_tasks
from bench.idle_cpu import idle_schedules
from taskops.testing import API_PATH, Served, serve_site

TARGET_MS = 250.0
CLIENTS = 20
FEW = 500


class Client:
    """One keep-alive connection sending authenticated GETs."""

    def __init__(self, served: Served) -> None:
        parts = urlsplit(served.url)
        self._connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=300
        )
        self._headers = {"Authorization": f"token {served.token}"}

    def get(self, path: str) -> tuple[float, int]:
        """(seconds, body size) of one GET; raises on a status other than 200."""
        start = time.perf_counter()
        self._connection.request("GET", API_PATH + path, headers=self._headers)
        response = self._connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return elapsed, len(body)

    def close(self) -> None:
        self._connection.close()


def sequential(served: Served, path: str, count: int) -> tuple[list[float], float, int]:
    """Latencies of ``count`` GETs by one client, the phase's wall time and the body size."""
    client = Client(served)
    try:
        client.get(path)  # the connection, and the first answer, are not measured
        begin = time.perf_counter()
        results = [client.get(path) for _ in range(count)]
        return [s for s, _ in results], time.perf_counter() - begin, results[-1][1]
    finally:
        client.close()


def concurrent(served: Served, path: str, clients: int, each: int) -> tuple[list[float], float]:
    """Latencies of ``clients`` threads sending ``each`` GETs, and the phase's wall time."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    connections = [Client(served) for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def work(client: Client) -> None:
        try:
            start.wait()
            mine = [client.get(path)[0] for _ in range(each)]
            with lock:
                latencies.extend(mine)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in connections]
    try:
        for thread in threads:
            thread.start()
        start.wait()
        begin = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - begin
    finally:
        for client in connections:
            client.close()
    if errors:
        raise errors[0]
    return latencies, elapsed


def make_site(root: Path, schedules: list[str]) -> Path:
    return site_with_tasks(
        root,
        [
            {"name": f"Task{index:05d}", "schedule": expression, "scriptPath": "tasks/noop.sh"}
            for index, expression in enumerate(schedules)
        ],
        scripts={"tasks/noop.sh": "#!/bin/sh\nexit 0\n"},
    )


def main(quick: bool) -> list[Table]:
    count = 2_000 if quick else 10_000
    sequential_n, each = (10, 2) if quick else (30, 2)
    schedules = idle_schedules(count, datetime.now(UTC))
    # the same tasks with schedules drawn from only FEW distinct ones (sites often repeat
    # "0 3 * * *"): what the task list costs when taskops' per-expression caches all hit
    few = list(dict.fromkeys(schedules))[:FEW]
    repeated = [few[index % len(few)] for index in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-rest-") as tmp:
        root = Path(tmp)
        results = {}
        served = serve_site(root / "main", make_site(root / "site", schedules), timeout=300)
        try:
            for label, path in (("tasks", "/tasks"), ("engine", "/engine")):
                one, one_wall, size = sequential(served, path, sequential_n)
                many, many_wall = concurrent(served, path, CLIENTS, each)
                results[label] = (one, one_wall, many, many_wall, size)
        finally:
            served.stop()
        served = serve_site(root / "few", make_site(root / "few-site", repeated), timeout=300)
        try:
            few_one, few_wall, few_size = sequential(served, "/tasks", sequential_n)
        finally:
            served.stop()

    table = Table(
        title=f"REST: GET /tasks with {count:,} tasks on a running taskops serve",
        columns=["requests", "p50 ms", "p99 ms", "req/s", "answer KiB", "p50 vs floor"],
        notes=[
            f"Target: p50 at most {TARGET_MS:g} ms for GET /tasks with 10,000 tasks (one "
            f"client). {len(set(schedules)):,} distinct schedules among the tasks (the last "
            f"row: {len(few)}). Floor: GET /engine on the same server under the same load. "
            f"{CLIENTS} clients: threads of this process, each with its own keep-alive "
            "connection, all on the same 2 cores as the server.",
        ],
    )
    floor_one, floor_many = p50(results["engine"][0]), p50(results["engine"][2])
    rows = []
    for label, path in (("tasks", "GET /tasks"), ("engine", "floor: GET /engine")):
        one, one_wall, many, many_wall, size = results[label]
        rows.append((f"{path}, 1 client", one, one_wall, size, floor_one))
        rows.append((f"{path}, {CLIENTS} clients", many, many_wall, size, floor_many))
    rows.append(
        (
            f"GET /tasks, 1 client, {len(few)} distinct schedules",
            few_one,
            few_wall,
            few_size,
            floor_one,
        )
    )
    for subject, latencies, wall, size, floor in rows:
        table.add(
            subject,
            requests=len(latencies),
            **{
                "p50 ms": p50(latencies) * 1000,
                "p99 ms": p99(latencies) * 1000,
                "req/s": len(latencies) / wall,
                "answer KiB": size / 1024,
                "p50 vs floor": ratio(p50(latencies), floor),
            },
        )
    return [table]
