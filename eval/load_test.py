"""Load-test a running ``promptrec serve`` on this machine: N POST /recommend requests from C
concurrent clients (threads with httpx), then requests/s and latency percentiles.

Only loopback URLs are accepted (127.0.0.1, ::1, localhost), and both N and the run time are
bounded. Start a server first, e.g.

    promptrec serve --no-llm --port 8765 --concurrency 2 --queue 64 &
    python eval/load_test.py --url http://127.0.0.1:8765 -n 400 -c 16

Users are taken round-robin from the server's data (``--users 1-30`` picks ids 1..30).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx

MAX_REQUESTS, MAX_CONCURRENCY, MAX_SECONDS = 10_000, 64, 600
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def check_url(url: str) -> str:
    """The URL without a trailing slash; ValueError unless it is http on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise ValueError(f"load tests only go to this machine (http://127.0.0.1:PORT), not {url!r}")
    return url.rstrip("/")


def parse_users(spec: str) -> list[str]:
    """'1-30' -> ['1', ..., '30']; '1,5,9' -> ['1', '5', '9']."""
    users: list[str] = []
    for part in spec.split(","):
        low, dash, high = part.strip().partition("-")
        users += [str(u) for u in range(int(low), int(high) + 1)] if dash else [low]
    if not users:
        raise ValueError("no users given")
    return users


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def run(url: str, requests: int, concurrency: int, users: list[str], k: int = 10, use_model: bool = False,
        max_seconds: float = 120.0, timeout: float = 60.0) -> dict:
    """Send ``requests`` POST /recommend from ``concurrency`` threads; returns the report."""
    url = check_url(url)
    if not 1 <= requests <= MAX_REQUESTS or not 1 <= concurrency <= MAX_CONCURRENCY or not 0 < max_seconds <= MAX_SECONDS:
        raise ValueError(f"bounds: 1..{MAX_REQUESTS} requests, 1..{MAX_CONCURRENCY} clients, up to {MAX_SECONDS} s")
    lock = threading.Lock()
    next_index = iter(range(requests))
    latencies: list[float] = []
    statuses: Counter = Counter()
    wrong: list[str] = []
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=timeout) as http:
            while time.monotonic() < deadline:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                user = users[index % len(users)]
                t0 = time.perf_counter()
                try:
                    response = http.post("/recommend", json={"user_id": user, "k": k, "use_model": use_model})
                    status = response.status_code
                    ok = status != 200 or (response.json()["user_id"] == user and len(response.json()["items"]) > 0)
                except httpx.HTTPError as err:
                    status, ok = type(err).__name__, True
                elapsed = time.perf_counter() - t0
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(elapsed)
                    if not ok:
                        wrong.append(user)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    done = sum(statuses.values())
    return {
        "url": url, "requests": requests, "sent": done, "concurrency": concurrency, "k": k, "use_model": use_model,
        "statuses": {str(s): n for s, n in sorted(statuses.items(), key=str)}, "wrong_answers": len(wrong),
        "seconds": round(wall, 3), "requests_per_s": round(done / wall, 1) if wall else 0.0,
        "ok_per_s": round(statuses[200] / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "machine": f"{platform.node()} · {os.cpu_count()} cores · load {os.getloadavg()[0]:.1f}",
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="A loopback promptrec server.")
    parser.add_argument("-n", "--requests", type=int, default=200, help=f"Requests in all (max {MAX_REQUESTS}).")
    parser.add_argument("-c", "--concurrency", type=int, default=16, help=f"Concurrent clients (max {MAX_CONCURRENCY}).")
    parser.add_argument("--users", default="1-30", help="User ids, e.g. 1-30 or 1,5,9.")
    parser.add_argument("-k", type=int, default=10, help="Items per request.")
    parser.add_argument("--use-model", action="store_true", help="Ask for the model's rerank (when the server has one).")
    parser.add_argument("--max-seconds", type=float, default=120.0, help=f"Stop sending after this long (max {MAX_SECONDS}).")
    parser.add_argument("--json", dest="as_json", action="store_true", help="Print the report as JSON.")
    args = parser.parse_args(argv)
    report = run(args.url, args.requests, args.concurrency, parse_users(args.users), args.k, args.use_model,
                 args.max_seconds)
    if args.as_json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['sent']} requests, {report['concurrency']} clients, {report['seconds']} s: "
              f"{report['requests_per_s']} requests/s ({report['ok_per_s']} ok/s); "
              f"p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, max {report['max_ms']} ms; "
              f"statuses {report['statuses']}; wrong answers {report['wrong_answers']}")
    return report


if __name__ == "__main__":
    main()
