#!/usr/bin/env python3
"""make bench: throughput and memory of every stage, as ratios against floors measured in the
same run, for each source (Claude Code, Codex CLI, OpenCode, ...).

Usage: scripts/bench.py            (BENCH_SIZE=MB per source, default 1000; BENCH_RUNS, default 2;
                                    BENCH_SOURCES=a,b: only those sources, written to
                                    .bench/RESULTS-<sources>.md, the README left alone;
                                    BENCH_URSULA=0, BENCH_CCUSAGE=0: without those rows;
                                    BENCH_LINE_MB, default 100; BENCH_CCUSAGE_LIMIT, default 600 s)

For each source it generates a corpus (scripts/gen-*-corpus.py, cached in .bench/), then times:
  * floors: `cat` over the corpus files (I/O), `json_floor` over the reader's output (a bare JSON
    parse of every line: the CPU floor), and the server's own ingest ceiling (pre-built batch
    bodies POSTed back to back by wrk over one connection, as tonbo-post sends them);
  * each stage alone (reader, tonbo-map, tonbo-batch) and the `read | map | batch` chain, with
    hyperfine; peak RSS of each stage with GNU time; tonbo-map's records/s;
  * the end-to-end backfill into the local file-backed reference server (the whole chain into
    tonbo-post), tonbo-post alone over the pre-built batches, and a re-run that must send nothing;
  * tonbo-post alone over the same batches into Ursula (tonbo's distributed server, built by
    `scripts/ursula install`): a single node, and a 3-node cluster through one node (a follower of
    most streams), with tonbo-post's own CPU per GB of request bodies beside the reference
    server's. Skipped, saying so, when Ursula cannot be built (BENCH_URSULA=0 skips it too).
Claude Code has two corpora: `claude-code` (BENCH_SIZE MB with one session of 300 MB) and
`claude-code-typical` (0.3 x BENCH_SIZE MB in 35 sessions a MB, `gen-claude-corpus.py --typical`:
the shape of a typical ~/.claude/projects, where the target is tonbo-map >= 400,000 records/s).
For each of them, also:
  * `claude-read | tonbo-map`, beside a peer: ccusage (CCUSAGE_VERSION, npm, installed once into
    .bench/ccusage, its native binary run directly) `daily --json --offline` over the same corpus,
    offline and with no network where `unshare -n` works;
  * the front door twice over the unchanged corpus into a fresh server, with `--since-last-run`
    and then with no flag: the second run must send nothing, in at most 5% of the first's time.
For `claude-code`, memory rows: each stage alone (its peak RSS against 64 MB) over the corpus's
largest session alone, and over a session holding one line of BENCH_LINE_MB MB; ccusage over each
too, killed after BENCH_CCUSAGE_LIMIT seconds, with how it ended.
Writes .bench/RESULTS.md and the README section between the bench markers.
"""

import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, ".bench")
# Where `cargo build` puts the binaries (CARGO_TARGET_DIR, as cargo reads it, relative to ROOT).
BIN = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target", "release")
SIZE = int(os.environ.get("BENCH_SIZE", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
SESSIONS = max(10, SIZE)
# The realistic Claude Code corpus: 0.3 of BENCH_SIZE in sessions of about 28 KB, like a typical
# ~/.claude/projects (9,400 files and 265 MB in one user's).
TYPICAL_SIZE = max(1, round(0.3 * SIZE))
TYPICAL_SESSIONS = 35 * TYPICAL_SIZE
# The session of one huge line, for the memory rows.
LINE_MB = int(os.environ.get("BENCH_LINE_MB", "100"))
# What a stage may hold at most, whatever its input.
RSS_TARGET_MB = 64
# The newest 20.x whose native binary is on npm: ccusage 20 is a Rust binary in a per-platform
# optional package, and 20.0.26's are missing (its install cannot run).
CCUSAGE_VERSION = "20.0.24"
CCUSAGE_LIMIT = int(os.environ.get("BENCH_CCUSAGE_LIMIT", "600"))
URSULA = False
CCUSAGE = None


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, executable="/bin/bash", **kw)


def need(tool, package):
    """Installs a Debian package that provides `tool` if it is missing (apt-get, as root or sudo)."""
    if shutil.which(tool):
        return
    log(f"installing {package} for {tool}")
    sudo = "" if os.geteuid() == 0 else "sudo "
    sh(f"{sudo}apt-get install -y -q {package} >/dev/null 2>&1 || ({sudo}apt-get update -q >/dev/null && {sudo}apt-get install -y -q {package} >/dev/null)")


def hyperfine(name, commands):
    """Mean wall seconds per command, by hyperfine; the mean CPU seconds (user + system, the
    command's children included) in `hyperfine.cpu`."""
    out = os.path.join(BENCH, f"hyperfine-{name}.json")
    args = ["hyperfine", "--style", "basic", "--runs", str(RUNS), "--export-json", out, "--shell", "bash"]
    if RUNS > 1:
        args += ["--warmup", "0"]
    for label, cmd in commands:
        args += ["-n", label, cmd]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        results = json.load(f)["results"]
    hyperfine.cpu = {r["command"]: r["user"] + r["system"] for r in results}
    return {r["command"]: r["mean"] for r in results}


def measure(cmd, stdout=None, env=None, limit=None):
    """Runs `cmd` (a list) once under GNU time, its stdout into the file `stdout` (else
    /dev/null). Returns dict(wall s, rss MB, cpu s, rc, killed, err: the end of its stderr).
    After `limit` seconds the command (GNU time's child) is killed, and GNU time still reports
    what it used."""
    stats = os.path.join(BENCH, "measure.time")
    out = open(stdout, "wb") if stdout else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-o", stats, "-f", "%M %U %S"] + cmd, stdin=subprocess.DEVNULL,
                         stdout=out, stderr=subprocess.PIPE, env=env, start_new_session=True)
    killed = False
    try:
        _, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        killed = True
        for child in children(p.pid):
            os.kill(child, signal.SIGKILL)
        try:
            _, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
    wall = time.monotonic() - t0
    if stdout:
        out.close()
    rss = cpu = float("nan")
    try:
        with open(stats) as f:
            rss_kb, user, system = f.read().split()[-3:]
        rss, cpu = int(rss_kb) / 1024, float(user) + float(system)
    except (OSError, ValueError):
        pass
    err = err.decode(errors="replace").strip()
    return dict(wall=wall, rss=rss, cpu=cpu, rc=p.returncode, killed=killed, err=err[-600:])


