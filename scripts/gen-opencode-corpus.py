#!/usr/bin/env python3
"""gen-opencode-corpus.py: deterministic synthetic OpenCode session corpus (all lineages), for benchmarks.

Usage:
    scripts/gen-opencode-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                           [--big-session-mb 300] [--seed 1]

Writes, for about --sessions top-level sessions totalling about --size-mb MB (1 MB = 10^6 bytes,
measured as the bytes of the JSON payloads: T2 message.data + part.data, T1 message and part
files, G1/G2 messages.parts):

  OUT_DIR/opencode/opencode.db      T2 (TypeScript v1.2+) SQLite: project, session, message, part,
                                    todo, permission, session_share (migrations familiar_lady_ursula +
                                    add_project_commands, listed in __drizzle_migrations); WAL mode.
                                    ~85% of the data: one big session of --big-session-mb MB (capped
                                    at 30% of --size-mb; 0 turns it off) and a log-normal long tail.
  OUT_DIR/opencode/storage/         T1 (TypeScript v0.6-v1.1) JSON store: project/, session/<projectID>/,
                                    message/<ses>/, part/<msg>/, todo/, migration. ~5% of the data.
                                    3 sessions also exist in the T2 db (same ids): their first part was
                                    written as JSON before the one-time import, one turn of it never
                                    reached the db (partial import), and later turns exist only in the db.
  OUT_DIR/go/.opencode/opencode.db  G1 (opencode-ai/opencode) SQLite, timestamps in seconds. ~5%.
  OUT_DIR/crush/.crush/crush.db     G2 (charmbracelet/crush) SQLite: G1 plus messages.provider,
                                    is_summary_message, sessions.todos, read_files. ~5%.

Shapes follow crates/source-opencode/FORMAT.md. T lineage: ids
ses_/msg_/prt_ + 12 hex (ms*4096+counter, NOT-ed for sessions) + 14 base62, millisecond clocks,
message/part ids ascending within a session; user messages with text (some synthetic), @file and
image (data: URL, 100-800 KB) parts; assistant messages (one per LLM step) with step-start,
reasoning, text, tool parts (bash/read/edit/grep/task; completed with 50-500 KB outputs now and
then, error, rare running/pending at an interrupted end), step-finish, patch, snapshot and retry
parts; compaction (user `compaction` part + assistant summary:true); task sub-sessions (parentID,
state.metadata.sessionId). G lineage: user/assistant/tool rows whose `parts` are {type,data}
envelopes (text, reasoning, tool_call with a JSON-string input, tool_result in the next tool row,
finish, binary images); agent sub-sessions, summary messages, title-<id> sessions (G2). A
tool_call without a result exists only at an interrupted end (finished:false); tool_result
metadata is "" for synthetic errors and agent calls. G triggers are created after the bulk load,
so message_count is the generator's own count.

--sessions counts top-level sessions: ~5% each (at least 1 from --sessions 4) go to T1, G1 and
G2, the rest to T2. Sub-sessions (task/agent) come on top and are reported as "+Nsub".

Same arguments give identical row contents (everything comes from random.Random(seed); the SQLite
page layout may differ, compare `iterdump()` output). Prints one summary line to stderr.
Python 3.11 standard library only.
"""

import base64
import calendar
import collections
import json
import operator
import os
import sqlite3
import string
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the three generators share)
from corpus import ADJS, CLAUSES, EXT, J, MB, VERBS, iso, uuid_text  # noqa: E402

FLUSH_ROWS = 4000
FLUSH_BYTES = 48 << 20


def ms_at(y, mo, d, h=0, mi=0, s=0):
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000


T2_FROM, T2_TO = ms_at(2026, 2, 16, 8), ms_at(2026, 5, 20)
T1_FROM, T1_TO = ms_at(2025, 9, 2, 8), ms_at(2026, 2, 4)
OVL_FROM, OVL_TO = ms_at(2026, 1, 22), ms_at(2026, 2, 9)
IMPORT_MS = ms_at(2026, 2, 16, 9, 12, 7) + 431  # first start of v1.2: T1 -> T2 import
G1_FROM, G1_TO = ms_at(2025, 4, 25), ms_at(2025, 7, 20)
G2_FROM, G2_TO = ms_at(2025, 7, 1), ms_at(2026, 3, 1)

JI = json.JSONEncoder(ensure_ascii=False, indent=2, check_circular=False).encode  # JSON.stringify(x,null,2)
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B62_PAIRS = [a + b for a in B62 for b in B62]
M48 = (1 << 48) - 1


def blen(s):
    return len(s) if s.isascii() else len(s.encode())


# --------------------------------------------------------------------------------------------
# Vocabulary and pools (built once from the seeded RNG)

NOUNS = corpus.NOUNS + [
    "timestamp", "payload", "dedupe step", "rate limiter", "snapshot", "serializer", "HTTP client",
    "connection pool", "benchmark", "CI job", "chart component", "query builder",
]
IDENTS = corpus.IDENTS + ["ts"]
METHODS = ["parse", "flush", "push", "extend", "insert", "get", "len", "is_empty", "to_string", "clone",
           "unwrap_or_default", "context", "map_err", "as_str", "send", "collect", "iter", "next",
           "take", "read_line", "write_all", "retain", "sort_by_key", "finish"]
CRATES = ["tonbo-core", "tonbo-map", "tonbo-batch", "tonbo-post", "opencode-read", "codex-read"]
GERUNDS = ["Refactoring", "Fixing", "Tracing", "Renaming", "Simplifying", "Documenting", "Profiling",
           "Hardening", "Removing", "Splitting", "Rewriting", "Debugging", "Reviewing", "Cleaning up"]

# (cwd, language, weight, git)
PROJECTS = [
    ("/home/dev/src/tonbo-ingest", "rust", 6, True),
    ("/home/dev/src/tonbo", "rust", 3, True),
    ("/Users/ana/work/web_dashboard.v2", "ts", 3, True),
    ("/home/dev/src/ml-eval/tools", "py", 2, True),
    ("/Users/ana/Documents/Projets Été/notes", "py", 1, False),
    ("C:\\Users\\sam\\code\\infra-cli", "ts", 1, True),
]
T_MODELS = [("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-opus-4-5"),
            ("openai", "gpt-5.1-codex"), ("opencode", "big-pickle"), ("google", "gemini-3-pro-preview")]
T2_VERSIONS = ["1.2.0", "1.2.1", "1.2.4", "1.2.6", "1.2.6"]
T1_VERSIONS = ["0.6.4", "0.15.8", "1.0.119", "1.1.36", "1.1.65"]
T_TOOLS = [("bash", 30), ("read", 30), ("edit", 18), ("grep", 14), ("task", 1.2)]
T_SUB_TOOLS = [("read", 45), ("grep", 35), ("bash", 20)]
G1_MODELS = ["claude-3.7-sonnet", "claude-3.7-sonnet", "gpt-4.1", "gemini-2.5", "claude-4-sonnet"]
G2_MODELS = [("anthropic", "claude-sonnet-4-20250514"), ("anthropic", "claude-opus-4-1-20250805"),
             ("openai", "gpt-5"), ("openrouter", "qwen/qwen3-coder")]
G_TOOLS = [("bash", 28), ("view", 30), ("edit", 16), ("grep", 14), ("ls", 8), ("agent", 1.5)]
G_SUB_TOOLS = [("view", 45), ("grep", 35), ("ls", 20)]
RETRY_ERRORS = [(529, "Overloaded"), (500, "Internal server error"), (429, "Rate limit exceeded"),
                (503, "Service Unavailable")]
WORDS = corpus.Vocab(nouns=NOUNS, clauses=CLAUSES, idents=IDENTS, methods=METHODS, crates=CRATES)
SENTENCES = ["plan", "because", "check", "understand", "looks", "next", "passed", "tests", "keeps",
             "wait", "wants", "hmm"]
CODE = {
    "rust": ["let", "fn", "end_block", "end_item", "blank", "use", "comment", "derive", "field", "early_return",
             "error", "assert"],
    "ts": ["const", "function", "end_item", "end_block", "blank", "import", "comment", "guard", "jsx", "expect"],
    "py": ["assign", "def", "return", "blank", "import", "comment", "class", "guard", "assert"],
}
LOG = ["compiling", "ok", "ok", "failed", "warning", "at", "info_feb", "modified", "finished", "npm", "check",
       "pytest"]


