"""corpus.py: what the bench corpus generators (scripts/gen-*-corpus.py) share.

The words and line templates their text is drawn from, a session's budget, clock and text
helpers, the chunked file writer, corpus-wide UUIDs, the spread of session sizes and the command
line. The generators import it from their own folder; it is not a script.

Everything random draws from the random.Random its caller passes in, in a fixed order. The bench
caches corpora by their parameters, so a change here that adds, drops or reorders one draw
changes every corpus: run the generators with the same arguments before and after and `diff -r`.

Python 3.11 standard library only.
"""

import argparse
import base64
import json
import math
import os
import random
import string
import sys
import time

MB = 1_000_000
M62 = (1 << 62) - 1

J = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
EXT = {"rust": "rs", "ts": "ts", "py": "py"}

# --------------------------------------------------------------------------------------------
# Words every generator uses; each adds its own nouns, identifiers, methods and crates (Vocab).

VERBS = ["refactor", "fix", "trace", "rename", "simplify", "add tests for", "document", "profile",
         "speed up", "harden", "remove", "split", "inline", "rewrite", "debug", "review", "clean up"]
ADJS = ["flaky", "slow", "wrong", "unused", "duplicated", "racy", "too strict", "off by one",
        "quadratic", "fragile", "stale", "missing", "inconsistent", "fine", "correct", "redundant"]
CLAUSES = [
    "the retry never gives up after a 4xx", "the offset is advanced before the write succeeds",
    "we read the whole file into memory", "the test depends on wall-clock time",
    "two workers can claim the same batch", "the error is swallowed and logged at debug level",
    "the schema allows a null that the parser rejects", "the cache key ignores the session id",
    "the last line of the file may be truncated", "the timeout is in seconds, not milliseconds",
    "unknown fields are rejected instead of skipped", "the UTF-8 boundary is split across reads",
    "the lock is held across an await point", "the fixture was regenerated with an old version",
]
# The Claude Code and OpenCode generators start their nouns and identifiers with these.
NOUNS = [
    "retry loop", "checkpoint", "batch writer", "offset", "parser", "session", "transcript",
    "manifest", "cursor", "backoff", "schema", "fixture", "buffer", "event stream", "worker",
    "token budget", "config loader", "CLI flag", "error path", "integration test", "migration",
    "index", "cache", "lock file", "handler", "endpoint", "reader", "producer id", "sequence number",
    "compaction",
]
IDENTS = ["offset", "batch", "reader", "writer", "line", "buf", "session_id", "event", "record", "cfg",
          "client", "resp", "req", "state", "cursor", "path", "entry", "items", "result", "err", "ctx",
          "payload", "seq", "producer", "retries", "delay", "deadline", "chunk", "meta"]
TYPES = ["Event", "Batch", "Record", "Session", "Config", "Reader", "Writer", "Checkpoint", "Client",
         "Response", "Request", "Cursor", "Producer", "Error", "Entry", "Manifest", "Span", "Usage"]
MODS = ["lib", "main", "cli", "contract", "ndjson", "output", "rejects", "client", "poster",
        "read", "retry", "checkpoint", "batch", "map", "schema", "error", "util", "config"]
REPLIES = ["yes", "continue", "go ahead", "run the tests again", "looks good, commit it",
           "no, keep the old behaviour", "why?", "try again"]
SLUG_A = ["sparkling", "quiet", "brave", "lucky", "misty", "gentle", "rapid", "curious", "mellow"]
SLUG_B = ["wandering", "dancing", "hidden", "golden", "silver", "sleepy", "humming", "drifting"]
SLUG_C = ["quokka", "otter", "heron", "lynx", "badger", "falcon", "narwhal", "tapir", "marmot"]


class Vocab:
    """The words one generator's templates draw from."""

    def __init__(self, *, nouns, clauses, idents, methods, crates, types=TYPES, mods=MODS):
        self.nouns, self.clauses, self.idents, self.methods = nouns, clauses, idents, methods
        self.crates, self.types, self.mods = crates, types, mods


def slug(rng):
    return f"{rng.choice(SLUG_A)}-{rng.choice(SLUG_B)}-{rng.choice(SLUG_C)}"