def children(pid):
    """The child processes of `pid`."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        return []


def ccusage_available():
    """ccusage (CCUSAGE_VERSION), installed once into .bench/ccusage with npm; the path of its
    native binary, run directly so that neither npx's nor node's start is timed. None (its rows
    left out, saying so) when BENCH_CCUSAGE=0 or it cannot be installed."""
    if os.environ.get("BENCH_CCUSAGE", "1") == "0":
        return None
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    prefix = os.path.join(BENCH, "ccusage")
    binary = os.path.join(prefix, "node_modules", "@ccusage", f"ccusage-{sys.platform}-{arch}", "bin", "ccusage")

    def version():
        try:
            os.chmod(binary, 0o755)  # its npm wrapper would; the bench runs the binary itself
            return subprocess.run([binary, "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.split()[-1:]
        except (OSError, subprocess.TimeoutExpired):
            return None

    if version() != [CCUSAGE_VERSION]:  # it prints "ccusage 20.0.24"
        log(f"installing ccusage {CCUSAGE_VERSION} into {prefix}")
        r = subprocess.run(["npm", "install", "--prefix", prefix, f"ccusage@{CCUSAGE_VERSION}",
                            "--no-audit", "--no-fund", "--loglevel", "error"], capture_output=True, text=True)
        if r.returncode != 0 or version() != [CCUSAGE_VERSION]:
            log(f"ccusage {CCUSAGE_VERSION} could not be installed: its rows are left out\n{r.stderr[-1000:]}")
            return None
    return binary


def ccusage(config_dir, limit=None):
    """`ccusage daily --json --offline` over the Claude Code config folder `config_dir` (its
    projects/ folder: CLAUDE_CONFIG_DIR), with an empty HOME so that it finds no other agent's data,
    offline (its built-in prices) and, where `unshare -n` works, with no network at all. Returns
    measure()'s dict, with `days` (rows of its report, None if its output is not its JSON)."""
    home = os.path.join(BENCH, "ccusage-home")
    os.makedirs(home, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "CLAUDE_CONFIG_DIR": config_dir,
           "XDG_CONFIG_HOME": os.path.join(home, ".config"), "TZ": "UTC", "NO_COLOR": "1"}
    cmd = [CCUSAGE, "daily", "--json", "--offline"]
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n"] + cmd
    out = os.path.join(BENCH, "ccusage-out.json")
    m = measure(cmd, stdout=out, env=env, limit=limit)
    try:
        with open(out) as f:
            m["days"] = len(json.load(f)["daily"])
    except (OSError, ValueError, KeyError, TypeError):
        m["days"] = None
    return m


def ccusage_timed(config_dir):
    """ccusage over a corpus, RUNS times: the mean wall and CPU, the largest peak RSS."""
    runs = [ccusage(config_dir) for _ in range(RUNS)]
    m = dict(runs[-1])
    m["wall"] = sum(r["wall"] for r in runs) / len(runs)
    m["cpu"] = sum(r["cpu"] for r in runs) / len(runs)
    m["rss"] = max(r["rss"] for r in runs)
    if m["rc"] != 0 or not m["days"]:
        log(f"ccusage over {config_dir}: exit {m['rc']}, {m['days']} days: {m['err']}")
    return m


def outcome(m):
    """How a measured run ended, in a few words."""
    if m["killed"]:
        return f"did not finish: killed after {m['wall']:.0f} s"
    if m["rc"] != 0:
        last = m["err"].splitlines()[-1] if m["err"] else "no message"
        return f"FAILED: exit {m['rc']}: {last[:200]}"
    return "finished, exit 0"


def peak_rss_mb(cmd):
    """Peak RSS of the command's main process, by GNU time."""
    r = subprocess.run(f"/usr/bin/time -f '%M' bash -c {shq(cmd)} 2>&1 >/dev/null | tail -n1",
                       shell=True, capture_output=True, text=True, executable="/bin/bash")
    try:
        return int(r.stdout.strip().splitlines()[-1]) / 1024
    except (ValueError, IndexError):
        return float("nan")


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            n += block.count(b"\n")
    return n


class Ursula:
    """An Ursula cluster of `n` nodes (1 or 3) on loopback, in memory apart from its WALs, in a
    fresh folder; stream URLs are `{base}/sessions/{session_id}`."""

    def __init__(self, name, n, port):
        self.dir = os.path.join(BENCH, f"ursula-{name}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        binary = os.path.join(subprocess.run([os.path.join(ROOT, "scripts", "ursula"), "bin"],
                                             check=True, capture_output=True, text=True).stdout.strip(), "ursula")
        self.procs = []
        for i in range(n):
            cfg = (f'[server]\nlisten = "127.0.0.1:{port + i}"\ncluster_id = "bench-{name}"\n'
                   f'admin_listen = "127.0.0.1:{port + 10 + i}"\n[runtime]\ncore_count = 1\n'
                   f'[raft]\ngroup_count = 4\n[raft.wal]\npath = "{self.dir}/wal-{i + 1}"\n'
                   f'[storage.cold]\nbackend = "none"\nmax_hot_size_per_group = 0\n')
            for peer in range(n):
                cfg += f'[[raft.peers]]\nnode_id = {peer + 1}\nurl = "http://127.0.0.1:{port + peer}"\n'
            path = os.path.join(self.dir, f"node{i + 1}.toml")
            with open(path, "w") as f:
                f.write(cfg)
            log_file = open(os.path.join(self.dir, f"node{i + 1}.log"), "w")
            self.procs.append(subprocess.Popen([binary, "server", "--config", path, "--node-id", str(i + 1)],
                                               stdout=log_file, stderr=log_file, env={**os.environ, "NO_COLOR": "1"}))
        self.urls = [f"http://127.0.0.1:{port + i}" for i in range(n)]
        # Through node 2 of 3 (a follower of most streams' groups), or the only node.
        self.url = self.urls[1 if n > 1 else 0]
        deadline = time.monotonic() + 90
        for u in self.urls:
            for path in ["/sessions"] + [f"/sessions/_ready-{k}" for k in range(16)]:
                while not put_following(u + path, path != "/sessions"):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"ursula did not come up: see {self.dir}")
                    time.sleep(0.2)

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def put_following(url, json_stream):
    """PUT, following a follower's 307 to the leader; true on 2xx."""
    import urllib.request
    import urllib.error
    for _ in range(5):
        req = urllib.request.Request(url, method="PUT", data=b"")
        if json_stream:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return 200 <= r.status < 300
        except urllib.error.HTTPError as e:
            if e.code in (307, 308) and e.headers.get("Location"):
                url = e.headers["Location"]
                continue
            return False
        except OSError:
            return False
    return False