class Pools(corpus.Pools):
    """Prebuilt text: sentences, code lines per language, log lines, read/view line prefixes."""

    def __init__(self, rng):
        super().__init__(rng, WORDS, sentences=SENTENCES, code=CODE, log=LOG)
        self._nums = [f"{i:05d}| " for i in range(1, 20001)]
        self._gnums = [f"{i:6d}|" for i in range(1, 20001)]

    def nums(self, start, n):
        """T read-tool line prefixes `00001| ` for lines start..start+n-1."""
        if start + n - 1 <= len(self._nums):
            return self._nums[start - 1:start - 1 + n]
        return [f"{i:05d}| " for i in range(start, start + n)]

    def gnums(self, n):
        """G view-tool line prefixes `     1|`."""
        return self._gnums[:n] if n <= len(self._gnums) else [f"{i:6d}|" for i in range(1, n + 1)]


class Project:
    def __init__(self, rng, cwd, lang, weight, git):
        self.cwd, self.lang, self.weight, self.git = cwd, lang, weight, git
        self.tid = f"{rng.getrandbits(160):040x}" if git else "global"  # git root commit
        self.worktree = cwd if git else "/"
        self.created = T1_FROM - rng.randrange(30 * 86_400_000)
        self.sep, self.rels, self.files = corpus.project_files(rng, cwd, lang, WORDS)

class TIds:
    """packages/opencode/src/id/id.ts: prefix_ + 12 hex of (ms*4096+counter) + 14 base62."""

    def __init__(self, rng):
        self.rng = rng
        self.last = -1
        self.n = 0

    def make(self, prefix, ms, desc=False):
        if ms != self.last:
            self.last = ms
            self.n = 0
        self.n += 1
        v = ms * 4096 + self.n
        if desc:
            v = ~v
        return f"{prefix}_{v & M48:012x}{''.join(self.rng.choices(B62_PAIRS, k=7))}"


def uuid4(rng):
    return uuid_text((rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)) | (4 << 76) | (2 << 62))


# --------------------------------------------------------------------------------------------
# Stores


def fresh_db(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


class Db:
    """Buffered executemany into one SQLite file; one transaction per flush."""

    def __init__(self, path, schema, inserts):
        self.path = path
        self.conn = fresh_db(path)
        self.conn.executescript(schema)
        self.sql = inserts
        self.buf = {k: [] for k in inserts}
        self.rows = 0
        self.pending = 0

    def add(self, table, row, n=0):
        self.buf[table].append(row)
        self.rows += 1
        self.pending += n
        if self.rows >= FLUSH_ROWS or self.pending >= FLUSH_BYTES:
            self.flush()

    def flush(self):
        if not self.rows:
            return
        c = self.conn
        c.execute("BEGIN")
        for k, rows in self.buf.items():
            if rows:
                c.executemany(self.sql[k], rows)
                rows.clear()
        c.execute("COMMIT")
        self.rows = self.pending = 0

    def close(self, post=""):
        self.flush()
        if post:
            self.conn.executescript(post)
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        assert mode == "wal", mode
        self.conn.close()


T2_SCHEMA = """
CREATE TABLE `project` (`id` text PRIMARY KEY, `worktree` text NOT NULL, `vcs` text, `name` text, `icon_url` text, `icon_color` text, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `time_initialized` integer, `sandboxes` text NOT NULL);
CREATE TABLE `message` (`id` text PRIMARY KEY, `session_id` text NOT NULL, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL, CONSTRAINT `fk_message_session_id_session_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session`(`id`) ON DELETE CASCADE);
CREATE TABLE `part` (`id` text PRIMARY KEY, `message_id` text NOT NULL, `session_id` text NOT NULL, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL, CONSTRAINT `fk_part_message_id_message_id_fk` FOREIGN KEY (`message_id`) REFERENCES `message`(`id`) ON DELETE CASCADE);
CREATE TABLE `permission` (`project_id` text PRIMARY KEY, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `data` text NOT NULL, CONSTRAINT `fk_permission_project_id_project_id_fk` FOREIGN KEY (`project_id`) REFERENCES `project`(`id`) ON DELETE CASCADE);
CREATE TABLE `session` (`id` text PRIMARY KEY, `project_id` text NOT NULL, `parent_id` text, `slug` text NOT NULL, `directory` text NOT NULL, `title` text NOT NULL, `version` text NOT NULL, `share_url` text, `summary_additions` integer, `summary_deletions` integer, `summary_files` integer, `summary_diffs` text, `revert` text, `permission` text, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, `time_compacting` integer, `time_archived` integer, CONSTRAINT `fk_session_project_id_project_id_fk` FOREIGN KEY (`project_id`) REFERENCES `project`(`id`) ON DELETE CASCADE);
CREATE TABLE `todo` (`session_id` text NOT NULL, `content` text NOT NULL, `status` text NOT NULL, `priority` text NOT NULL, `position` integer NOT NULL, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, CONSTRAINT `todo_pk` PRIMARY KEY(`session_id`, `position`), CONSTRAINT `fk_todo_session_id_session_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session`(`id`) ON DELETE CASCADE);
CREATE TABLE `session_share` (`session_id` text PRIMARY KEY, `id` text NOT NULL, `secret` text NOT NULL, `url` text NOT NULL, `time_created` integer NOT NULL, `time_updated` integer NOT NULL, CONSTRAINT `fk_session_share_session_id_session_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session`(`id`) ON DELETE CASCADE);
CREATE INDEX `message_session_idx` ON `message` (`session_id`);
CREATE INDEX `part_message_idx` ON `part` (`message_id`);
CREATE INDEX `part_session_idx` ON `part` (`session_id`);
CREATE INDEX `session_project_idx` ON `session` (`project_id`);
CREATE INDEX `session_parent_idx` ON `session` (`parent_id`);
CREATE INDEX `todo_session_idx` ON `todo` (`session_id`);
ALTER TABLE `project` ADD `commands` text;
CREATE TABLE "__drizzle_migrations" (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at numeric, name text, applied_at TEXT);
"""
T2_INSERTS = {
    "project": "INSERT INTO project VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "session": "INSERT INTO session VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    "message": "INSERT INTO message VALUES (?,?,?,?,?)",
    "part": "INSERT INTO part VALUES (?,?,?,?,?,?)",
    "todo": "INSERT INTO todo VALUES (?,?,?,?,?,?,?)",
    "session_share": "INSERT INTO session_share VALUES (?,?,?,?,?,?)",
    "permission": "INSERT INTO permission VALUES (?,?,?,?)",
    "mig": "INSERT INTO __drizzle_migrations (hash, created_at, name, applied_at) VALUES (?,?,?,?)",
}

G_SCHEMA = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    parent_session_id TEXT,
    title TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    prompt_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens>= 0),
    cost REAL NOT NULL DEFAULT 0.0 CHECK (cost >= 0.0),
    updated_at INTEGER NOT NULL,  -- Unix timestamp in seconds
    created_at INTEGER NOT NULL   -- Unix timestamp in seconds