def templates(rng, v):
    """Every line template, by kind ("sentence", "rust", "ts", "py", "log") and name. Each is a
    function of no arguments that draws its words from rng; a generator picks the names it uses
    (the names and their order decide the draws, so they are part of its output)."""
    c = rng.choice
    f = lambda: f"`{c(v.mods)}.rs`"  # noqa: E731

    def when(month, first_day, ms=True):
        d = f"2026-{month}-{rng.randint(first_day, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        return d + (f".{rng.randint(0, 999):03d}Z" if ms else "Z")

    def info(month, first_day):
        return f"{when(month, first_day)}  INFO {c(v.crates).replace('-', '_')}::{c(v.mods)}: {c(v.nouns)} {c(ADJS)} {c(v.idents)}={rng.randint(0, 99999)}"

    return {
        "sentence": {
            "plan": lambda: f"I'll {c(VERBS)} the {c(v.nouns)} in {f()} so that {c(v.clauses)}.",
            "because": lambda: f"The {c(v.nouns)} is {c(ADJS)} because {c(v.clauses)}.",
            "check": lambda: f"Let me check how the {c(v.nouns)} is handled in {f()}.",
            "understand": lambda: f"Now I understand: {c(v.clauses)}.",
            "looks": lambda: f"The {c(v.nouns)} looks {c(ADJS)}; {c(v.clauses)}.",
            "next": lambda: f"Next, {c(VERBS)} the {c(v.nouns)} and re-run the tests.",
            "passed": lambda: f"`{c(v.idents)}` is passed to `{c(v.methods)}()` before the {c(v.nouns)} is ready.",
            "tests": lambda: f"Tests pass now: {rng.randint(3, 240)} passed, 0 failed.",
            "keeps": lambda: f"This keeps the {c(v.nouns)} unchanged for callers of `{c(v.types)}`.",
            "wait": lambda: f"Wait, {c(v.clauses)} — that explains the {c(ADJS)} {c(v.nouns)}.",
            "wants": lambda: f"The user wants me to {c(VERBS)} the {c(v.nouns)}.",
            "hmm": lambda: f"Hmm, maybe the {c(v.nouns)} is {c(ADJS)} → check {f()} first.",
        },
        "rust": {
            "let": lambda: f"    let {c(v.idents)} = {c(v.idents)}.{c(v.methods)}()?;",
            "fn": lambda: f"pub fn {c(v.idents)}_{c(v.methods)}(&mut self, {c(v.idents)}: &{c(v.types)}) -> Result<{c(v.types)}> {{",
            "end_block": lambda: "    }",
            "end_item": lambda: "}",
            "blank": lambda: "",
            "use": lambda: f"use crate::{c(v.mods)}::{{{c(v.types)}, {c(v.types)}}};",
            "comment": lambda: f"    // {c(v.clauses)}",
            "derive": lambda: "#[derive(Debug, Clone, Serialize, Deserialize)]",
            "struct": lambda: f"pub struct {c(v.types)}{c(v.types)} {{",
            "field": lambda: f"    pub {c(v.idents)}: Option<{c(v.types)}>,",
            "early_return": lambda: f"        if {c(v.idents)}.is_empty() {{ return Ok(()); }}",
            "map": lambda: f"            .map(|{c('xyz')}| {c('xyz')}.{c(v.methods)}())",
            "error": lambda: f'        return Err(anyhow!("{c(v.nouns)} is {c(ADJS)}: {{}}", {c(v.idents)}));',
            "assert": lambda: f"    assert_eq!({c(v.idents)}.len(), {rng.randint(0, 64)});",
            "test": lambda: "#[test]",
            "test_fn": lambda: f"fn {c(v.idents)}_{c(ADJS).replace(' ', '_')}() {{",
        },
        "ts": {
            "const": lambda: f"  const {c(v.idents)} = await {c(v.idents)}.{c(v.methods)}();",
            "function": lambda: f"export function {c(v.idents)}({c(v.idents)}: {c(v.types)}): {c(v.types)} {{",
            "end_item": lambda: "}",
            "end_block": lambda: "  }",
            "blank": lambda: "",
            "import": lambda: f"import {{ {c(v.types)} }} from './{c(v.mods)}';",
            "comment": lambda: f"  // {c(v.clauses)}",
            "guard": lambda: f"  if (!{c(v.idents)}) return null;",
            "jsx": lambda: f"    <{c(v.types)} {c(v.idents)}={{{c(v.idents)}}} />",
            "field": lambda: f"  {c(v.idents)}: {c(v.types)} | undefined;",
            "expect": lambda: f"  expect({c(v.idents)}).toEqual({rng.randint(0, 99)});",
            "it": lambda: f"it('{c(VERBS)} the {c(v.nouns)}', async () => {{",
        },
        "py": {
            "assign": lambda: f"    {c(v.idents)} = {c(v.idents)}.{c(v.methods)}()",
            "def": lambda: f"def {c(v.idents)}_{c(v.methods)}(self, {c(v.idents)}):",
            "return": lambda: f"        return {c(v.idents)}",
            "blank": lambda: "",
            "import": lambda: f"from .{c(v.mods)} import {c(v.types)}",
            "comment": lambda: f"    # {c(v.clauses)}",
            "class": lambda: f"class {c(v.types)}{c(v.types)}:",
            "guard": lambda: f"        if not {c(v.idents)}:",
            "raise": lambda: f"            raise ValueError(f\"{c(v.nouns)} is {c(ADJS)}: {{{c(v.idents)}!r}}\")",
            "assert": lambda: f"    assert len({c(v.idents)}) == {rng.randint(0, 64)}",
        },
        "log": {
            "compiling": lambda: f"   Compiling {c(v.crates)} v0.{rng.randint(1, 9)}.{rng.randint(0, 20)} (/home/dev/src/tonbo-ingest/crates/{c(v.crates)})",
            "ok": lambda: f"test {c(v.mods)}::tests::{c(v.idents)}_{c(v.methods)} ... ok",
            "failed": lambda: f"test {c(v.mods)}::tests::{c(v.idents)}_{c(v.methods)} ... FAILED",
            "warning": lambda: f"warning: unused variable: `{c(v.idents)}`",
            "at": lambda: f"  --> crates/{c(v.crates)}/src/{c(v.mods)}.rs:{rng.randint(1, 900)}:{rng.randint(1, 80)}",
            "info_jan": lambda: info("01", 5),
            "info_feb": lambda: info("02", 10),
            "info_s": lambda: f"{when('01', 5, ms=False)}  INFO ingest::{c(v.mods)}: {c(v.nouns)} {c(ADJS)} {c(v.idents)}={rng.randint(0, 99999)}",
            "retry": lambda: f"{when('01', 5)}  WARN {c(v.crates).replace('-', '_')}::retry: attempt {rng.randint(1, 9)} failed: 503 Service Unavailable",
            "modified": lambda: f" M crates/{c(v.crates)}/src/{c(v.mods)}.rs",
            "commit": lambda: f"{''.join(c(HEX) for _ in range(7))} {c(VERBS).capitalize()} the {c(v.nouns)}",
            "commit_bits": lambda: f"{rng.getrandbits(28):07x} {c(VERBS).capitalize()} the {c(v.nouns)}",
            "finished": lambda: f"    Finished `test` profile [unoptimized + debuginfo] target(s) in {rng.randint(1, 90)}.{rng.randint(0, 99):02d}s",
            "npm": lambda: f"npm WARN deprecated {c(v.idents)}@{rng.randint(1, 9)}.{rng.randint(0, 9)}.0: {c(v.clauses)}",
            "check": lambda: f"  ✓ {c(VERBS)} the {c(v.nouns)} ({rng.randint(1, 400)} ms)",
            "pytest": lambda: f"PASSED tests/test_{c(v.mods)}.py::test_{c(v.idents)}_{c(v.methods)}",
            "match": lambda: f"crates/{c(v.crates)}/src/{c(v.mods)}.rs:{rng.randint(1, 900)}:    let {c(v.idents)} = {c(v.idents)}.{c(v.methods)}()?;",
        },
    }