def ursula_available():
    if os.environ.get("BENCH_URSULA", "1") == "0":
        return False
    r = subprocess.run([os.path.join(ROOT, "scripts", "ursula"), "install"])
    if r.returncode != 0:
        log("Ursula could not be built: its rows are left out")
        return False
    return True


class Server:
    """The reference server, file-backed in a fresh data dir."""

    def __init__(self, name):
        self.dir = os.path.join(BENCH, f"server-{name}")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.url = subprocess.run([os.path.join(ROOT, "scripts", "ds-server"), "start", self.dir],
                                  check=True, capture_output=True, text=True).stdout.strip()

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts", "ds-server"), "stop", self.dir], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


CLAUDE_READ = lambda d: f"{BIN}/claude-read -q {d}/projects"  # noqa: E731
# (name, generator, reader command of the corpus folder[, MB, sessions, more generator flags]);
# without MB and sessions, BENCH_SIZE and SESSIONS. The names starting claude-code are Claude Code
# corpora (ccusage, the front door, records/s).
SOURCES = [
    ("claude-code", "gen-claude-corpus.py", CLAUDE_READ),
    ("claude-code-typical", "gen-claude-corpus.py", CLAUDE_READ, TYPICAL_SIZE, TYPICAL_SESSIONS,
     "--big-session-mb 0 --typical"),
    ("codex", "gen-codex-corpus.py", lambda d: f"{BIN}/codex-read -q {d}"),
    ("opencode", "gen-opencode-corpus.py",
     lambda d: f"{BIN}/opencode-read -q {d}/opencode {d}/go/.opencode {d}/crush/.crush"),
    ("gemini-cli", "gen-gemini-corpus.py", lambda d: f"{BIN}/gemini-read -q {d}"),
    ("cline", "gen-cline-corpus.py", lambda d: f"{BIN}/cline-read -q {d}"),
    ("copilot-cli", "gen-copilot-corpus.py", lambda d: f"{BIN}/copilot-read -q {d}"),
    ("goose", "gen-goose-corpus.py", lambda d: f"{BIN}/goose-read -q {d}"),
    ("qwen-code", "gen-qwen-corpus.py", lambda d: f"{BIN}/qwen-read -q {d}/projects"),
    ("cursor", "gen-cursor-corpus.py", lambda d: f"{BIN}/cursor-read -q {d}"),
]
ONLY = [s for s in os.environ.get("BENCH_SOURCES", "").split(",") if s]
if ONLY:
    unknown = set(ONLY) - {s[0] for s in SOURCES}
    if unknown:
        sys.exit(f"bench: unknown BENCH_SOURCES: {', '.join(sorted(unknown))}")
    SOURCES = [s for s in SOURCES if s[0] in ONLY]


def corpus(source, gen, size=None, sessions=None, flags=""):
    """The corpus folder of `source`, generated once (cached under its name and size)."""
    size = size or SIZE
    d = os.path.join(BENCH, "corpus", f"{source}-{size}mb")
    stamp = os.path.join(d, ".complete")
    if not os.path.exists(stamp):
        shutil.rmtree(d, ignore_errors=True)
        log(f"generating {size} MB of {source}")
        sh(f"python3 {ROOT}/scripts/{gen} {d} --size-mb {size} --sessions {sessions or SESSIONS} {flags} --seed 1 "
           "2>&1 | tail -n1 >&2")
        open(stamp, "w").close()
    return d


def largest_session(d):
    """A Claude Code config folder holding only the largest transcript of corpus `d` (hard-linked
    into projects/<its project>/), and that file's size in MB."""
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(d, "projects")) for f in fs
             if f.endswith(".jsonl")]
    big = max(files, key=os.path.getsize)
    alone = d + "-largest"
    target = os.path.join(alone, "projects", os.path.basename(os.path.dirname(big)), os.path.basename(big))
    if not os.path.exists(target) or not os.path.samefile(big, target):
        shutil.rmtree(alone, ignore_errors=True)
        os.makedirs(os.path.dirname(target))
        try:
            os.link(big, target)
        except OSError:
            shutil.copyfile(big, target)
    return alone, os.path.getsize(big) / 1e6


def line_corpus():
    """A Claude Code config folder with a session holding one line of about LINE_MB MB (and two
    small sessions)."""
    d = os.path.join(BENCH, "corpus", f"claude-code-line-{LINE_MB}mb")
    stamp = os.path.join(d, ".complete")
    if not os.path.exists(stamp):
        shutil.rmtree(d, ignore_errors=True)
        log(f"generating a session with a line of {LINE_MB} MB")
        sh(f"python3 {ROOT}/scripts/gen-claude-corpus.py {d} --size-mb 0.1 --sessions 2 --big-session-mb 0 "
           f"--line-mb {LINE_MB} --seed 1 2>&1 | tail -n1 >&2")
        open(stamp, "w").close()
    return d


