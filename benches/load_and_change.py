#!/usr/bin/env python3
"""Load-and-change run (issue 11): hamn under mixed load while its data changes.

    python3 benches/load_and_change.py [--bin target/release/hamn] [--seconds 60]
                                       [--connections 64] [--change-every 3]

Starts `hamn serve` (release build) on a fresh embedded store with the demo data and a
collection `churn` (the synthetic traffic counts), on 127.0.0.1 only, then for --seconds:

- --connections threads, each with its own keep-alive connection, send a mix of requests
  without pause: bbox pages, CQL2 filters, sorted pages, single items, tiles of several
  zoom levels, collection documents;
- 4 of those threads instead walk `churn` page by page (limit 7, cursors from `next` links)
  from start to end, again and again, and check every walk: no feature id twice, and as
  many ids as the walk's first page said were matched (a 410 restarts the walk; counted);
- one thread changes `churn` every --change-every seconds, alternately replacing it
  (`hamn ingest --mode replace --force`) and appending to it (`--mode append`);
- the server's resident memory is sampled every second.

Prints one JSON object: requests by status, errors (5xx, connection failures: must be 0),
walks done, walks with a skip or a repeat (must be 0), restarts by 410, changes made, and
resident memory (first, max, last). Python threads (standard library only): this is a
correctness-under-load run, not a throughput benchmark; the request rate is Python's.
"""

import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                return r.status, body
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")


def mixed_paths(rng):
    lon, lat = rng.uniform(12.8, 13.4), rng.uniform(55.45, 55.8)
    d = rng.choice([0.01, 0.05, 0.2])
    bbox = f"{lon:.4f},{lat:.4f},{lon + d:.4f},{lat + d:.4f}"
    z = rng.choice([6, 8, 10, 12, 14])
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    import math
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n)
    return rng.choice([
        f"/collections/malmo-miljoparkering/items?bbox={bbox}&limit=50",
        f"/collections/traffic-counts-malmo-lund-synthetic/items?filter={urllib.parse.quote('adt > 10000')}&limit=20",
        "/collections/traffic-counts-malmo-lund-synthetic/items?sortby=-adt&limit=10",
        f"/collections/churn/items?bbox={bbox}",
        f"/collections/churn/items/{rng.randint(1, 150)}",
        f"/collections/hav-bathing-waters/items?bbox={bbox}",
        f"/tiles/WebMercatorQuad/{z}/{y}/{x}",
        f"/collections/churn/tiles/WebMercatorQuad/{z}/{y}/{x}",
        "/collections",
        "/collections/churn",
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/hamn"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--change-every", type=float, default=3)
    ap.add_argument("--port", type=int, default=18472)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="hamn-load-")
    store = os.path.join(work, "store")
    env = dict(os.environ, HAMN_LOG="warn")
    churn_file = os.path.join(ROOT, "data/synthetic/traffic_counts_malmo_lund_synthetic.geojson")
    hamn = lambda *a: subprocess.run([args.bin, "--data-dir", store, *a], env=env,
                                     capture_output=True, text=True)
    server = subprocess.Popen(
        [args.bin, "--data-dir", store, "serve", "--bind", f"127.0.0.1:{args.port}",
         "--demo-data", os.path.join(ROOT, "data"), "--refresh-seconds", "1",
         "--access-log", "false"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
    try:
        probe = Client(args.port)
        deadline = time.time() + 300
        while True:
            try:
                if probe.get("/collections")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                sys.exit("server did not start")
            time.sleep(0.5)
        r = hamn("ingest", churn_file, "-c", "churn")
        if r.returncode != 0:
            sys.exit(r.stderr)
        while probe.get("/collections/churn")[0] != 200:
            time.sleep(0.2)

        stop = time.time() + args.seconds
        lock = threading.Lock()
        statuses = collections.Counter()
        failures = []
        walks = collections.Counter()
        bad_walks = []
        changes = collections.Counter()
        memory = []

        def record(status):
            with lock:
                statuses[status] += 1

        def loader(seed):
            rng = random.Random(seed)
            c = Client(args.port)
            while time.time() < stop:
                path = mixed_paths(rng)
                try:
                    status, _ = c.get(path)
                except OSError as e:
                    with lock:
                        failures.append(f"{path}: {e}")
                    continue
                record(status)
                if status >= 500:
                    with lock:
                        failures.append(f"{path}: {status}")

        def walker():
            c = Client(args.port)
            while time.time() < stop:
                path = "/collections/churn/items?limit=7"
                seen, expected, restarted = [], None, False
                while path and time.time() < stop + 30:
                    try:
                        status, body = c.get(path)
                    except OSError as e:
                        with lock:
                            failures.append(f"walk {path}: {e}")
                        break
                    record(status)
                    if status == 410:
                        with lock:
                            walks["restarted by 410"] += 1
                        restarted = True
                        break
                    if status != 200:
                        with lock:
                            failures.append(f"walk {path}: {status}")
                        break
                    doc = json.loads(body)
                    if expected is None:
                        expected = doc["numberMatched"]
                    seen.extend(str(f["id"]) for f in doc["features"])
                    nxt = [l["href"] for l in doc["links"] if l["rel"] == "next"]
                    path = urllib.parse.urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
                if restarted or path:
                    continue
                with lock:
                    walks["whole"] += 1
                    if len(seen) != len(set(seen)) or len(seen) != expected:
                        bad_walks.append({"expected": expected, "got": len(seen), "distinct": len(set(seen))})

        def changer():
            n = 0
            while time.time() < stop:
                time.sleep(args.change_every)
                mode = "replace" if n % 2 == 0 else "append"
                extra = ["--force"] if mode == "replace" else []
                r = hamn("ingest", churn_file, "-c", "churn", "--mode", mode, *extra)
                with lock:
                    changes[mode if r.returncode == 0 else f"{mode} failed"] += 1
                n += 1

        def sampler():
            while time.time() < stop:
                memory.append(rss_kib(server.pid))
                time.sleep(1)

        threads = [threading.Thread(target=walker) for _ in range(4)]
        threads += [threading.Thread(target=loader, args=(i,)) for i in range(args.connections - 4)]
        threads += [threading.Thread(target=changer), threading.Thread(target=sampler)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - started
        alive = server.poll() is None
        print(json.dumps({
            "seconds": round(elapsed, 1),
            "connections": args.connections,
            "requests": sum(statuses.values()),
            "requests_per_second": round(sum(statuses.values()) / elapsed),
            "statuses": dict(sorted(statuses.items())),
            "errors": len(failures),
            "first_errors": failures[:5],
            "walks": dict(walks),
            "walks_with_skip_or_repeat": len(bad_walks),
            "bad_walks": bad_walks[:5],
            "changes": dict(changes),
            "rss_mib": {"first": round(memory[0] / 1024) if memory else None,
                        "max": round(max(memory) / 1024) if memory else None,
                        "last": round(memory[-1] / 1024) if memory else None},
            "server_alive": alive,
        }, indent=1))
        ok = alive and not failures and not bad_walks and walks["whole"] > 0
        return 0 if ok else 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