def draw(rng, table, names, n):
    """n lines, each from a template picked uniformly among names (a name listed twice is picked
    twice as often)."""
    t = [table[k] for k in names]
    return [rng.choice(t)() for _ in range(n)]


def child_rng(rng):
    """An RNG of its own for one session or pool, seeded by one draw from rng: what it draws
    later does not move rng."""
    return random.Random(rng.getrandbits(64))


class Pools:
    """Prebuilt text (built once from the seeded RNG) that sessions slice: 4000 sentences, an
    optional list of bold reasoning titles, 16000 code lines per language, 16000 log lines.
    sentences and log are template names; code maps each language to its template names."""

    def __init__(self, rng, v, *, sentences, code, log, titles=0):
        t = templates(rng, v)
        c = rng.choice
        self.sent = draw(rng, t["sentence"], sentences, 4000)
        self.titles = [f"**{c(VERBS).capitalize()} {c(ADJS)} {c(v.nouns)}**" for _ in range(titles)]
        self.code = {lang: draw(rng, t[lang], names, 16000) for lang, names in code.items()}
        self.code_avg = {k: sum(map(len, lines)) / len(lines) + 1 for k, lines in self.code.items()}
        self.log = draw(rng, t["log"], log, 16000)
        self.log_avg = sum(map(len, self.log)) / len(self.log) + 1