def raw_events(line, batch):
    """The batch line's `events` array, byte for byte as tonbo-post sends it. Re-serializing
    would not do: json.dumps escapes every non-ASCII character, which makes the body larger and
    cheaper for the server to decode than the UTF-8 tonbo-post sends."""
    at = line.find(b',"events":[')
    if at < 0:
        raise RuntimeError("a batch line without an events array")
    end = line.rstrip(b"\r\n")
    if not end.endswith(b"}"):
        raise RuntimeError("a batch line that does not end with }")
    body = end[at + len(b',"events":'):-1]
    if json.loads(body) != batch["events"]:
        raise RuntimeError("could not cut a batch line's events array out of it")
    return body


CEILING_LEAD = 15  # seconds for every wrk thread to load its bodies before the clock starts
CEILING_WINDOW = 15  # seconds measured


def ceiling(batches_file):
    """The server's own ingest ceiling for this corpus: wrk POSTs the very bodies tonbo-post sends
    (each batch's `events` array, byte for byte) to the very streams (each batch's session), as
    idempotent-producer appends, with no ordering, checkpoint or retry work at all. The streams are
    created first, untimed (tonbo-post creates them inside its own time). Measured over 4 and 8
    connections; the better figure is the ceiling. Returns (requests/s, bytes/s, connections,
    total body bytes).

    wrk runs each thread's Lua init (loading its bodies) one thread after another while the
    earlier threads already send, and starts its own clock only after the last; its own
    requests/s would count the early ones against too short a time. So no thread sends before a
    common start, and only responses within a fixed window after it are counted, by the
    monotonic clock (LuaJIT's FFI)."""
    from urllib.parse import quote, urlparse
    import http.client
    sessions = []
    seen = set()
    total = 0
    rows = []
    with open(batches_file, "rb") as f:
        for line in f:
            b = json.loads(line)
            sid = b["session_id"]
            if sid not in seen:
                seen.add(sid)
                sessions.append(sid)
            body = raw_events(line, b)
            total += len(body)
            rows.append(("/v1/sessions/" + quote(sid, safe="") + "/events").encode() + b"\t" + body + b"\n")
    lua = os.path.join(BENCH, "ceiling.lua")
    prefix = os.path.join(BENCH, "ceiling-bodies-")
    with open(lua, "w") as f:
        # Each wrk thread has one connection and posts its share of the bodies (every n-th, in
        # corpus order, from its own file), cycling if it runs out; every request is a new
        # producer at (epoch 0, seq 0), so no request depends on another.
        f.write(f"""local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} ceiling_timespec;
int clock_gettime(int clk, ceiling_timespec *tp);
]]
local ts = ffi.new("ceiling_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC, Python's time.monotonic()
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local threads = {{}}
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  start_at, stop_at = tonumber(args[1]), tonumber(args[1]) + tonumber(args[2])
  items = {{}}
  for line in io.lines("{prefix}" .. args[3] .. "-" .. tid .. ".tsv") do
    local tab = line:find("\t", 1, true)
    table.insert(items, {{line:sub(1, tab - 1), line:sub(tab + 1)}})
  end
  late = now() > start_at and 1 or 0
  next_item, n, bytes, requests, errors, sizes, head, tail = 0, 0, 0, 0, 0, {{}}, 1, 0
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Producer-Epoch"] = "0"
  wrk.headers["Producer-Seq"] = "0"
end
function delay()
  local wait = start_at and (start_at - now()) or 0
  return wait > 0 and math.ceil(wait * 1000) or 0
end
n = 0
function request()
  if not items then
    -- wrk's own check that the script is dynamic runs before init: answer differently each time.
    n = n + 1
    return wrk.format("GET", "/" .. n)
  end
  next_item = next_item % #items + 1
  n = n + 1
  local item = items[next_item]
  wrk.headers["Producer-Id"] = "ceiling-" .. tid .. "-" .. n
  tail = tail + 1
  sizes[tail] = #item[2]
  return wrk.format("POST", item[1], wrk.headers, item[2])
end
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
  local t = now()
  if t >= start_at and t < stop_at then
    bytes = bytes + sizes[head]
    requests = requests + 1
  end
  sizes[head] = nil
  head = head + 1
end
function done(summary, latency, requests)
  local b, r, e, l = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    b = b + t:get("bytes")
    r = r + t:get("requests")
    e = e + t:get("errors")
    l = l + t:get("late")
  end
  io.write(string.format("ceiling-bytes: %d", b), string.char(10))
  io.write(string.format("ceiling-requests: %d", r), string.char(10))
  io.write(string.format("producer-errors: %d", e), string.char(10))
  io.write(string.format("late-threads: %d", l), string.char(10))
end
""")
    best = (0.0, 0.0, 0, total)
    for conns in (4, 8):
        files = [open(f"{prefix}{conns}-{t}.tsv", "wb") for t in range(conns)]
        for i, row in enumerate(rows):
            files[i % conns].write(row)
        for fh in files:
            fh.close()
        server = Server("ceiling")
        try:
            u = urlparse(server.url)
            c = http.client.HTTPConnection(u.hostname, u.port)
            for sid in sessions:
                c.request("PUT", "/v1/sessions/" + quote(sid, safe="") + "/events",
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status not in (200, 201):
                    raise RuntimeError(f"creating a ceiling stream: HTTP {r.status}")
            c.close()
            start_at = time.monotonic() + CEILING_LEAD
            out = subprocess.run(["wrk", f"-t{conns}", f"-c{conns}", f"-d{CEILING_LEAD + CEILING_WINDOW + 1}s",
                                  "--timeout", "30s", "-s", lua, server.url, "--",
                                  f"{start_at:.3f}", str(CEILING_WINDOW), str(conns)],
                                 check=True, capture_output=True, text=True).stdout
        finally:
            server.stop()
            for t in range(conns):
                os.remove(f"{prefix}{conns}-{t}.tsv")
        b = re.search(r"ceiling-bytes: (\d+)", out)
        r = re.search(r"ceiling-requests: (\d+)", out)
        if not b or not r or "Non-2xx" in out or "producer-errors: 0" not in out:
            raise RuntimeError(f"the server refused the ceiling's appends:\n{out}")
        if "late-threads: 0" not in out:
            raise RuntimeError(f"a wrk thread was still loading its bodies when the clock started:\n{out}")
        bps = int(b.group(1)) / CEILING_WINDOW
        rps = int(r.group(1)) / CEILING_WINDOW
        log(f"ceiling over {conns} connections: {bps / 1e6:.1f} MB/s, {rps:.1f} requests/s")
        if bps > best[1]:
            best = (rps, bps, conns, total)
    return best


def post(server, source_cmd_or_file, state, from_file, extra=""):
    """Runs tonbo-post (alone over a batches file, or at the end of the whole chain). Returns
    its wall time, summary line and peak RSS (MB); its CPU seconds (user + system) are kept in
    `post.cpu`, the pipeline's exit status in `post.rc`."""
    rss_file = state + ".rss"
    post_cmd = (f"/usr/bin/time -o {rss_file} -f '%M %U %S' {BIN}/tonbo-post --api {server.url} "
                f"--state {state} {extra}")
    cmd = f"{post_cmd} {source_cmd_or_file}" if from_file else f"{source_cmd_or_file} | {post_cmd}"
    t0 = time.monotonic()
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, executable="/bin/bash")
    wall = time.monotonic() - t0
    post.rc = r.returncode
    summary = [l for l in r.stderr.splitlines() if l.startswith("tonbo-post:") and "sessions," in l]
    if r.returncode != 0:
        log(f"tonbo-post exited {r.returncode}: {r.stderr[-2000:]}")
    try:
        rss_kb, user, system = open(rss_file).read().split()[-3:]
        rss = int(rss_kb) / 1024
        post.cpu = float(user) + float(system)
    except (OSError, ValueError, IndexError):
        rss, post.cpu = float("nan"), float("nan")
    return wall, summary[-1] if summary else r.stderr.strip()[-300:], rss


