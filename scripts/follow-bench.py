#!/usr/bin/env python3
"""make bench-follow: latency and idle CPU of sidecar mode.

Usage: scripts/follow-bench.py   (FOLLOW_SECS, default 60; FOLLOW_RATE lines/s, default 50;
                                  FOLLOW_FILES, default 20; FOLLOW_IDLE_SECS, default 30)

Starts the local file-backed reference server and the real pipeline

    claude-read --follow DIR | tonbo-map | tonbo-batch | tonbo-post

(every stage with its defaults), then writes Claude Code transcript lines at FOLLOW_RATE lines/s
spread over FOLLOW_FILES session files for FOLLOW_SECS seconds. One long-poll reader per session
(`?live=long-poll`) notes when each event becomes readable on the server; the latency of a line is
that moment minus the moment the line was written (same clock). Then the pipeline is left idle for
FOLLOW_IDLE_SECS and the CPU time its four processes use meanwhile is read from /proc. Writes
.bench/FOLLOW.md and the README section between the follow-bench markers.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import quote, urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, ".bench")
BIN = os.path.join(ROOT, "target", "release")
SECS = float(os.environ.get("FOLLOW_SECS", "60"))
RATE = float(os.environ.get("FOLLOW_RATE", "50"))
FILES = int(os.environ.get("FOLLOW_FILES", "20"))
IDLE_SECS = float(os.environ.get("FOLLOW_IDLE_SECS", "30"))
TICK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print("follow-bench:", *a, file=sys.stderr, flush=True)


def session_id(i):
    return f"00000000-0000-4000-8000-{i:012d}"


def line(sid, n, text):
    return json.dumps({"type": "user", "uuid": f"l{n}", "parentUuid": None, "sessionId": sid,
                       "timestamp": "2026-05-01T10:00:00.000Z", "cwd": "/w", "version": "2.1.30",
                       "isSidechain": False, "message": {"role": "user", "content": text}}) + "\n"


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total


class Arrivals:
    """One long-poll loop per stream, noting when each source key is first readable."""

    def __init__(self, base, sessions):
        self.base = urlparse(base)
        self.seen = {}
        self.lock = threading.Lock()
        self.stop = False
        self.threads = [threading.Thread(target=self.follow, args=(s,), daemon=True) for s in sessions]
        for t in self.threads:
            t.start()

    def follow(self, sid):
        path = "/v1/sessions/" + quote(f"claude-code-{sid}", safe="") + "/events"
        offset = "-1"
        conn = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=30)
        while not self.stop:
            try:
                conn.request("GET", f"{path}?offset={offset}&live=long-poll")
                r = conn.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=30)
                time.sleep(0.02)
                continue
            now = time.monotonic()
            if r.status == 404:
                time.sleep(0.02)
                continue
            offset = r.getheader("Stream-Next-Offset") or offset
            if r.status == 200 and body:
                with self.lock:
                    for ev in json.loads(body):
                        key = ev.get("metadata", {}).get("source_key", "")
                        self.seen.setdefault(key, now)

    def close(self):
        self.stop = True


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def main():
    sh = lambda c: subprocess.run(c, shell=True, check=True, executable="/bin/bash")
    log("building release binaries")
    sh(f"cd {ROOT} && cargo build -q --release --bins")
    sh(f"{ROOT}/scripts/ds-server install")
    work = tempfile.mkdtemp(prefix="follow-bench-", dir=BENCH if os.path.isdir(BENCH) else None)
    server_dir = os.path.join(work, "server")
    url = subprocess.run([os.path.join(ROOT, "scripts", "ds-server"), "start", server_dir],
                         check=True, capture_output=True, text=True).stdout.strip()
    projects = os.path.join(work, "projects")
    project = os.path.join(projects, "-bench")
    os.makedirs(project)
    sids = [session_id(i) for i in range(FILES)]
    paths = [os.path.join(project, f"{s}.jsonl") for s in sids]
    for p in paths:
        open(p, "w").close()
    state = os.path.join(work, "post.sqlite")
    read = subprocess.Popen([f"{BIN}/claude-read", "-q", "--follow", projects], stdout=subprocess.PIPE)
    mapper = subprocess.Popen([f"{BIN}/tonbo-map", "-q"], stdin=read.stdout, stdout=subprocess.PIPE)
    batch = subprocess.Popen([f"{BIN}/tonbo-batch", "-q"], stdin=mapper.stdout, stdout=subprocess.PIPE)
    post = subprocess.Popen([f"{BIN}/tonbo-post", "-q", "--api", url, "--state", state], stdin=batch.stdout,
                            env={k: v for k, v in os.environ.items() if k != "TONBO_API_KEY"})
    read.stdout.close()
    mapper.stdout.close()
    batch.stdout.close()
    procs = [read, mapper, batch, post]
    arrivals = Arrivals(url, sids)
    written = {}
    try:
        time.sleep(1.0)  # the backfill of the empty files, and the watcher in place
        n_lines = int(SECS * RATE)
        log(f"writing {n_lines} lines at {RATE:g}/s over {FILES} files")
        files = [open(p, "a") for p in paths]
        start = time.monotonic()
        for n in range(n_lines):
            due = start + n / RATE
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            f = files[n % FILES]
            text = f"line {n} " + "x" * 200
            f.write(line(sids[n % FILES], n, text))
            f.flush()
            written[f"l{n}#0"] = time.monotonic()
        for f in files:
            f.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with arrivals.lock:
                if all(k in arrivals.seen for k in written):
                    break
            time.sleep(0.1)
        with arrivals.lock:
            lat = [arrivals.seen[k] - t for k, t in written.items() if k in arrivals.seen]
            missing = len(written) - len(lat)
        log(f"idle for {IDLE_SECS:g} s")
        time.sleep(2)
        before = cpu_ticks([p.pid for p in procs])
        time.sleep(IDLE_SECS)
        idle_cpu = (cpu_ticks([p.pid for p in procs]) - before) / TICK / IDLE_SECS * 100
    finally:
        arrivals.close()
        read.terminate()
        codes = []
        for p in procs:
            try:
                codes.append(p.wait(timeout=60))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(None)
        subprocess.run([os.path.join(ROOT, "scripts", "ds-server"), "stop", server_dir], check=False)
        shutil.rmtree(work, ignore_errors=True)
    p50, p99, worst = (percentile(lat, 50), percentile(lat, 99), max(lat) if lat else float("nan"))
    ok50, ok99 = p50 <= 0.5, p99 <= 1.5
    rows = [
        f"Measured by `make bench-follow`, {time.strftime('%Y-%m-%d')}: {len(written):,} Claude Code lines "
        f"written at {RATE:g} lines/s across {FILES} session files for {SECS:g} s into the local "
        f"file-backed reference server; `claude-read --follow | tonbo-map | tonbo-batch | tonbo-post`, "
        f"every stage with its defaults (filesystem events, `--linger 200`).",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| latency p50, line written to event readable on the server | {p50 * 1000:,.0f} ms | <= 500 ms: {'met' if ok50 else 'NOT met'} |",
        f"| latency p99 | {p99 * 1000:,.0f} ms | <= 1,500 ms: {'met' if ok99 else 'NOT met'} |",
        f"| latency max | {worst * 1000:,.0f} ms | |",
        f"| lines not on the server within 60 s | {missing} | 0 |",
        f"| CPU of the four stages while idle-following ({IDLE_SECS:g} s) | {idle_cpu:.2f}% of one core | near zero |",
        f"| exit statuses after SIGTERM to the reader | {', '.join(str(c) for c in codes)} | all 0 |",
    ]
    text = "\n".join(rows) + "\n"
    print(text)
    with open(os.path.join(BENCH, "FOLLOW.md") if os.path.isdir(BENCH) else os.devnull, "w") as f:
        f.write(text)
    readme = os.path.join(ROOT, "README.md")
    start_m, end_m = "<!-- follow-bench:start -->", "<!-- follow-bench:end -->"
    with open(readme) as f:
        s = f.read()
    if start_m in s and end_m in s:
        s = re.sub(re.escape(start_m) + ".*?" + re.escape(end_m), lambda _: start_m + "\n" + text + end_m, s,
                   flags=re.S)
        with open(readme, "w") as f:
            f.write(s)
    if missing or any(c != 0 for c in codes):
        sys.exit(1)


if __name__ == "__main__":
    main()