, summary_message_id TEXT{s_extra});
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    path TEXT NOT NULL,
    content TEXT NOT NULL,
    version {f_version},
    created_at INTEGER NOT NULL,  -- Unix timestamp in seconds
    updated_at INTEGER NOT NULL,  -- Unix timestamp in seconds
    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE,
    UNIQUE(path, session_id, version)
);
CREATE INDEX idx_files_session_id ON files (session_id);
CREATE INDEX idx_files_path ON files (path);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL,
    parts {parts_type} NOT NULL default '[]',
    model TEXT,
    created_at INTEGER NOT NULL,  -- Unix timestamp in seconds
    updated_at INTEGER NOT NULL,  -- Unix timestamp in seconds
    finished_at INTEGER,  -- Unix timestamp in seconds
{m_extra}    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX idx_messages_session_id ON messages (session_id);
CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
{extra}
"""
G_TRIGGERS = """
CREATE TRIGGER update_sessions_updated_at AFTER UPDATE ON sessions
BEGIN UPDATE sessions SET updated_at = strftime('%s', 'now') WHERE id = new.id; END;
CREATE TRIGGER update_files_updated_at AFTER UPDATE ON files
BEGIN UPDATE files SET updated_at = strftime('%s', 'now') WHERE id = new.id; END;
CREATE TRIGGER update_messages_updated_at AFTER UPDATE ON messages
BEGIN UPDATE messages SET updated_at = strftime('%s', 'now') WHERE id = new.id; END;
CREATE TRIGGER update_session_message_count_on_insert AFTER INSERT ON messages
BEGIN UPDATE sessions SET message_count = message_count + 1 WHERE id = new.session_id; END;
CREATE TRIGGER update_session_message_count_on_delete AFTER DELETE ON messages
BEGIN UPDATE sessions SET message_count = message_count - 1 WHERE id = old.session_id; END;
"""


def g_schema(crush):
    if crush:
        return G_SCHEMA.format(
            s_extra=", todos TEXT", f_version="INTEGER NOT NULL DEFAULT 0", parts_type="BLOB",
            m_extra="    provider TEXT,\n    is_summary_message INTEGER DEFAULT 0 NOT NULL,\n",
            extra="CREATE INDEX idx_sessions_created_at ON sessions (created_at);\n"
                  "CREATE INDEX idx_messages_created_at ON messages (created_at);\n"
                  "CREATE TABLE read_files (session_id TEXT NOT NULL, path TEXT NOT NULL, "
                  "read_at INTEGER NOT NULL, FOREIGN KEY (session_id) REFERENCES sessions (id) "
                  "ON DELETE CASCADE, PRIMARY KEY (path, session_id));")
    return G_SCHEMA.format(s_extra="", f_version="TEXT NOT NULL", parts_type="TEXT", m_extra="", extra="")


G1_MIGRATIONS = [20250424200609, 20250515105448]
G2_MIGRATIONS = [20250424200609, 20250515105448, 20250624000000, 20250627000000, 20250810000000,
                 20250812000000, 20260127000000]


def g_inserts(crush):
    return {
        "sessions": f"INSERT INTO sessions VALUES ({','.join('?' * (11 if crush else 10))})",
        "messages": f"INSERT INTO messages VALUES ({','.join('?' * (10 if crush else 8))})",
        "files": "INSERT INTO files VALUES (?,?,?,?,?,?,?)",
        "read_files": "INSERT INTO read_files VALUES (?,?,?)",
        "goose": "INSERT INTO goose_db_version (version_id, is_applied, tstamp) VALUES (?,?,?)",
    }


def write_files(dirs, files):
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    for path, b in files:
        with open(path, "wb") as f:
            f.write(b)


class T1Store:
    """<data>/storage/ JSON files, JSON.stringify(x, null, 2). Encoding happens here; the file
    creation (slow on some filesystems) runs on a few writer threads."""

    def __init__(self, root):
        self.root = root
        self.files = 0
        self.pool = ThreadPoolExecutor(8)
        self.pending = collections.deque()

    def submit(self, dirs, files):
        self.pending.append(self.pool.submit(write_files, dirs, files))
        self.files += len(files)
        while len(self.pending) > 512:
            self.pending.popleft().result()

    def write(self, rel, obj):
        path = os.path.join(self.root, rel)
        b = JI(obj).encode()
        self.submit([os.path.dirname(path)], [(path, b)])
        return len(b)

    def message(self, sid, mid, msg, parts):
        mdir = os.path.join(self.root, "message", sid)
        pdir = os.path.join(self.root, "part", mid)
        b = JI({"id": mid, "sessionID": sid, **msg}).encode()
        files = [(os.path.join(mdir, mid + ".json"), b)]
        n = len(b)
        for pid, p, _tc, _tu in parts:
            b = JI({"id": pid, "sessionID": sid, "messageID": mid, **p}).encode()
            files.append((os.path.join(pdir, pid + ".json"), b))
            n += len(b)
        self.submit([mdir, pdir] if parts else [mdir], files)
        return n

    def close(self):
        while self.pending:
            self.pending.popleft().result()
        self.pool.shutdown()


# --------------------------------------------------------------------------------------------
# Session base: budget, clock, text helpers


class Base(corpus.Budget):
    def used(self):
        return self.bytes if self.big else self.bytes + self.child_bytes

    def big_code(self, size):
        lines, n = [], 0
        avg = self.p.code_avg[self.proj.lang]
        while n < size:
            chunk = self.code(min(8000, int((size - n) / avg) + 1))
            lines += chunk
            n += sum(map(len, chunk)) + len(chunk)
        return lines

    def prompt(self):
        rng, c = self.rng, self.rng.choice
        rel = c(self.proj.rels)
        r = rng.random()
        if r < 0.25:
            return f"Can you {c(VERBS)} the {c(NOUNS)} in {rel}? {c(CLAUSES).capitalize()}."
        if r < 0.45:
            return f"The {c(NOUNS)} is {c(ADJS)}. Please {c(VERBS)} it."
        if r < 0.55:
            return "run the tests and fix whatever fails"
        if r < 0.65:
            return f"why is the {c(NOUNS)} {c(ADJS)}?"
        if r < 0.9 or self.small():
            return f"{c(VERBS)} {rel}"
        return self.para(3, 10) + "\n\n" + "\n".join(f"- {self.para(1, 1)}" for _ in range(rng.randint(2, 6)))

    def call_id(self):
        return ("toolu_01" + self.rid(22)) if self.anthropic else ("call_" + self.rid(24))

    def run(self, first_prompt=None):
        """Turns until the budget is spent (at least one). Now and then a top-level session, and
        the first one of each layout, ends mid-step; then the session's own row or file."""
        if first_prompt is not None:
            self.turn(first_prompt)
        while self.room() > 0 or self.turns == 0:
            self.turn()
            self.after_turn()
        self.last_turns()
        g = self.g
        if self.parent is None and not self.big and (self.rng.random() < 0.03 or self.layout in g.need_interrupt):
            g.need_interrupt.discard(self.layout)
            self.interrupted_end()
        self.finish()

    def after_turn(self):
        """Nothing here (TSess hands an overlap session over from T1 to T2)."""

    def last_turns(self):
        """Nothing here (TSess: the overlap hand-over's last chance, and a turn after it)."""

    def title_text(self):
        c = self.rng.choice
        return f"{c(VERBS).capitalize()} {c(ADJS)} {c(NOUNS)}"

    def edit_pair(self):
        """(path, before lines, after lines, start, old lines, new lines)."""
        rng = self.rng
        path = rng.choice(self.proj.files)
        n = self.fit(rng.randint(20, 300), self.p.code_avg[self.proj.lang], 3)
        before = self.code(n)
        i = rng.randrange(len(before))
        k = min(len(before) - i, rng.randint(1, 12))
        new = self.code(rng.randint(1, 14))
        after = before[:i] + new + before[i + k:]
        return path, before, after, i, before[i:i + k], new


# --------------------------------------------------------------------------------------------
# TypeScript lineage (T1 JSON store, T2 SQLite)