POST_SUMMARY = re.compile(r"^tonbo-post: (\d+) sessions, (\d+) events sent in (\d+) batches", re.M)


def events_sent(summary):
    """Events sent, from tonbo-post's summary line on stderr; None without one."""
    m = POST_SUMMARY.search(summary)
    return int(m.group(2)) if m else None


def batch_sessions(batches_file):
    """The session ids of a batches file, in first-seen order. Only each line's head is decoded:
    tonbo-batch writes `{"v":1,"session_id":...` first, and the lines are up to a few MB."""
    head = re.compile(rb'^\{"v":\d+,"session_id":("(?:[^"\\]|\\.)*")')
    seen = {}
    with open(batches_file, "rb") as f:
        for line in f:
            m = head.match(line)
            sid = json.loads(m.group(1)) if m else json.loads(line)["session_id"]
            seen.setdefault(sid, None)
    return list(seen)


def stream_offsets(url, sessions):
    """Each session stream's Stream-Next-Offset (HEAD), None for a stream the server lacks. Equal
    offsets before and after a run are the server's own word that the run appended nothing."""
    from urllib.parse import quote, urlparse
    import http.client
    u = urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    offsets = {}
    try:
        for sid in sessions:
            c.request("HEAD", "/v1/sessions/" + quote(sid, safe="") + "/events")
            r = c.getresponse()
            r.read()
            if r.status == 404:
                offsets[sid] = None
            elif r.status == 200:
                offsets[sid] = r.getheader("Stream-Next-Offset")
            else:
                raise RuntimeError(f"HEAD of the stream of {sid}: HTTP {r.status}")
    finally:
        c.close()
    return offsets


def front_door(args, env):
    """Runs the front door tonbo-ingest of this build; returns (wall seconds, stderr). Exits the
    bench on a failure."""
    cmd = [os.path.join(BIN, "tonbo-ingest")] + args
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"bench: FAILED: tonbo-ingest exited {r.returncode}: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return wall, r.stderr


def front_door_twice(source, paths, batches, expected_events, work, since_last_run):
    """The front door twice over the unchanged corpus into a fresh server, with a fresh
    checkpoint: `tonbo-ingest --since-last-run` with a fresh mark folder, or (since_last_run
    false) the plain `tonbo-ingest` with a fresh XDG_STATE_HOME (where it may keep what makes its
    re-run cheap). The first run reads and sends everything; the second must send nothing. Exits
    the bench if either run fails, if the first does not send `expected_events`, or if the second
    sends anything (by tonbo-post's summary or by any stream's offset on the server). Returns
    (first s, second s, the second run's first line from the front door or the reader)."""
    what = "--since-last-run" if since_last_run else "the plain re-run"
    dir_ = os.path.join(work, "since-last-run" if since_last_run else "plain-rerun")
    shutil.rmtree(dir_, ignore_errors=True)
    os.makedirs(dir_)
    env = dict(os.environ, TONBO_INGEST_BIN_DIR=BIN, XDG_STATE_HOME=os.path.join(dir_, "xdg-state"))
    server = Server(source + ("-since" if since_last_run else "-plain"))
    try:
        flags = ["--since-last-run", "--state-dir", os.path.join(dir_, "marks")] if since_last_run else []
        args = ["--from", "claude-code"] + [a for p in paths for a in ("--path", p)] + flags + [
            "--", "--api", server.url, "--state", os.path.join(dir_, "post.sqlite")]
        first, first_err = front_door(args, env)
        sent = events_sent(first_err)
        if sent != expected_events:
            sys.exit(f"bench: FAILED: the first run of {what} sent {sent} events, "
                     f"the end-to-end run sent {expected_events}:\n{first_err[-3000:]}")
        sessions = batch_sessions(batches)
        before = stream_offsets(server.url, sessions)
        missing = [s for s, o in before.items() if o is None]
        if missing:
            sys.exit(f"bench: FAILED: after the first run of {what} the server lacks "
                     f"{len(missing)} of {len(sessions)} streams, e.g. {missing[0]}")
        second, second_err = front_door(args, env)
        sent = events_sent(second_err)
        if sent is None and "tonbo-post:" not in second_err:
            sent = 0  # the front door found nothing to read and started no stage
        if sent != 0:
            sys.exit(f"bench: FAILED: the second run of {what} over the unchanged corpus "
                     f"sent {sent} events (want 0):\n{second_err[-3000:]}")
        after = stream_offsets(server.url, sessions)
        grown = [s for s in sessions if after[s] != before[s]]
        if grown:
            sys.exit(f"bench: FAILED: the second run of {what} changed {len(grown)} streams "
                     f"on the server, e.g. {grown[0]}: {before[grown[0]]} -> {after[grown[0]]}")
    finally:
        server.stop()
    reader_line = next((l for l in second_err.splitlines() if l.startswith(("tonbo-ingest:", "claude-read:"))), "")
    log(f"{source}: {what}: first {first:.2f} s, second {second:.2f} s "
        f"({second / first:.2%}); {reader_line}")
    return first, second, reader_line