# --------------------------------------------------------------------------------------------
# Sessions


class Run:
    """One generator run: the seeded RNG that everything draws from, in order, the prebuilt text
    and the id maker (pools(rng) and ids(rng) each get an RNG of their own)."""

    def __init__(self, seed, pools, ids):
        self.rng = random.Random(seed)
        self.pools = pools(child_rng(self.rng))
        self.ids = ids(child_rng(self.rng))


class Budget:
    """A session's byte budget, clock and text helpers. The class that uses it sets rng, p (its
    Pools), target (bytes), t (the clock, ms) and proj (with .lang and .rels, for code() and
    final_text()), and says in used() how many bytes it has written so far."""

    def room(self):
        return self.target - self.used()

    def small(self):
        return self.room() < 6000

    def tick(self, lo, hi):
        """Advance the clock by a log-uniform delay between lo and hi ms."""
        self.t += int(lo * (hi / lo) ** self.rng.random())

    def fit(self, n, per_line, dup=1):
        """Cap a random line count so that the content (written dup times) stays well inside the
        session's remaining budget: small sessions get small outputs."""
        return max(2, min(n, int(self.room() / (dup + 1.5) / per_line)))

    def big_size(self, lo, hi, dup=1):
        """A log-uniform size between lo and hi that fits the budget dup times over, or 0."""
        cap = min(hi, self.room() // (dup + 1))
        if cap < lo:
            return 0
        return int(lo * (cap / lo) ** self.rng.random())

    def rid(self, k):
        return "".join(self.rng.choices(ALNUM, k=k))

    def sha(self):
        return f"{self.rng.getrandbits(160):040x}"

    def para(self, lo, hi):
        return " ".join(self.rng.choices(self.p.sent, k=self.rng.randint(lo, hi)))

    def window(self, pool, n):
        """n consecutive lines of pool from a random place (at least 1, fewer than all)."""
        n = max(1, min(n, len(pool) - 1))
        s = self.rng.randrange(len(pool) - n)
        return pool[s:s + n]

    def code(self, n):
        return self.window(self.p.code[self.proj.lang], n)

    def logs(self, n):
        return "\n".join(self.window(self.p.log, n))

    def big_logs(self, size, most=4000):
        """About size bytes of log lines, in windows of at most `most` lines."""
        out, n = [], 0
        while n < size:
            chunk = self.logs(min(most, int((size - n) / self.p.log_avg) + 1))
            out.append(chunk)
            n += len(chunk) + 1
        return "\n".join(out)

    def png_b64(self, size_b64):
        """A PNG-headed blob whose base64 is about size_b64 bytes: (base64, raw length)."""
        raw = PNG_HEAD + self.rng.randbytes(max(16, size_b64 * 3 // 4 - len(PNG_HEAD)))
        return base64.b64encode(raw).decode(), len(raw)

    def pick(self, table):
        """A name from [(name, weight), ...]."""
        names, weights = zip(*table)
        return self.rng.choices(names, weights=weights)[0]

    def prompt_for(self, r, request):
        """A user prompt from r, a uniform draw: a short reply, a failing log to fix, or request()."""
        rng = self.rng
        if r < 0.15:
            return rng.choice(REPLIES)
        if r < 0.3:
            return (f"This fails:\n\n```\n{self.logs(self.fit(rng.randint(5, 60), self.p.log_avg, 2))}\n```\n\n"
                    f"{rng.choice(VERBS)} it please")
        return request()

    def summary_tail(self):
        """What final_text() puts after its bullets (a session may add a code block)."""
        return ""

    def final_text(self):
        rng = self.rng
        if rng.random() < 0.4 or self.small():
            return self.para(1, 4)
        bullets = "\n".join(f"- **`{rng.choice(self.proj.rels)}`**: {self.para(1, 2)}"
                            for _ in range(rng.randint(2, 6)))
        tail = self.summary_tail()
        return f"{self.para(1, 2)}\n\n## Summary\n\n{bullets}{tail}\n\n{self.para(1, 2)}"


def project_files(rng, cwd, lang, v):
    """48 distinct source files of a project in its language: (path separator, paths relative to
    cwd with '/', absolute paths with the separator)."""
    sep = "\\" if "\\" in cwd else "/"
    ext = EXT[lang]
    rels = set()
    while len(rels) < 48:
        if lang == "rust":
            rels.add(f"crates/{rng.choice(v.crates)}/src/{rng.choice(v.mods)}.rs")
        elif lang == "ts":
            rels.add(f"src/{rng.choice(['components', 'lib', 'routes', 'hooks'])}/{rng.choice(v.mods)}.{rng.choice([ext, 'tsx'])}")
        else:
            rels.add(f"{rng.choice(['evalkit', 'tests', 'scripts'])}/{rng.choice(v.mods)}.py")
    rels = sorted(rels)
    return sep, rels, [cwd + sep + r.replace("/", sep) for r in rels]


_iso_s = [None, ""]


def iso(ms):
    """ms since the epoch as 2026-01-05T08:00:00.000Z (the seconds part cached: it repeats)."""
    s, r = divmod(ms, 1000)
    if s != _iso_s[0]:
        _iso_s[0] = s
        _iso_s[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
    return f"{_iso_s[1]}.{r:03d}Z"


class Ids:
    """Corpus-wide UUIDs. The low 62 bits of each are a bijection of a counter: unique. The
    generator lays out the other bits (version, time, random)."""

    def __init__(self, rng):
        self.rng = rng
        self.n = 0
        self.mul = rng.getrandbits(62) | 1
        self.key = rng.getrandbits(62)

    def low62(self):
        self.n += 1
        return ((self.n * self.mul) & M62) ^ self.key


def uuid_text(v):
    """A 128-bit int in the 8-4-4-4-12 hex form."""
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Out:
    """A file written in large chunks; counts its bytes and lines into gen.bytes and gen.lines."""

    FLUSH_BYTES = 8 << 20

    def __init__(self, path, gen):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.f = open(path, "wb")
        self.buf = []
        self.pending = 0
        self.size = 0
        self.gen = gen

    def write(self, s, nlines=1):
        b = s.encode()
        self.buf.append(b)
        n = len(b)
        self.pending += n
        self.size += n
        self.gen.bytes += n
        self.gen.lines += nlines
        if self.pending >= self.FLUSH_BYTES:
            self.f.write(b"".join(self.buf))
            self.buf.clear()
            self.pending = 0

    def write_bytes(self, b, nlines):
        self.f.write(b"".join(self.buf))
        self.buf.clear()
        self.pending = 0
        self.f.write(b)
        self.size += len(b)
        self.gen.bytes += len(b)
        self.gen.lines += nlines

    def close(self):
        self.f.write(b"".join(self.buf))
        self.f.close()


# --------------------------------------------------------------------------------------------
# Corpus size and command line


def parse_args(doc, *more):
    """OUT_DIR, --size-mb, --sessions, --big-session-mb and --seed, with `more` (flag, type,
    default; type bool: a switch, off by default) before --seed; exits with usage when a size or
    count is out of range."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--size-mb", type=float, default=1000)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--big-session-mb", type=float, default=300)
    for flag, kind, default in more:
        if kind is bool:
            ap.add_argument(flag, action="store_true")
        else:
            ap.add_argument(flag, type=kind, default=default)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.size_mb <= 0 or a.sessions < 1:
        ap.error("--size-mb must be > 0 and --sessions >= 1")
    return ap, a


def big_target(a, whole, alone):
    """The big session's bytes: --big-session-mb capped at 30% of --size-mb, or `whole` when it is
    the only session (`alone`); 0 when --big-session-mb turns it off."""
    if a.big_session_mb <= 0:
        return 0
    return whole if alone else int(min(a.big_session_mb, 0.3 * a.size_mb) * MB)


def warn_short(prog, room, n, per_session):
    """Say so when n sessions of at least per_session bytes cannot fit in room."""
    if room < n * per_session:
        print(f"{prog}: warning: {n} sessions need about {n * per_session / MB:.1f} MB "
              f"besides the big one; the output will exceed --size-mb", file=sys.stderr)


def lognormal_weights(rng, n, mean, median):
    """n log-normal size weights; narrower when the mean budget per session is small, so that the
    median session still fits its smallest useful content (about `median` bytes) and the total
    stays on target."""
    sigma = min(1.5, math.sqrt(2 * math.log(max(1.0001, mean / median))))
    return [math.exp(rng.gauss(0, sigma)) for _ in range(n)]


def targets(weights, left, floor):
    """Each session's target in turn: its weight's share of what is left of the budget, left()
    asked again after each session is written (so the total lands on target), at least floor."""
    wleft = sum(weights)
    for w in weights:
        yield max(floor, int(left() * w / wleft))
        wleft -= w