class TSess(Base):
    def __init__(self, g, rng, layout, proj, start, target, *, big=False, parent=None, agent="build",
                 hold=False):
        self.g, self.rng, self.layout, self.proj, self.t = g, rng, layout, proj, start
        self.target, self.big, self.parent, self.agent = target, big, parent, agent
        self.p = g.pools
        self.created = start
        self.sid = g.ids.make("ses", start, desc=True)
        self.provider, self.model = parent.provider_model() if parent else rng.choice(T_MODELS)
        self.anthropic = self.provider == "anthropic"
        self.hold = [] if hold else None
        self.version = rng.choice(T1_VERSIONS if layout == "t1" or hold else T2_VERSIONS)
        self.slug = corpus.slug(rng)
        self.cwd = proj.cwd
        self.bytes = self.child_bytes = 0
        self.turns = self.msgs = 0
        self.ctx = rng.randint(9000, 22000)
        self.additions = self.deletions = 0
        self.edited = set()
        self.summary_tools = []
        self.last_text = ""
        self.first_prompt = None
        self.t1_title = None
        self.release_turn = None

    def provider_model(self):
        return self.provider, self.model

    def mid(self):
        return self.g.ids.make("msg", self.t)

    def pid(self):
        return self.g.ids.make("prt", self.t)

    # ---- emission

    def emit(self, mid, msg, parts):
        """msg: message minus id/sessionID; parts: [pid, part minus ids, time_created, time_updated]."""
        g = self.g
        self.msgs += 1
        g.rows[self.layout] += 1 + len(parts)
        if self.layout == "t1":
            n = g.t1.message(self.sid, mid, msg, parts)
            g.bytes["t1"] += n
            self.bytes += n
            return
        mjs = J(msg)
        pjs = [J(p[1]) for p in parts]
        n = blen(mjs) + sum(map(blen, pjs))
        self.bytes += n
        if self.hold is not None:
            self.hold.append((self.turns, mid, msg, mjs, parts, pjs, n))
            return
        g.bytes["t2"] += n
        tm = msg["time"]
        db, sid = g.t2, self.sid
        db.add("message", (mid, sid, tm["created"], tm.get("completed") or tm["created"], mjs), len(mjs))
        for (pid, _p, tc, tu), s in zip(parts, pjs):
            db.add("part", (pid, mid, sid, tc, tu, s), len(s))

    def release(self):
        """Overlap session: what was held so far went to T1 JSON and (but for one turn) to T2 as
        imported rows (part.time_created = import time); the session then continues in T2 only."""
        g = self.g
        hold, self.hold = self.hold, None
        self.release_turn = self.turns
        drop = self.turns // 2 if self.turns >= 2 else -1
        last = self.created
        k = 0
        for turn, mid, msg, mjs, parts, pjs, n in hold:
            nt1 = g.t1.message(self.sid, mid, msg, parts)
            g.bytes["t1"] += nt1
            g.rows["t1"] += 1 + len(parts)
            last = max(last, msg["time"].get("completed") or msg["time"]["created"])
            if turn == drop:
                g.rows["t2"] -= 1 + len(parts)
                continue
            g.bytes["t2"] += n
            g.t2.add("message", (mid, self.sid, msg["time"]["created"], msg["time"]["created"], mjs), len(mjs))
            for (pid, _p, _tc, _tu), s in zip(parts, pjs):
                k += 1
                g.t2.add("part", (pid, mid, self.sid, IMPORT_MS + k, IMPORT_MS + k, s), len(s))
        self.t1_title = self.title_text()
        g.t1_sessions.append(self.t1_info(self.t1_title, last, T1_VERSIONS[-1]))
        g.t1_projects.add(self.proj)
        self.t = max(self.t, IMPORT_MS) + int(3_600_000 * (72 / 1) ** self.rng.random())
        self.version = self.rng.choice(T2_VERSIONS)

    # ---- parts

    def user(self, text, *, synthetic=False, attach=True, compaction=None):
        rng = self.rng
        t0 = self.t
        mid = self.mid()
        parts = []
        if compaction is not None:
            parts.append([self.pid(), {"type": "compaction", "auto": compaction}, t0, t0])
        else:
            d = {"type": "text", "text": text}
            if synthetic:
                d["synthetic"] = True
            parts.append([self.pid(), d, t0, t0])
        if attach and compaction is None and not synthetic:
            r = rng.random()
            if r < 0.006:
                size = self.big_size(100_000, 800_000)
                if size:
                    url = "data:image/png;base64," + self.png_b64(size)[0]
                    parts.append([self.pid(), {"type": "file", "mime": "image/png",
                                               "filename": f"Screenshot 2026-0{rng.randint(1, 5)}-1{rng.randint(0, 9)}.png",
                                               "url": url}, t0, t0])
            elif r < 0.06:  # @file mention: synthetic Read call + content + file part
                rel = rng.choice(self.proj.rels)
                path = self.proj.cwd + self.proj.sep + rel.replace("/", self.proj.sep)
                lines = self.code(self.fit(rng.randint(20, 200), self.p.code_avg[self.proj.lang] + 7))
                body = "<file>\n" + "\n".join(map(operator.add, self.p.nums(1, len(lines)), lines)) + "\n</file>"
                parts.append([self.pid(), {"type": "text", "synthetic": True,
                                           "text": "Called the Read tool with the following input: "
                                                   + J({"filePath": path})}, t0, t0])
                parts.append([self.pid(), {"type": "text", "synthetic": True, "text": body}, t0, t0])
                start = rng.randint(0, 20)
                parts.append([self.pid(), {"type": "file", "mime": "text/plain", "filename": rel,
                                           "url": "file://" + path.replace("\\", "/"),
                                           "source": {"type": "file", "path": rel,
                                                      "text": {"value": "@" + rel, "start": start,
                                                               "end": start + len(rel) + 1}}}, t0, t0])
        msg = {"role": "user", "time": {"created": t0}, "agent": self.agent,
               "model": {"providerID": self.provider, "modelID": self.model}}
        if compaction is None and not synthetic and rng.random() < 0.2:
            msg["summary"] = {"title": self.title_text(), "diffs": []}
        self.emit(mid, msg, parts)
        self.ctx += len(text) // 4
        return mid

    def tokens(self, out_len):
        rng = self.rng
        out = out_len // 4 + rng.randint(8, 80)
        reasoning = rng.randint(0, 400) if rng.random() < 0.5 else 0
        cw = rng.randint(0, 3000)
        tok = {"input": rng.randint(1, 40), "output": out, "reasoning": reasoning,
               "cache": {"read": self.ctx, "write": cw}}
        cost = round((tok["input"] * 3 + out * 15 + reasoning * 15 + self.ctx * 0.3 + cw * 3.75) / 1e6, 8)
        self.ctx += cw + out
        return tok, cost

    def assistant(self, uid, final, table, *, summary=False):
        """One LLM step = one assistant message. Returns False when the turn was aborted."""
        rng = self.rng
        self.tick(150, 2500)
        t0 = self.t
        mid = self.mid()
        parts = []
        P = parts.append
        if rng.random() < 0.012:
            for attempt in range(1, rng.randint(2, 4)):
                code, text = rng.choice(RETRY_ERRORS)
                P([self.pid(), {"type": "retry", "attempt": attempt,
                                "error": {"name": "APIError", "data": {"message": text, "statusCode": code,
                                                                       "isRetryable": True}},
                                "time": {"created": self.t}}, self.t, self.t])
                self.tick(1000, 30000)
        self.tick(300, 4000)
        P([self.pid(), {"type": "step-start", "snapshot": self.sha()}, self.t, self.t])
        out_len = 0
        if not summary and rng.random() < 0.55:
            p = self.pid()
            ts = self.t
            text = self.para(1, 3 if self.small() else 10)
            self.tick(300, 6000)
            d = {"type": "reasoning", "text": text, "time": {"start": ts, "end": self.t}}
            if self.anthropic:
                d["metadata"] = {"anthropic": {"signature": base64.b64encode(rng.randbytes(rng.randint(120, 600))).decode()}}
            P([p, d, ts, self.t])
            out_len += len(text)
        aborted = False
        edits = []
        if summary:
            text = self.para(8, 30) + "\n\n## Next steps\n\n" + "\n".join(
                f"- {self.para(1, 1)}" for _ in range(rng.randint(2, 6)))
        elif final:
            text = self.final_text()
        else:
            text = self.para(1, 3) if rng.random() < 0.6 else None
        if text:
            p = self.pid()
            ts = self.t
            self.tick(200, 200 + len(text) * 8)
            P([p, {"type": "text", "text": text, "time": {"start": ts, "end": self.t}}, ts, self.t])
            out_len += len(text)
            self.last_text = text
        if not final and not summary:
            n = 1 if rng.random() < 0.8 else rng.randint(2, 3)
            for _ in range(n):
                name = self.pick(table)
                if name == "task" and (self.parent or self.hold is not None or self.room() < 30_000
                                       or (self.big and rng.random() < 0.9)):
                    name = "read"
                part = self.tool_part(name, edits)
                P(part)
                out_len += 80
                if rng.random() < 0.008:  # Esc: remaining tools aborted
                    aborted = True
                    break
        tok, cost = self.tokens(out_len)
        msg = {"role": "assistant", "time": {"created": t0}, "parentID": uid, "modelID": self.model,
               "providerID": self.provider, "mode": "compaction" if summary else self.agent,
               "agent": "compaction" if summary else self.agent,
               "path": {"cwd": self.cwd, "root": self.proj.worktree}, "cost": cost, "tokens": tok}
        if summary:
            msg["summary"] = True
        if aborted:
            self.tick(100, 3000)
            msg["time"]["completed"] = self.t
            msg["error"] = {"name": "MessageAbortedError", "data": {"message": "The operation was aborted."}}
            self.emit(mid, msg, parts)
            return False
        finish = "stop" if final or summary else "tool-calls"
        self.tick(20, 300)
        P([self.pid(), {"type": "step-finish", "reason": finish, "snapshot": self.sha(), "cost": cost,
                        "tokens": tok}, self.t, self.t])
        if edits:
            P([self.pid(), {"type": "patch", "hash": self.sha(), "files": sorted(set(edits))}, self.t, self.t])
        elif rng.random() < 0.02:
            P([self.pid(), {"type": "snapshot", "snapshot": self.sha()}, self.t, self.t])
        msg["time"]["completed"] = self.t
        msg["finish"] = finish
        if rng.random() < 0.004:
            msg["error"] = {"name": "APIError", "data": {"message": "Overloaded", "statusCode": 529,
                                                         "isRetryable": True}}
        self.emit(mid, msg, parts)
        return True

    def tool_part(self, name, edits):
        rng = self.rng
        pid = self.pid()
        ts = self.t
        call = self.call_id()
        inp, out, title, meta, err = getattr(self, "t_" + name)(edits)
        if name != "task":
            self.tick(15, 90_000 if name == "bash" else 800)
        te = self.t
        if err:
            state = {"status": "error", "input": inp, "error": err, "time": {"start": ts, "end": te}}
        else:
            state = {"status": "completed", "input": inp, "output": out, "title": title, "metadata": meta,
                     "time": {"start": ts, "end": te}}
            if rng.random() < 0.03:
                state["time"]["compacted"] = te + rng.randint(600_000, 7_200_000)
        self.ctx += min(30_000, len(out or err) // 4)
        self.summary_tools.append({"id": pid, "tool": name, "state": {"status": state["status"],
                                                                      "title": title if not err else None}})
        return [pid, {"type": "tool", "callID": call, "tool": name, "state": state}, ts, te]

    def t_bash(self, edits):
        rng = self.rng
        lang = self.proj.lang
        cmds = {
            "rust": ["cargo test -p {c}", "cargo build --workspace", "cargo clippy --workspace -- -D warnings"],
            "ts": ["npm test", "npx tsc --noEmit", "npm run build"],
            "py": ["pytest -x -q", "ruff check ."],
        }[lang] + ["git status", "git diff --stat", "git log --oneline -20", "ls -la", "rg -n '{i}' ."]
        cmd = rng.choice(cmds).format(c=rng.choice(CRATES), i=rng.choice(IDENTS))
        desc = rng.choice(["Run the tests", "Build the workspace", "Show changed files", "Show recent commits",
                           "Search for usages", "List files", "Run the linter"])
        inp = {"command": cmd, "description": desc}
        if rng.random() < 0.2:
            inp["timeout"] = 600000
        if rng.random() < 0.03:
            size = self.big_size(50_000, 500_000, dup=1)
            out = self.big_logs(size) if size else self.logs(rng.randint(3, 60))
        else:
            n = rng.choice([1, 3, 8, 20, 40, 80]) if rng.random() < 0.9 else rng.randint(80, 600)
            out = self.logs(min(n, self.fit(n, self.p.log_avg, 2)))
        if rng.random() < 0.02:
            return inp, None, cmd, None, "Error: The user rejected permission to use this specific tool call."
        exit_code = 0 if rng.random() < 0.9 else rng.choice([1, 2, 101])
        mo = out if len(out) <= 30_000 else out[:30_000] + "\n\n..."
        return inp, out, cmd, {"output": mo, "exit": exit_code, "description": desc}, None

    def t_read(self, edits):
        rng = self.rng
        path = rng.choice(self.proj.files)
        inp = {"filePath": path}
        if rng.random() < 0.04:
            return {"filePath": path + ".bak"}, None, None, None, f"Error: File not found: {path}.bak"
        if rng.random() < 0.03:
            size = self.big_size(50_000, 500_000)
            lines = self.big_code(size) if size else self.code(rng.randint(20, 300))
        else:
            lines = self.code(self.fit(rng.randint(15, 400), self.p.code_avg[self.proj.lang] + 7))
        if rng.random() < 0.15:
            inp["offset"] = rng.randint(0, 400)
            inp["limit"] = 2000
        off = inp.get("offset", 0)
        body = "\n".join(map(operator.add, self.p.nums(off + 1, len(lines)), lines))
        out = f"<file>\n{body}\n\n(End of file - total {off + len(lines)} lines)\n</file>"
        rel = os.path.relpath(path, self.proj.cwd) if self.proj.sep == "/" else path
        return inp, out, rel, {"preview": "\n".join(lines[:20]), "truncated": False}, None

    def t_edit(self, edits):
        rng = self.rng
        path, before, after, i, old, new = self.edit_pair()
        inp = {"filePath": path, "oldString": "\n".join(old), "newString": "\n".join(new)}
        if rng.random() < 0.05:
            return inp, None, None, None, ("Error: oldString not found in content" if rng.random() < 0.7 else
                                           "Error: The user rejected permission to use this specific tool call.")
        norm = path.replace("\\", "/")
        diff = (f"Index: {norm}\n===================================================================\n"
                f"--- {norm}\n+++ {norm}\n@@ -{i + 1},{len(old)} +{i + 1},{len(new)} @@\n"
                + "".join(f"-{ln}\n" for ln in old) + "".join(f"+{ln}\n" for ln in new))
        self.additions += len(new)
        self.deletions += len(old)
        self.edited.add(path)
        edits.append(path)
        meta = {"diagnostics": {}, "diff": diff,
                "filediff": {"file": path, "before": "\n".join(before), "after": "\n".join(after),
                             "additions": len(new), "deletions": len(old)}}
        rel = os.path.relpath(path, self.proj.cwd) if self.proj.sep == "/" else path
        return inp, "Edit applied successfully.", rel, meta, None

    def t_grep(self, edits):
        rng = self.rng
        pat = rng.choice(IDENTS) + rng.choice(["", "\\(", "_[a-z]+", "\\b"])
        inp = {"pattern": pat}
        if rng.random() < 0.4:
            inp["include"] = "*." + EXT[self.proj.lang]
        if rng.random() < 0.05:
            return inp, "No files found", pat, {"matches": 0, "truncated": False}, None
        files = rng.sample(self.proj.files, rng.randint(1, 6))
        lines, n = [f"Found {{}} matches"], 0
        for f in files:
            lines.append(f"{f}:")
            for ln in self.code(rng.randint(1, 8)):
                lines.append(f"  Line {rng.randint(1, 900)}: {ln.strip()}")
                n += 1
            lines.append("")
        lines[0] = f"Found {n} matches"
        return inp, "\n".join(lines), pat, {"matches": n, "truncated": False}, None

    def t_task(self, edits):
        rng = self.rng
        agent = rng.choice(["general", "explore"])
        desc = f"{rng.choice(VERBS).capitalize()} {rng.choice(NOUNS)}"
        inp = {"description": desc, "prompt": self.para(2, 8), "subagent_type": agent}
        self.tick(50, 400)
        hi = max(6000, min(400_000, int(self.room() * 0.05)))
        target = int(6000 * (hi / 6000) ** rng.random())
        child = TSess(self.g, corpus.child_rng(rng), self.layout, self.proj, self.t, target,
                      parent=self, agent=agent)
        child.title = f"{desc} (@{agent} subagent)"
        child.run(first_prompt=inp["prompt"])
        self.child_bytes += child.used()
        self.t = child.t + rng.randint(20, 400)
        out = f"{child.last_text}\n\n<task_metadata>\nsession_id: {child.sid}\n</task_metadata>"
        meta = {"sessionId": child.sid, "summary": child.summary_tools[-20:],
                "model": {"modelID": self.model, "providerID": self.provider}}
        return inp, out, desc, meta, None

    # ---- turns

    def compact(self, auto):
        self.tick(500, 60_000)
        uid = self.user("", compaction=auto)
        self.assistant(uid, True, T_TOOLS, summary=True)
        self.ctx = self.rng.randint(9000, 22000)
        if auto:
            self.tick(20, 200)
            self.user("Continue if you have next steps", synthetic=True)

    def turn(self, text=None):
        rng = self.rng
        if self.turns:
            self.tick(3000, 900_000)
            if self.parent is None and (self.ctx > 160_000 or (self.msgs > 20 and rng.random() < 0.015)):
                self.compact(self.ctx > 160_000)  # auto when the context is full, else /compact
                self.tick(1000, 30_000)
        text = text or self.prompt()
        if self.first_prompt is None:
            self.first_prompt = text
        uid = self.user(text)
        table = T_SUB_TOOLS if self.parent else T_TOOLS
        n_calls = 1 if self.small() else 1 + min(40, int(rng.expovariate(1 / 4)))
        for k in range(n_calls):
            final = k == n_calls - 1 or self.room() <= 0
            if not self.assistant(uid, final, table):
                break
        self.turns += 1

    def interrupted_end(self):
        """A crash mid-step: last assistant message without completed/finish, tool still running/pending."""
        rng = self.rng
        self.tick(3000, 600_000)
        uid = self.user(self.prompt())
        self.tick(300, 4000)
        t0 = self.t
        mid = self.mid()
        parts = [[self.pid(), {"type": "step-start", "snapshot": self.sha()}, t0, t0]]
        self.tick(300, 4000)
        p = self.pid()
        path = rng.choice(self.proj.files)
        if rng.random() < 0.7:
            state = {"status": "running", "input": {"command": "cargo test --workspace", "description": "Run the tests"},
                     "title": "cargo test --workspace", "metadata": {"output": self.logs(5), "description": "Run the tests"},
                     "time": {"start": self.t}}
            tool = "bash"
        else:
            state = {"status": "pending", "input": {}, "raw": J({"filePath": path})[:-3]}
            tool = "read"
        parts.append([p, {"type": "tool", "callID": self.call_id(), "tool": tool, "state": state}, self.t, self.t])
        msg = {"role": "assistant", "time": {"created": t0}, "parentID": uid, "modelID": self.model,
               "providerID": self.provider, "mode": self.agent, "agent": self.agent,
               "path": {"cwd": self.cwd, "root": self.proj.worktree}, "cost": 0,
               "tokens": {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}}
        self.emit(mid, msg, parts)

    def after_turn(self):
        """An overlap session goes over from T1 to T2 once it has two turns and most of its bytes
        (or its clock nears the import)."""
        if (self.hold is not None and self.turns >= 2
                and (self.bytes >= self.target * 0.55 or self.t > IMPORT_MS - 86_400_000)):
            self.release()

    def last_turns(self):
        if self.hold is not None:
            self.release()
        if self.release_turn == self.turns:  # at least one turn that exists only in T2
            self.turn()

    def t1_info(self, title, updated, version):
        info = {"id": self.sid, "slug": self.slug, "version": version, "projectID": self.proj.tid,
                "directory": self.cwd}
        if self.parent:
            info["parentID"] = self.parent.sid
        info["title"] = title
        info["time"] = {"created": self.created, "updated": updated}
        if self.edited:
            info["summary"] = {"additions": self.additions, "deletions": self.deletions, "files": len(self.edited)}
        return info

    def finish(self):
        rng = self.rng
        g = self.g
        if self.parent is None:
            self.title = self.title_text() if rng.random() < 0.95 else "New session - " + iso(self.created)
        g.sessions[self.layout] += 1
        if self.parent:
            g.children[self.layout] += 1
        todos = []
        if self.parent is None and rng.random() < 0.3:
            for i in range(rng.randint(2, 7)):
                todos.append({"content": f"{rng.choice(VERBS).capitalize()} the {rng.choice(NOUNS)}",
                              "status": rng.choice(["completed", "completed", "in_progress", "pending"]),
                              "priority": rng.choice(["high", "medium", "low"]), "id": str(i + 1)})
        share = None
        if self.parent is None and rng.random() < 0.03:
            share = f"https://opncd.ai/s/{self.rid(8)}"
        if self.layout == "t1":
            info = self.t1_info(self.title, self.t, self.version)
            if share:
                info["share"] = {"url": share}
            g.t1_sessions.append(info)
            g.t1_projects.add(self.proj)
            if todos:
                g.t1.write(f"todo/{self.sid}.json", todos)
            return
        g.t2_projects.add(self.proj)
        db = g.t2
        ed = bool(self.edited)
        archived = self.t + rng.randint(86_400_000, 20 * 86_400_000) if self.parent is None and rng.random() < 0.05 else None
        db.add("session", (self.sid, self.proj.tid, self.parent.sid if self.parent else None, self.slug, self.cwd,
                           self.title, self.version, share, self.additions if ed else None,
                           self.deletions if ed else None, len(self.edited) if ed else None, None, None, None,
                           self.created, self.t, None, archived))
        for i, td in enumerate(todos):
            db.add("todo", (self.sid, td["content"], td["status"], td["priority"], i, self.t, self.t))
        if share:
            db.add("session_share", (self.sid, share.rsplit("/", 1)[1], uuid4(rng), share, self.t, self.t))


# --------------------------------------------------------------------------------------------
# Go lineage (G1 opencode-ai/opencode, G2 charmbracelet/crush)


class GSess(Base):
    def __init__(self, g, rng, crush, proj, start, target, *, big=False, parent=None, sid=None, title=None):
        self.g, self.rng, self.crush, self.proj, self.t = g, rng, crush, proj, start
        self.target, self.big, self.parent = target, big, parent
        self.layout = "g2" if crush else "g1"
        self.db = g.g2 if crush else g.g1
        self.p = g.pools
        self.created = start
        self.sid = sid or uuid4(rng)
        self.title = title
        if parent:
            self.provider, self.model = parent.provider, parent.model
        elif crush:
            self.provider, self.model = rng.choice(G2_MODELS)
        else:
            self.provider, self.model = None, rng.choice(G1_MODELS)
        self.anthropic = "claude" in self.model
        self.bytes = self.child_bytes = 0
        self.turns = self.msgs = 0
        self.prompt_tokens = self.completion_tokens = 0
        self.cost = 0.0
        self.ctx = rng.randint(6000, 16000)
        self.summary_id = None
        self.file_versions = {}
        self.reads = {}
        self.last_text = ""
        self.first_prompt = None

    def s(self):
        return self.t // 1000

    def row(self, role, parts, *, mid=None, finished=None, summary=False):
        mid = mid or uuid4(self.rng)
        pj = J(parts)
        n = blen(pj)
        self.bytes += n
        self.msgs += 1
        g = self.g
        g.bytes[self.layout] += n
        g.rows[self.layout] += 1
        created = self.created_s
        updated = finished if finished else created
        model = self.model if role == "assistant" else ""
        if self.crush:
            r = (mid, self.sid, role, pj, model, created, updated, finished,
                 (self.provider if role == "assistant" else ""), 1 if summary else 0)
        else:
            r = (mid, self.sid, role, pj, model, created, updated, finished)
        self.db.add("messages", r, n)
        return mid

    def stop(self):
        return {"type": "finish", "data": {"reason": "stop", "time": 0}}

    def user(self, text):
        rng = self.rng
        self.created_s = self.s()
        parts = [{"type": "text", "data": {"text": text}}]
        if rng.random() < 0.006:
            size = self.big_size(100_000, 800_000)
            if size:
                parts.append({"type": "binary", "data": {"Path": f"/tmp/screenshot-{rng.randint(100, 999)}.png",
                                                         "MIMEType": "image/png", "Data": self.png_b64(size)[0]}})
        parts.append(self.stop())
        self.row("user", parts)
        self.ctx += len(text) // 4

    def usage(self, out_len):
        rng = self.rng
        out = out_len // 4 + rng.randint(8, 80)
        self.prompt_tokens += self.ctx + rng.randint(1, 3000)
        self.completion_tokens += out
        self.cost = round(self.cost + (self.ctx * 0.3 + out * 15) / 1e6, 8)
        self.ctx += out

    def assistant(self, final, table, *, summary=False):
        """An assistant row, then (for tool calls) the tool row. Returns False when the turn ended early."""
        rng = self.rng
        self.tick(300, 3000)
        self.created_s = self.s()
        mid = uuid4(rng)
        parts = []
        out_len = 0
        if not summary and rng.random() < (0.5 if self.anthropic else 0.2):
            think = self.para(1, 3 if self.small() else 10)
            d = {"thinking": think}
            if self.crush:
                t0 = self.s()
                self.tick(300, 6000)
                d.update({"signature": base64.b64encode(rng.randbytes(rng.randint(120, 500))).decode()
                          if self.anthropic else "", "thought_signature": "", "tool_id": "",
                          "responses_data": None, "started_at": t0, "finished_at": self.s()})
            parts.append({"type": "reasoning", "data": d})
            out_len += len(think)
        if summary:
            text = self.para(8, 30)
        elif final:
            text = self.final_text()
        else:
            text = self.para(1, 3) if rng.random() < 0.5 else None
        if text:
            parts.append({"type": "text", "data": {"text": text}})
            self.last_text = text
            out_len += len(text)
            self.tick(200, 200 + len(text) * 8)
        calls, results = [], []
        reason = "end_turn"
        ok = True
        self.tick(20, 400)
        fin_s = self.s()  # the step ends before its tools run (an agent call moves the clock)
        if not final and not summary:
            n = 1 if rng.random() < 0.75 else rng.randint(2, 4)
            for _ in range(n):
                name = self.pick(table)
                if name == "agent" and (self.parent or self.room() < 30_000):
                    name = "view"
                cid = self.call_id()
                inp, content, meta, is_err = getattr(self, "g_" + name)(mid, cid)
                call = {"id": cid, "name": name, "input": J(inp), "type": "", "finished": True}
                if self.crush:
                    call["provider_executed"] = False
                calls.append({"type": "tool_call", "data": call})
                results.append([cid, name, content, meta, is_err])
                out_len += 60
            reason = "tool_use"
            r = rng.random()
            if r < 0.01:  # cancelled by the user: every result is a synthetic error
                for res in results:
                    res[2:] = ["Tool execution canceled by user", "", True]
                reason, ok = "canceled", False
            elif r < 0.02:
                for res in results[rng.randrange(len(results)):]:
                    res[2:] = ["Permission denied", "", True]
                reason, ok = "permission_denied", False
            elif r < 0.025:
                res = results[-1]
                res[2:] = [f"Tool not found: {res[1]}_v2", "", True]
                calls[-1]["data"]["name"] = res[1] + "_v2"
        parts += calls
        self.usage(out_len)
        fin = {"reason": reason, "time": fin_s}
        if self.crush:
            fin.update({"message": "", "details": ""})
        parts.append({"type": "finish", "data": fin})
        self.row("assistant", parts, mid=mid, finished=fin_s, summary=summary)
        if summary:
            self.summary_id = mid
        if results:
            self.tick(15, 20_000)
            self.created_s = self.s()
            tr = []
            for cid, name, content, meta, is_err in results:
                d = {"tool_call_id": cid, "name": name, "content": content, "metadata": meta, "is_error": is_err}
                if self.crush:
                    d.update({"data": "", "mime_type": ""})
                tr.append({"type": "tool_result", "data": d})
                self.ctx += min(30_000, len(content) // 4)
            tr.append(self.stop())
            self.row("tool", tr)
        return ok

    # ---- tools: (input, content, metadata JSON string, is_error)

    def g_bash(self, mid, cid):
        rng = self.rng
        cmd = rng.choice(["go test ./...", "go build ./...", "cargo test", "git status", "git diff",
                          "ls -la", f"rg -n {rng.choice(IDENTS)} ."])
        inp = {"command": cmd}
        if rng.random() < 0.3:
            inp["timeout"] = 120000
        if rng.random() < 0.03:
            size = self.big_size(50_000, 500_000)
            out = self.big_logs(size) if size else self.logs(rng.randint(3, 60))
        else:
            n = rng.choice([1, 3, 8, 20, 40]) if rng.random() < 0.9 else rng.randint(80, 500)
            out = self.logs(min(n, self.fit(n, self.p.log_avg)))
        t0 = self.t
        meta = {"start_time": t0, "end_time": t0 + rng.randint(20, 60_000)}
        if self.crush:
            meta.update({"output": out[:2000], "working_directory": self.proj.cwd})
        if rng.random() < 0.08:
            return inp, f"{out}\nExit code {rng.choice([1, 2, 127])}", J(meta), True
        return inp, out, J(meta), False

    def g_view(self, mid, cid):
        rng = self.rng
        path = rng.choice(self.proj.files)
        if rng.random() < 0.04:
            return {"file_path": path + ".orig"}, f"File not found: {path}.orig", "", True
        if rng.random() < 0.03:
            size = self.big_size(50_000, 500_000, dup=2)
            lines = self.big_code(size) if size else self.code(rng.randint(20, 300))
        else:
            lines = self.code(self.fit(rng.randint(15, 300), self.p.code_avg[self.proj.lang] + 7, 2))
        if self.crush:
            self.reads[path] = self.s()
        body = "\n".join(map(operator.add, self.p.gnums(len(lines)), lines))
        raw = "\n".join(lines)
        return ({"file_path": path}, f"<file>\n{body}\n</file>\n",
                J({"file_path": path, "content": raw}), False)

    def g_edit(self, mid, cid):
        rng = self.rng
        path, before, after, i, old, new = self.edit_pair()
        inp = {"file_path": path, "old_string": "\n".join(old), "new_string": "\n".join(new)}
        if rng.random() < 0.05:
            return inp, "old_string not found in file. Make sure it matches exactly, including whitespace and line breaks", "", True
        diff = (f"--- a{path}\n+++ b{path}\n@@ -{i + 1},{len(old)} +{i + 1},{len(new)} @@\n"
                + "".join(f"-{ln}\n" for ln in old) + "".join(f"+{ln}\n" for ln in new))
        if rng.random() < 0.6:
            key = path
            v = self.file_versions.get(key, -1) + 1
            self.file_versions[key] = v
            ver = v if self.crush else ("initial" if v == 0 else f"v{v}")
            self.db.add("files", (uuid4(rng), self.sid, path, "\n".join(after), ver, self.s(), self.s()))
        return (inp, f"<result>\nContent replaced in file: {path}\n</result>\n",
                J({"diff": diff, "additions": len(new), "removals": len(old)}), False)

    def g_grep(self, mid, cid):
        rng = self.rng
        pat = rng.choice(IDENTS)
        inp = {"pattern": pat, "path": self.proj.cwd}
        if rng.random() < 0.3:
            inp["include"] = "*." + EXT[self.proj.lang]
        lines, n = [], 0
        for f in rng.sample(self.proj.files, rng.randint(1, 6)):
            lines.append(f"{f}:")
            for ln in self.code(rng.randint(1, 6)):
                lines.append(f"  Line {rng.randint(1, 900)}, Char {rng.randint(1, 40)}: {ln.strip()}")
                n += 1
            lines.append("")
        return inp, f"Found {n} matches\n" + "\n".join(lines), J({"number_of_matches": n, "truncated": False}), False

    def g_ls(self, mid, cid):
        rels = self.proj.rels
        out = [f"- {self.proj.cwd}/"]
        last = None
        for r in rels:
            d, f = r.rsplit("/", 1)
            if d != last:
                out.append(f"  - {d}/")
                last = d
            out.append(f"    - {f}")
        return {"path": self.proj.cwd}, "\n".join(out) + "\n", J({"number_of_files": len(rels), "truncated": False}), False

    def g_agent(self, mid, cid):
        rng = self.rng
        prompt = self.para(2, 8)
        hi = max(5000, min(400_000, int(self.room() * 0.1)))
        target = int(5000 * (hi / 5000) ** rng.random())
        csid = f"{mid}$${cid}" if self.crush else cid
        child = GSess(self.g, corpus.child_rng(rng), self.crush, self.proj, self.t + 50, target,
                      parent=self, sid=csid, title=f"{rng.choice(VERBS).capitalize()} {rng.choice(NOUNS)}")
        child.run(first_prompt=prompt)
        self.child_bytes += child.used()
        self.t = child.t + rng.randint(20, 400)
        return {"prompt": prompt}, child.last_text, "", False

    # ---- turns

    def turn(self, text=None):
        rng = self.rng
        if self.turns:
            self.tick(3000, 900_000)
            if self.parent is None and (self.ctx > 160_000 or (self.msgs > 20 and rng.random() < 0.015)):
                self.tick(500, 60_000)
                self.assistant(True, G_TOOLS, summary=True)
                self.ctx = rng.randint(6000, 16000)
                self.tick(1000, 30_000)
        text = text or self.prompt()
        if self.first_prompt is None:
            self.first_prompt = text
        self.user(text)
        table = G_SUB_TOOLS if self.parent else G_TOOLS
        n_calls = 1 if self.small() else 1 + min(40, int(rng.expovariate(1 / 4)))
        for k in range(n_calls):
            final = k == n_calls - 1 or self.room() <= 0
            if not self.assistant(final, table):
                break
        self.turns += 1

    def interrupted_end(self):
        """Mid-turn snapshot: tool_call not finished, no finish part, no tool row."""
        self.tick(3000, 600_000)
        self.user(self.prompt())
        self.tick(300, 3000)
        self.created_s = self.s()
        call = {"id": self.call_id(), "name": "bash", "input": J({"command": "go test ./..."}),
                "type": "", "finished": False}
        self.row("assistant", [{"type": "text", "data": {"text": self.para(1, 2)}},
                               {"type": "tool_call", "data": call}])

    def finish(self):
        rng = self.rng
        g = self.g
        title = self.title or self.title_text()
        g.sessions[self.layout] += 1
        if self.parent:
            g.children[self.layout] += 1
        row = [self.sid, self.parent.sid if self.parent else None, title, self.msgs, self.prompt_tokens,
               self.completion_tokens, self.cost, self.s(), self.created // 1000, self.summary_id]
        if self.crush:
            todos = None
            if self.parent is None and rng.random() < 0.3:
                todos = J([{"content": f"{rng.choice(VERBS).capitalize()} the {rng.choice(NOUNS)}",
                            "status": rng.choice(["completed", "in_progress", "pending"]),
                            "active_form": f"{rng.choice(GERUNDS)} the {rng.choice(NOUNS)}"}
                           for _ in range(rng.randint(1, 6))])
            row.append(todos)
            for path, at in sorted(self.reads.items()):
                self.db.add("read_files", (self.sid, path, at))
        self.db.add("sessions", tuple(row))
        if self.crush and self.parent is None and rng.random() < 0.2:
            self.title_session()

    def title_session(self):
        """G2 title-generation session `title-<parentID>`: a reader should skip it."""
        rng = self.rng
        t = GSess(self.g, corpus.child_rng(rng), self.crush, self.proj, self.created + 200, 0,
                  parent=self, sid=f"title-{self.sid}", title="Generate a title")
        t.created_s = t.s()
        t.row("user", [{"type": "text", "data": {"text": "Generate a concise title for the following content:\n\n"
                                                          + (self.first_prompt or "")}}, t.stop()])
        t.tick(400, 3000)
        t.created_s = t.s()
        t.row("assistant", [{"type": "text", "data": {"text": self.title or t.title_text()}},
                            {"type": "finish", "data": {"reason": "end_turn", "time": t.s(), "message": "",
                                                        "details": ""}}], finished=t.s())
        self.g.sessions[self.layout] += 1
        self.g.children[self.layout] += 1
        self.db.add("sessions", (t.sid, self.sid, t.title, t.msgs, 0, 0, 0.0, t.s(), t.created // 1000, None, None))


# --------------------------------------------------------------------------------------------


class Gen(corpus.Run):
    def __init__(self, out, seed):
        super().__init__(seed, Pools, TIds)
        self.out = out
        self.projects = [Project(self.rng, *p) for p in PROJECTS]
        self.t2 = Db(os.path.join(out, "opencode", "opencode.db"), T2_SCHEMA, T2_INSERTS)
        self.t1 = T1Store(os.path.join(out, "opencode", "storage"))
        self.g1 = Db(os.path.join(out, "go", ".opencode", "opencode.db"), g_schema(False), g_inserts(False))
        self.g2 = Db(os.path.join(out, "crush", ".crush", "crush.db"), g_schema(True), g_inserts(True))
        L = ("t2", "t1", "g1", "g2")
        self.bytes = dict.fromkeys(L, 0)
        self.rows = dict.fromkeys(L, 0)
        self.sessions = dict.fromkeys(L, 0)
        self.children = dict.fromkeys(L, 0)
        self.t1_sessions = []
        self.t1_projects = set()
        self.t2_projects = set()
        self.need_interrupt = set(L)  # every layout gets at least one interrupted ending

    def tsess(self, layout, target, *, big=False, hold=False):
        rng = corpus.child_rng(self.rng)
        proj = self.projects[0] if big else rng.choices(self.projects, weights=[p.weight for p in self.projects])[0]
        lo, hi = {"t1": (T1_FROM, T1_TO), "t2": (T2_FROM, T2_TO)}[layout]
        if hold:
            lo, hi = OVL_FROM, OVL_TO
        s = TSess(self, rng, layout, proj, lo + rng.randrange(hi - lo), target, big=big, hold=hold)
        s.run()
        return s

    def gsess(self, crush, target, big=False):
        rng = corpus.child_rng(self.rng)
        lo, hi = (G2_FROM, G2_TO) if crush else (G1_FROM, G1_TO)
        s = GSess(self, rng, crush, self.projects[0 if crush else 1], lo + rng.randrange(hi - lo), target, big=big)
        s.run()

    def tail(self, layout, budget, n, make):
        """n sessions with log-normal sizes, each target re-aimed at what is left of the budget."""
        if n <= 0:
            return
        mean = max(1, budget - self.bytes[layout]) / n
        weights = corpus.lognormal_weights(self.rng, n, mean, 8000)
        for i, target in enumerate(corpus.targets(weights, lambda: budget - self.bytes[layout], 3000)):
            make(target, i, i == n - 1)

    def finish(self):
        rng = self.rng
        t2 = self.t2
        for p in sorted(self.t2_projects, key=lambda p: p.cwd):
            t2.add("project", (p.tid, p.worktree, "git" if p.git else None, None, None, None,
                               p.created, T2_TO, p.created + 1000 if p.git else None, "[]", None))
        for p in sorted(self.t2_projects, key=lambda p: p.cwd)[:2]:
            t2.add("permission", (p.tid, IMPORT_MS, IMPORT_MS,
                                  J([{"permission": "bash", "pattern": "git status", "action": "allow"}])))
        for name in ["20260127222353_familiar_lady_ursula", "20260211171708_add_project_commands"]:
            ts = ms_at(int(name[:4]), int(name[4:6]), int(name[6:8]), int(name[8:10]), int(name[10:12]), int(name[12:14]))
            t2.add("mig", (f"{rng.getrandbits(256):064x}", ts, name, "2026-02-16T09:12:07.102Z"))
        t2.close()
        for i, v in enumerate(G1_MIGRATIONS):
            self.g1.add("goose", (v, 1, f"2025-04-2{5 + min(i, 4)} 10:00:0{i}"))
        self.g1.close(G_TRIGGERS)
        for i, v in enumerate(G2_MIGRATIONS):
            self.g2.add("goose", (v, 1, f"2025-07-0{1 + min(i, 8)} 10:00:0{i}"))
        self.g2.close(G_TRIGGERS)
        for p in sorted(self.t1_projects, key=lambda p: p.cwd):
            self.t1.write(f"project/{p.tid}.json", {
                "id": p.tid, "worktree": p.worktree, "vcs": "git" if p.git else None,
                "time": {"created": p.created, "updated": T1_TO, "initialized": p.created + 1000}, "sandboxes": []})
        for info in self.t1_sessions:
            self.t1.write(f"session/{info['projectID']}/{info['id']}.json", info)
        # Leftovers a reader must skip: a non-atomic write's temp file, the migration counter.
        if self.t1_sessions:
            info = self.t1_sessions[0]
            self.t1.write(f"session/{info['projectID']}/{info['id']}.json.tmp", {"id": info["id"]})
        os.makedirs(self.t1.root, exist_ok=True)
        with open(os.path.join(self.t1.root, "migration"), "w") as f:
            f.write("2")
        self.t1.close()


def main():
    _, a = corpus.parse_args(__doc__)
    t0 = time.perf_counter()
    total = int(a.size_mb * MB)
    g = Gen(a.out_dir, a.seed)

    n = a.sessions
    n_small = max(1, round(0.05 * n)) if n >= 4 else 0
    n_t2 = n - 3 * n_small
    b_small = int(0.05 * total) if n_small else 0
    b_t2 = total - 3 * b_small
    big = corpus.big_target(a, b_t2, n_t2 == 1)
    n_tail = n_t2 - (1 if big else 0)
    n_ovl = min(3, n_tail) if n_small else 0
    corpus.warn_short("gen-opencode-corpus", total - big, n - 1, 5000)

    ovl_cap = max(30_000, int(0.15 * b_small))  # their T1 part must fit T1's share

    def t2_tail(target, i, last):
        if i < n_ovl:  # T1 JSON first, imported into T2 (one turn lost), continued in T2 only
            g.tsess("t2", target if last else min(target, ovl_cap), hold=True)
        else:
            g.tsess("t2", target)

    if big:
        g.tsess("t2", big, big=n_tail > 0)
    g.tail("t2", b_t2, n_tail, t2_tail)
    g.tail("t1", b_small, n_small, lambda tg, i, last: g.tsess("t1", tg))
    g.tail("g1", b_small, n_small, lambda tg, i, last: g.gsess(False, tg))
    g.tail("g2", b_small, n_small, lambda tg, i, last: g.gsess(True, tg))
    g.finish()

    dt = time.perf_counter() - t0
    tot = sum(g.bytes.values())
    lay = ", ".join(f"{k.upper()} {g.sessions[k] - g.children[k]}+{g.children[k]}sub {g.bytes[k] / MB:.1f} MB"
                    for k in ("t2", "t1", "g1", "g2"))
    print(f"gen-opencode-corpus: sessions {lay} ({n_ovl} shared T1/T2); {sum(g.rows.values())} rows/files, "
          f"{tot / MB:.1f} MB in {dt:.1f}s ({tot / MB / dt:.1f} MB/s) -> {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