def memory_rows(label, config_dir, mb, work):
    """Each stage alone over what the stage before it wrote, from `config_dir` (a Claude Code
    config folder): wall, peak RSS and how it ended; tonbo-post into a fresh server. A stage that
    fails leaves out the ones after it. Then ccusage over the same folder, within its time limit."""
    dir_ = os.path.join(work, "memory")
    shutil.rmtree(dir_, ignore_errors=True)
    os.makedirs(dir_)
    records, events, batches = (os.path.join(dir_, n) for n in ("records", "events", "batches"))
    stages = []
    for name, cmd, out in (("reader", shlex.split(CLAUDE_READ(config_dir)), records),
                           ("tonbo-map", [f"{BIN}/tonbo-map", "-q", records], events),
                           ("tonbo-batch", [f"{BIN}/tonbo-batch", "-q", events], batches)):
        log(f"memory, {label}: {name}")
        m = measure(cmd, stdout=out)
        stages.append((name, m))
        if m["rc"] != 0:
            log(f"memory, {label}: {name} {outcome(m)}\n{m['err']}")
            break
    else:
        log(f"memory, {label}: tonbo-post")
        server = Server("memory")
        try:
            wall, summary, peak = post(server, batches, os.path.join(dir_, "post.sqlite"), from_file=True)
            stages.append(("tonbo-post", dict(wall=wall, rss=peak, cpu=post.cpu, rc=post.rc, killed=False,
                                              err=summary)))
        finally:
            server.stop()
    peer = None
    if CCUSAGE:
        log(f"memory, {label}: ccusage (at most {CCUSAGE_LIMIT} s)")
        peer = ccusage(config_dir, limit=CCUSAGE_LIMIT)
        log(f"memory, {label}: ccusage {outcome(peer)}, {peer['wall']:.1f} s, {peer['rss']:.0f} MB")
    shutil.rmtree(dir_, ignore_errors=True)
    return dict(label=label, mb=mb, stages=stages, ccusage=peer)


def main():
    os.makedirs(BENCH, exist_ok=True)
    need("hyperfine", "hyperfine")
    need("wrk", "wrk")
    need("zstd", "zstd")
    need("curl", "curl")
    if not os.path.exists("/usr/bin/time"):
        need("/usr/bin/time", "time")
    log("building release binaries")
    sh(f"cd {ROOT} && cargo build -q --release --bins --example json_floor")
    sh(f"{ROOT}/scripts/ds-server install")
    floor_bin = os.path.join(BIN, "examples", "json_floor")
    global URSULA, CCUSAGE
    URSULA = ursula_available()
    if any(s[0].startswith("claude-code") for s in SOURCES):
        CCUSAGE = ccusage_available()
    rows = []
    started = time.monotonic()
    for source, gen, reader, *sized in SOURCES:
        size, sessions, flags = sized if sized else (SIZE, SESSIONS, "")
        d = corpus(source, gen, size, sessions, flags)
        data_mb = size  # generators size the corpus by uncompressed transcript bytes (MB = 10^6)
        claude = source.startswith("claude-code")
        work = os.path.join(BENCH, f"work-{source}")
        os.makedirs(work, exist_ok=True)
        records, events, batches = (os.path.join(work, n) for n in ("records", "events", "batches"))
        r = reader(d)
        log(f"{source}: preparing stage inputs")
        sh(f"{r} > {records} && {BIN}/tonbo-map -q {records} > {events} && {BIN}/tonbo-batch -q {events} > {batches}")
        n_records, n_events, n_batches = count_lines(records), count_lines(events), count_lines(batches)
        log(f"{source}: timing ({RUNS} runs each)")
        commands = [
            ("cat", f"find {d} -type f -print0 | xargs -0 cat > /dev/null"),
            ("json_floor", f"{floor_bin} {records} 2>/dev/null"),
            ("reader", f"{r} > /dev/null"),
            ("tonbo-map", f"{BIN}/tonbo-map -q {records} > /dev/null"),
            ("tonbo-batch", f"{BIN}/tonbo-batch -q {events} > /dev/null"),
            ("chain", f"{r} | {BIN}/tonbo-map -q | {BIN}/tonbo-batch -q > /dev/null"),
        ]
        if claude:  # what ccusage is compared with: reading and parsing every line
            commands.append(("read-map", f"{r} | {BIN}/tonbo-map -q > /dev/null"))
        times = hyperfine(source, commands)
        cpu = hyperfine.cpu
        peer = None
        if claude and CCUSAGE:
            log(f"{source}: ccusage ({RUNS} runs)")
            peer = ccusage_timed(d)
        rss = {
            "reader": peak_rss_mb(f"{r} > /dev/null"),
            "tonbo-map": peak_rss_mb(f"{BIN}/tonbo-map -q {records} > /dev/null"),
            "tonbo-batch": peak_rss_mb(f"{BIN}/tonbo-batch -q {events} > /dev/null"),
        }
        log(f"{source}: end to end into the reference server")
        server = Server(source)
        try:
            state = os.path.join(work, "post.sqlite")
            for suffix in ("", "-wal", "-shm", ".lock"):
                if os.path.exists(state + suffix):
                    os.remove(state + suffix)
            chain = f"{r} | {BIN}/tonbo-map -q | {BIN}/tonbo-batch -q"
            e2e, e2e_summary, _ = post(server, chain, state, from_file=False)
            rerun, rerun_summary, _ = post(server, chain, state, from_file=False)
        finally:
            server.stop()
        since = plain = None
        if claude:
            expected = events_sent(e2e_summary)
            if expected is None:
                sys.exit(f"bench: FAILED: no tonbo-post summary from the end-to-end run: {e2e_summary}")
            paths = [os.path.join(d, "projects")]
            log(f"{source}: the front door with --since-last-run, twice over the unchanged corpus")
            since = front_door_twice(source, paths, batches, expected, work, since_last_run=True)
            log(f"{source}: the front door with no flag, twice over the unchanged corpus")
            plain = front_door_twice(source, paths, batches, expected, work, since_last_run=False)
        # Best of two runs, each into a fresh server with a fresh checkpoint, as the ceiling is
        # the best of its two connection counts.
        post_alone, post_cpu = float("inf"), float("nan")
        for _ in range(2):
            server = Server(source + "-post")
            try:
                state2 = os.path.join(work, "post-alone.sqlite")
                for suffix in ("", "-wal", "-shm", ".lock"):
                    if os.path.exists(state2 + suffix):
                        os.remove(state2 + suffix)
                shutil.rmtree(state2 + ".inflight", ignore_errors=True)
                wall, summary, peak = post(server, batches, state2, from_file=True)
                if wall < post_alone:
                    post_alone, post_summary, post_cpu = wall, summary, post.cpu
                rss["tonbo-post"] = max(rss.get("tonbo-post", 0), peak)
            finally:
                server.stop()
        ursula = {}
        if URSULA:
            for label, nodes, port in (("1 node", 1, 4471), ("3 nodes, through a follower", 3, 4481)):
                log(f"{source}: tonbo-post alone into Ursula, {label}")
                cluster = Ursula(source.replace(" ", "-") + f"-{nodes}", nodes, port)
                try:
                    state3 = os.path.join(work, f"post-ursula-{nodes}.sqlite")
                    for suffix in ("", "-wal", "-shm", ".lock"):
                        if os.path.exists(state3 + suffix):
                            os.remove(state3 + suffix)
                    shutil.rmtree(state3 + ".inflight", ignore_errors=True)
                    wall, summary, peak = post(cluster, batches, state3, from_file=True,
                                               extra="--url-template '{base}/sessions/{session_id}'")
                    sent = events_sent(summary)
                    ursula[label] = dict(wall=wall, summary=summary, rss=peak, cpu=post.cpu,
                                         complete=sent == n_events)
                    if sent != n_events:
                        log(f"{source}: Ursula {label}: {summary}")
                finally:
                    cluster.stop()
        log(f"{source}: server ceiling")
        rps, ceiling_bps, conns, body_bytes = ceiling(batches)
        post_bps = body_bytes / post_alone
        memory = []
        if source == "claude-code":
            alone, mb = largest_session(d)
            memory.append(memory_rows(f"the largest session alone ({mb:,.0f} MB, one file)", alone, mb, work))
            line = line_corpus()
            memory.append(memory_rows(f"a session with one line of {LINE_MB} MB", line, du(line) / 1e6, work))
        rows.append(dict(source=source, corpus=d, data_mb=data_mb, records_mb=os.path.getsize(records) / 1e6,
                         n_records=n_records, corpus_bytes=du(d), cpu=cpu, peer=peer, plain=plain, memory=memory,
                         n_events=n_events, n_batches=n_batches, times=times, rss=rss, e2e=e2e,
                         e2e_summary=e2e_summary, rerun=rerun, rerun_summary=rerun_summary,
                         post_alone=post_alone, post_summary=post_summary, ceiling_rps=rps, ceiling_conns=conns,
                         ceiling_mbps=ceiling_bps / 1e6, post_mbps=post_bps / 1e6, post_cpu=post_cpu,
                         body_mb=body_bytes / 1e6, since=since, ursula=ursula))
        for f in (records, events, batches):
            os.remove(f)
    report(rows, time.monotonic() - started)


def report(rows, elapsed):
    md = []
    md.append(f"Measured by `make bench` (BENCH_SIZE={SIZE} MB per source, {RUNS} runs per timing, "
              f"{os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}; {elapsed / 60:.1f} min in all. "
              "Ratios are against floors measured in the same run, so they hold across machines "
              "better than the seconds do.")
    md.append("")
    md.append("| source | step | wall s | MB/s | events/s | peak RSS MB | ratio to floor |")
    md.append("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        t = r["times"]
        mb = r["data_mb"]
        floor_cat = mb / t["cat"]
        floor_json = r["records_mb"] / t["json_floor"]
        ev = r["n_events"]

        def line(step, wall, mbps, evs, rss, ratio):
            md.append(f"| {r['source']} | {step} | {wall:.2f} | {mbps} | {evs} | {rss} | {ratio} |")

        line("floor: `cat` (I/O)", t["cat"], f"{floor_cat:,.0f}", "", "", "")
        line("floor: bare JSON parse of the records (CPU)", t["json_floor"], f"{floor_json:,.0f}", "", "", "")
        line("reader alone", t["reader"], f"{mb / t['reader']:,.0f}", "", f"{r['rss']['reader']:.0f}",
             f"{(mb / t['reader']) / floor_cat:.2f} of `cat`")
        recs = r["n_records"] / t["tonbo-map"]
        target = ""
        if r["source"] == "claude-code-typical":
            target = f"; target >= 400,000 records/s: {'met' if recs >= 400_000 else 'NOT met'}"
        line("tonbo-map alone", t["tonbo-map"], f"{r['records_mb'] / t['tonbo-map']:,.0f}", f"{ev / t['tonbo-map']:,.0f}",
             f"{r['rss']['tonbo-map']:.0f}",
             f"{(r['records_mb'] / t['tonbo-map']) / floor_json:.2f} of JSON parse; {recs:,.0f} records/s{target}")
        line("tonbo-batch alone", t["tonbo-batch"], "", f"{ev / t['tonbo-batch']:,.0f}", f"{r['rss']['tonbo-batch']:.0f}", "")
        chain = mb / t["chain"]
        line("**read \\| map \\| batch**", t["chain"], f"**{chain:,.0f}**", f"{ev / t['chain']:,.0f}", "",
             f"{chain / floor_json:.2f} of JSON parse; target >= 100 MB/s: {'met' if chain >= 100 else 'NOT met'}")
        if "read-map" in t:
            line("read \\| map (what ccusage is compared with)", t["read-map"], f"{mb / t['read-map']:,.0f}",
                 f"{ev / t['read-map']:,.0f}", "",
                 f"{r['n_records'] / t['read-map']:,.0f} records/s; CPU {r['cpu']['read-map']:.2f} s")
        if r["peer"]:
            p = r["peer"]
            speed = p["wall"] / t["read-map"]
            note = f"`claude-read \\| tonbo-map` at {speed:.2f}x ccusage's speed; ccusage CPU {p['cpu']:.2f} s"
            if p["rc"] != 0 or not p["days"]:
                note += f"; {outcome(p)}, {p['days']} days in its report"
            line(f"peer: ccusage {CCUSAGE_VERSION} `daily --json --offline`", p["wall"], f"{mb / p['wall']:,.0f}", "",
                 f"{p['rss']:.0f}", note)
        line(f"server ceiling (wrk, the batches' bodies to their streams, {r['ceiling_conns']} connections, best of 4 and 8)", CEILING_WINDOW, f"{r['ceiling_mbps']:,.1f}", "", "",
             f"{r['ceiling_rps']:,.1f} requests/s")
        ratio = r["post_mbps"] / r["ceiling_mbps"] if r["ceiling_mbps"] else float("nan")
        gb = r["body_mb"] / 1e3
        line("tonbo-post alone over the batches (best of 2 runs)", r["post_alone"], f"{r['post_mbps']:,.1f}", f"{ev / r['post_alone']:,.0f}",
             f"{r['rss']['tonbo-post']:.0f}",
             f"{ratio:.2f} of the server ceiling; target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'}; "
             f"tonbo-post CPU {r['post_cpu'] / gb:.1f} s per GB of bodies")
        for label, u in r["ursula"].items():
            speed = r["post_alone"] / u["wall"]
            line(f"tonbo-post alone into Ursula, {label}", u["wall"], f"{r['body_mb'] / u['wall']:,.1f}",
                 f"{ev / u['wall']:,.0f}", f"{u['rss']:.0f}",
                 f"{speed:.2f}x the reference server's; tonbo-post CPU {u['cpu'] / gb:.1f} s per GB of bodies, "
                 f"{u['cpu'] / u['wall']:.2f} cores" + ("" if u["complete"] else f"; INCOMPLETE: {u['summary']}"))
        line("end to end: read \\| map \\| batch \\| post", r["e2e"], f"{mb / r['e2e']:,.1f}", f"{ev / r['e2e']:,.0f}", "", "")
        sent_nothing = " 0 events sent in 0 batches" in r["rerun_summary"]
        line("re-run, same input", r["rerun"], "", "", "",
             "sent nothing" if sent_nothing else f"SENT SOMETHING: {r['rerun_summary']}")
        if r["since"]:
            first, second, _ = r["since"]
            line("`tonbo-ingest --since-last-run`, first run (no mark yet: reads and sends everything)",
                 first, f"{mb / first:,.1f}", f"{ev / first:,.0f}", "", "")
            share = second / first
            line("`tonbo-ingest --since-last-run`, second run over the unchanged corpus", second, "", "", "",
                 f"{share:.2%} of the first run; sent nothing; target <= 5%: {'met' if share <= 0.05 else 'NOT met'}")
        if r["plain"]:
            first, second, _ = r["plain"]
            line("`tonbo-ingest` (no flag), first run (reads and sends everything)",
                 first, f"{mb / first:,.1f}", f"{ev / first:,.0f}", "", "")
            share = second / first
            line("`tonbo-ingest` (no flag), second run over the unchanged corpus", second, "", "", "",
                 f"{share:.2%} of the first run; sent nothing; target <= 5%: {'met' if share <= 0.05 else 'NOT met'}")
        for m in r["memory"]:
            for name, s in m["stages"]:
                ok = s["rss"] <= RSS_TARGET_MB
                note = f"target <= {RSS_TARGET_MB} MB: {'met' if ok else 'NOT met'}"
                if s["rc"] != 0 or s["killed"]:
                    note += f"; {outcome(s)}"
                line(f"memory, {m['label']}: {name}", s["wall"], f"{m['mb'] / s['wall']:,.0f}", "",
                     f"{s['rss']:.0f}", note)
            if m["ccusage"]:
                p = m["ccusage"]
                line(f"memory, {m['label']}: peer ccusage (at most {CCUSAGE_LIMIT} s)", p["wall"],
                     f"{m['mb'] / p['wall']:,.0f}", "", f"{p['rss']:.0f}",
                     outcome(p) + ("" if p["killed"] or p["rc"] != 0 else f", {p['days']} days in its report"))
    md.append("")
    md.append("Corpora: " + "; ".join(f"{r['source']}: {r['data_mb']:,} MB, {r['n_records']:,} records "
                                       f"({r['corpus_bytes'] / 1e3 / max(1, r['n_records']):.2f} KB of transcript each on average), "
                                       f"{r['n_events']:,} events in {r['n_batches']:,} batches "
                                       f"({r['body_mb']:,.0f} MB of request bodies)" for r in rows) + ".")
    text = "\n".join(md) + "\n"
    results = f"RESULTS-{'-'.join(ONLY)}.md" if ONLY else "RESULTS.md"
    with open(os.path.join(BENCH, results), "w") as f:
        f.write(text)
    if ONLY:
        print(text)
        return
    readme = os.path.join(ROOT, "README.md")
    with open(readme) as f:
        content = f.read()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in content and end in content:
        a = content.index(start) + len(start)
        b = content.index(end)
        content = content[:a] + "\n" + text + content[b:]
        with open(readme, "w") as f:
            f.write(content)
        log("README.md updated")
    print(text)


if __name__ == "__main__":
    main()
