#!/usr/bin/env python3
"""gen-claude-corpus.py: deterministic synthetic Claude Code transcript corpus, for benchmarks.

Usage:
    scripts/gen-claude-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                         [--big-session-mb 300] [--typical] [--line-mb 0]
                                         [--seed 1]

Writes OUT_DIR/projects/<encoded-cwd>/<session-uuid>.jsonl for about --sessions sessions spread
over several project folders, totalling about --size-mb MB (1 MB = 10^6 bytes, within ~5%).
Some sessions also get OUT_DIR/projects/<encoded-cwd>/<session-uuid>/subagents/agent-<id>.jsonl
plus agent-<id>.meta.json. One session's main file is at least --big-session-mb MB; that size is
capped at 30% of --size-mb, so small corpora (e.g. --size-mb 20) scale it down proportionally
(--big-session-mb 0 turns it off). The other sessions get log-normal sizes (a long tail of small
ones). Same arguments give byte-identical output: everything comes from random.Random(seed),
including UUIDs and timestamps (which advance from 2026-01-05T08:00:00Z); UUIDs are unique
across the corpus by construction.

The lines follow the shapes in crates/source-claude/FORMAT.md: camelCase
envelope, snake_case `message`; one content block per assistant line, lines of one response
sharing message.id/requestId with provisional usage until the last; tool_result user lines with
toolUseResult and sourceToolAssistantUUID (errors, arrays of text blocks, big outputs of
50-500 KB, base64 images of 100-800 KB); turn_duration, api_error, compact_boundary +
isCompactSummary, isMeta reminders, slash commands, local-command-stdout, interrupts,
file-history-snapshot, queue-operation, ai-title, last-prompt; MCP calls
(mcp__github__search_issues); Task calls whose subagent lives in subagents/.

--typical gives the shape of a typical ~/.claude/projects (with many small sessions, e.g.
--sessions 35 per MB and --big-session-mb 0) rather than of a heavy user's: tool output is cut
where Claude Code cuts it, and the progress lines Claude Code 2.1 writes are there. Bash output
over 30,000 characters (Claude Code's default BASH_MAX_OUTPUT_LENGTH) loses its middle to a
"... [N lines truncated] ..." note; Read returns at most 2,000 lines, and a text over 25,000 tokens
(Claude Code's Read limit; 4 bytes a token here) comes back as Claude Code's error instead. While
a Bash command runs, one `progress` line of type bash_progress a second from the third second on
(Claude Code writes them every second; `fullOutput` is the whole output so far, `output` its last
lines); half the sessions run hooks, a hook_progress line per hook run (PreToolUse, PostToolUse,
Stop). Such a corpus has a median line of about 0.7 KB and a mean of about 1.3 KB (a third of the
lines are progress lines); without --typical, at the same sizes, 0.9 and 1.6 KB. Only
--typical makes the draws it needs, so the corpus without it is unchanged.

--line-mb N adds one more session (not counted in --sessions or --size-mb) whose Bash result is
one line of about N MB (the output in the tool_result and again in toolUseResult.stdout): a memory
stress case, beyond what Claude Code's own caps let a tool write.

Prints one summary line to stderr. Python 3.11 standard library only.
"""

import base64
import calendar
import json
import math
import operator
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the three generators share)
from corpus import ADJS, ALNUM, EXT, HEX, J, MB, MODS, VERBS, iso  # noqa: E402

BASE_MS = calendar.timegm((2026, 1, 5, 8, 0, 0)) * 1000
ASCII_ALNUM = frozenset(ALNUM)

# --------------------------------------------------------------------------------------------
# Vocabulary and pools (built once from the seeded RNG)

NOUNS = corpus.NOUNS + [
    "sidechain", "timestamp", "payload", "dedupe step", "rate limiter", "snapshot", "serializer",
    "HTTP client", "connection pool", "benchmark", "CI job", "chart component", "date picker",
    "form validation", "query builder", "dataloader", "eval harness", "tokenizer",
]
CLAUSES = corpus.CLAUSES + ["the CLI flag is parsed but never used", "the batch exceeds the 1 MB body limit"]
IDENTS = corpus.IDENTS + ["uuid", "ts"]
METHODS = [
    "parse", "flush", "push", "extend", "insert", "get", "len", "is_empty", "to_string", "clone",
    "unwrap_or_default", "context", "map_err", "as_str", "send", "await", "collect", "iter",
    "next", "take", "split_off", "read_line", "write_all", "retain", "sort_by_key", "finish",
]
CRATES = ["tonbo-core", "tonbo-map", "tonbo-batch", "tonbo-post", "claude-read", "codex-read"]
WORDS = corpus.Vocab(nouns=NOUNS, clauses=CLAUSES, idents=IDENTS, methods=METHODS, crates=CRATES)
SENTENCES = ["plan", "because", "check", "understand", "looks", "next", "passed", "tests", "keeps",
             "wait", "wants", "hmm"]
CODE = {
    "rust": ["let", "fn", "end_block", "end_item", "blank", "use", "comment", "derive", "struct", "field",
             "early_return", "map", "error", "assert", "test", "test_fn"],
    "ts": ["const", "function", "end_item", "end_block", "blank", "import", "comment", "guard", "jsx",
           "field", "expect", "it"],
    "py": ["assign", "def", "return", "blank", "import", "comment", "class", "guard", "raise", "assert"],
}
LOG = ["compiling", "ok", "ok", "failed", "warning", "at", "info_jan", "retry", "modified", "commit",
       "finished", "npm", "check", "pytest"]
TOOL_WEIGHTS = [("Read", 26), ("Bash", 22), ("Edit", 15), ("Grep", 10), ("Glob", 5),
                ("Write", 4), ("TodoWrite", 4), ("Task", 3), ("mcp__github__search_issues", 2)]
SUB_TOOLS = [("Read", 40), ("Grep", 25), ("Glob", 15), ("Bash", 20)]
MODELS = ["claude-opus-4-6", "claude-opus-4-6", "claude-sonnet-4-5-20250929",
          "claude-opus-4-5-20251101"]
SUB_MODEL = "claude-haiku-4-5-20251001"
VERSIONS = ["2.1.27", "2.1.29", "2.1.30", "2.1.30", "2.1.31"]

# (cwd, branches, language, weight); non-git folder has gitBranch "".
PROJECTS = [
    ("/home/dev/src/tonbo-ingest", ["main", "feat/claude-read", "fix/post-retry"], "rust", 6),
    ("/home/dev/src/tonbo", ["main", "wal-compaction"], "rust", 3),
    ("/Users/ana/work/web_dashboard.v2", ["main", "ana/charts"], "ts", 3),
    ("/home/dev/src/ml-eval/tools", ["main", "exp/long-context"], "py", 2),
    ("/Users/ana/Documents/Projets Été/notes", [""], "py", 1),
    ("C:\\Users\\sam\\code\\infra-cli", ["master"], "ts", 1),
]

READ_REMINDER = (
    "\n\n<system-reminder>\nWhenever you read a file, you should consider whether it would be "
    "considered malware. You CAN and SHOULD provide analysis of malware, what it is doing. But you "
    "MUST refuse to improve or augment the code. You can still analyze existing code, write "
    "reports, or answer questions about the code behavior.\n</system-reminder>\n"
)
REJECT = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it "
    "was a file edit, the new_string was NOT written to the file). STOP what you are doing and "
    "wait for the user to tell you how to proceed."
)
CAVEAT = (
    "<local-command-caveat>Caveat: The messages below were generated by the user while running "
    "local commands. DO NOT respond to these messages or otherwise consider them in your response "
    "unless the user explicitly asks you to.</local-command-caveat>"
)
# --typical: the caps Claude Code puts on what a tool returns (see the module doc), and the hooks
# some sessions run (a hook_progress line per hook run).
BASH_MAX_CHARS = 30_000
READ_MAX_LINES = 2_000
READ_MAX_TOKENS = 25_000
HOOK_SHARE = 0.5
HOOK_SETS = [
    [("PreToolUse", "${CLAUDE_PLUGIN_ROOT}/hooks/guard.sh"), ("PostToolUse", "${CLAUDE_PLUGIN_ROOT}/hooks/format.sh")],
    [("PostToolUse", "cargo fmt --all"), ("Stop", "node \"${CLAUDE_PLUGIN_ROOT}/scripts/notify.js\"")],
    [("PreToolUse", "python3 ~/.claude/hooks/audit.py")],
    [("Stop", "~/.claude/hooks/stop-check.sh")],
]

TODO_OK = (
    "Todos have been modified successfully. Ensure that you continue to use the todo list to "
    "track your progress. Please proceed with the current tasks if applicable"
)


def bash_cap(out):
    """Bash output as Claude Code keeps it: over BASH_MAX_CHARS characters, the middle is cut out
    and replaced by a note of how many lines went."""
    if len(out) <= BASH_MAX_CHARS:
        return out
    half = BASH_MAX_CHARS // 2
    cut = out[half:len(out) - half].count("\n") + 1
    return f"{out[:half]}\n\n... [{cut} lines truncated] ...\n\n{out[len(out) - half:]}"


def encode_project(path):
    """Claude Code project folder names: every char outside [a-zA-Z0-9] becomes '-' (one per UTF-16 unit)."""
    return "".join(c if c in ASCII_ALNUM else ("--" if ord(c) > 0xFFFF else "-") for c in path)


class Pools(corpus.Pools):
    """Prebuilt text: sentences, code lines per language, log lines, Read's line-number prefixes."""

    def __init__(self, rng):
        super().__init__(rng, WORDS, sentences=SENTENCES, code=CODE, log=LOG)
        self.nums = [f"{i:>6}→" for i in range(1, 20001)]


class Ids(corpus.Ids):
    def uuid(self):
        """UUIDv4 with corpus.Ids' unique low bits."""
        lo = self.low62()
        hi = self.rng.getrandbits(60)
        return corpus.uuid_text(((hi >> 12) << 80) | (4 << 76) | ((hi & 0xFFF) << 64) | (2 << 62) | lo)


class Project:
    def __init__(self, rng, cwd, branches, lang, weight):
        self.cwd, self.branches, self.lang, self.weight = cwd, branches, lang, weight
        self.folder = encode_project(cwd)
        self.sep, self.rels, self.files = corpus.project_files(rng, cwd, lang, WORDS)


# --------------------------------------------------------------------------------------------
# One transcript file (a main session or a subagent)


class Sess(corpus.Budget):
    def __init__(self, gen, rng, proj, sid, start_ms, target, out, *, agent=None, big=False,
                 model=None, version=None, branch=None):
        self.g, self.rng, self.proj, self.sid, self.t = gen, rng, proj, sid, start_ms
        self.target, self.out, self.agent, self.big = target, out, agent, big
        self.p = gen.pools
        self.model = model or rng.choice(MODELS)
        self.version = version or rng.choice(VERSIONS)
        self.branch = rng.choice(proj.branches) if branch is None else branch
        env = {"isSidechain": agent is not None, "userType": "external", "cwd": proj.cwd,
               "sessionId": sid, "version": self.version, "gitBranch": self.branch}
        if agent is None and rng.random() < 0.7:
            env["slug"] = corpus.slug(rng)
        if agent is not None:
            env["agentId"] = agent
        self.env = J(env)[1:-1]
        self.last = None
        self.ctx = rng.randint(11000, 24000)  # tokens in context (system prompt, tools, CLAUDE.md)
        self.sub_bytes = 0
        self.edited = {}
        self.todos = []
        self.queued = None
        self.turns = 0
        self.last_prompt = None
        self.prompt_uuid = None
        # Drawn last, and only for --typical, so that the default corpus does not change.
        self.typical = gen.typical
        self.hooks = rng.choice(HOOK_SETS) if self.typical and rng.random() < HOOK_SHARE else None

    # ---- budget (corpus.Budget has the clock and the text helpers)

    def used(self):
        return self.out.size if self.big else self.out.size + self.sub_bytes

    def numbered(self, lines, start=1):
        return "\n".join(map(operator.add, self.p.nums[start - 1:start - 1 + len(lines)], lines))

    # ---- line writers

    def _par(self, parent):
        return "null" if parent is None else f'"{parent}"'

    def user(self, content, mid="", post="", parent=..., uid=None):
        u = uid or self.g.ids.uuid()
        par = self._par(self.last if parent is ... else parent)
        self.out.write(
            f'{{"parentUuid":{par},{self.env},"type":"user","message":{{"role":"user",'
            f'"content":{J(content)}}}{mid},"uuid":"{u}","timestamp":"{iso(self.t)}"{post}}}\n')
        self.last = u
        return u

    def system(self, body, parent=..., pre=""):
        u = self.g.ids.uuid()
        par = self._par(self.last if parent is ... else parent)
        self.out.write(f'{{"parentUuid":{par}{pre},{self.env},"type":"system",{body},'
                       f'"timestamp":"{iso(self.t)}","uuid":"{u}"}}\n')
        self.last = u
        return u

    def progress(self, data, tool_use_id, parent_tool_use_id):
        """A `progress` line: chained to the last line but not a link of the chain itself (the
        next line's parent stays the last conversation line)."""
        self.out.write(
            f'{{"parentUuid":{self._par(self.last)},{self.env},"type":"progress","data":{J(data)},'
            f'"toolUseID":"{tool_use_id}","parentToolUseID":"{parent_tool_use_id}",'
            f'"uuid":"{self.g.ids.uuid()}","timestamp":"{iso(self.t)}"}}\n')

    def hook_progress(self, event, tool, tool_use_id):
        """One hook_progress line per hook of the session's set that runs on `event`."""
        for ev, command in self.hooks:
            if ev == event:
                self.t += self.rng.randint(20, 400)
                name = f"{event}:{tool}" if tool else event
                self.progress({"type": "hook_progress", "hookEvent": event, "hookName": name, "command": command},
                              tool_use_id, tool_use_id)

    def tool_progress(self, toolu, name, stdout, ms):
        """The clock through a tool call of `ms`, with what Claude Code writes while it runs: the
        PreToolUse hooks, and for Bash one bash_progress line a second from the third second on,
        each with the last lines of the output so far (`output`) and all of it (`fullOutput`)."""
        start = self.t
        if self.hooks:
            self.hook_progress("PreToolUse", name, toolu)
        if name == "Bash" and ms >= 3000:
            lines = stdout.split("\n") if stdout else []
            ticks = ms // 1000 - 2
            for i in range(ticks):
                shown = lines[:len(lines) * (i + 1) // (ticks + 1)]
                tail = "\n".join(shown[-5:])
                self.t = max(self.t, start + (3 + i) * 1000)
                self.progress({"type": "bash_progress", "output": tail, "fullOutput": "\n".join(shown),
                               "elapsedTimeSeconds": 3 + i, "totalLines": len(shown),
                               "totalBytes": sum(map(len, shown)) + len(shown)},
                              f"bash-progress-{i}", toolu)
        self.t = max(self.t, start + ms)

    def huge_line(self, size):
        """A short turn whose Bash result is one line of about `size` bytes: the log in the
        tool_result and again in toolUseResult.stdout, as Claude Code writes both."""
        self.user("Run the whole test suite and show me the full log, nothing cut.")
        toolu = "toolu_01" + self.rid(22)
        inp = {"command": "cargo test --workspace -- --nocapture 2>&1", "description": "Run the tests"}
        au = self.response([J({"type": "tool_use", "id": toolu, "name": "Bash", "input": inp})], False)[-1]
        log = self.p.log
        per = max(1, size // 2)
        reps = per // (len("\n".join(log)) + 1) + 1
        text = "\n".join(log * reps)[:per]
        self.t += 600_000
        self.tool_result(toolu, text, False, {"stdout": text, "stderr": "", "interrupted": False,
                                              "isImage": False}, au)
        self.response([self.text_block(self.final_text())], True)

    def bookkeeping(self, obj):
        self.out.write(J(obj) + "\n")

    def response(self, blocks, final):
        """One API response: one line per block, usage provisional until the last line."""
        rng = self.rng
        model = self.model
        mid = "msg_01" + self.rid(22)
        req = "req_011C" + self.rid(20)
        out_tok = sum(len(b) for b in blocks) // 4 + rng.randint(8, 60)
        created = rng.randint(200, 4000)
        base = {"input_tokens": rng.randint(1, 12), "cache_creation_input_tokens": created,
                "cache_read_input_tokens": self.ctx,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": created},
                "output_tokens": 1, "service_tier": "standard"}
        prov = J(base)
        base["output_tokens"] = out_tok
        fin = J(base)
        self.ctx += created + out_tok
        stop = '"end_turn"' if final else '"tool_use"'
        uuids = []
        n = len(blocks)
        self.tick(1200, 18000)
        for i, b in enumerate(blocks):
            last = i == n - 1
            u = self.g.ids.uuid()
            self.out.write(
                f'{{"parentUuid":{self._par(self.last)},{self.env},"message":{{"model":"{model}",'
                f'"id":"{mid}","type":"message","role":"assistant","content":[{b}],'
                f'"stop_reason":{stop if last else "null"},"stop_sequence":null,'
                f'"usage":{fin if last else prov}}},"requestId":"{req}","type":"assistant",'
                f'"uuid":"{u}","timestamp":"{iso(self.t)}"}}\n')
            self.last = u
            uuids.append(u)
            if not last:
                self.tick(150, 2500 + len(b) // 2)
        return uuids

    # ---- blocks

    def thinking_block(self):
        rng = self.rng
        text = "" if rng.random() < 0.05 else self.para(1, 3 if self.small() else 12)
        sig = base64.b64encode(rng.randbytes(rng.randint(180, 400 if self.small() else 1400))).decode()
        return '{"type":"thinking","thinking":' + J(text) + ',"signature":"' + sig + '"}'

    def text_block(self, text):
        return '{"type":"text","text":' + J(text) + "}"

    def summary_tail(self):
        if self.rng.random() >= 0.3:
            return ""
        return "\n\n```" + {"rust": "rust", "ts": "ts", "py": "python"}[self.proj.lang] + "\n" \
            + "\n".join(self.code(self.fit(self.rng.randint(4, 30), 40, 2))) + "\n```"

    # ---- tools: each returns (name, input, content, is_error, toolUseResult, exec_ms)

    def tool(self, name):
        """Task is not here: agent_step runs it via run_task (the subagent needs the clock)."""
        return getattr(self, "t_" + name.replace("mcp__github__", "mcp_"))()

    def t_Read(self):
        rng = self.rng
        path = rng.choice(self.proj.files)
        r = rng.random()
        if r < 0.04:
            return ("Read", {"file_path": path + ".bak"}, "<tool_use_error>File does not exist.</tool_use_error>",
                    True, "Error: File does not exist.", rng.randint(2, 30))
        if r < 0.04 + 0.012:
            size = self.big_size(100_000, 800_000, dup=2)
            if size:
                b64, raw = self.png_b64(size)
                ip = self.proj.cwd + self.proj.sep + rng.choice(["screenshot.png", "docs/arch.png", "out/plot.png"])
                src = {"type": "base64", "data": b64, "media_type": "image/png"}
                tur = {"type": "image", "file": {"base64": b64, "type": "image/png", "originalSize": raw,
                                                 "dimensions": {"originalWidth": 2560, "originalHeight": 1440,
                                                                "displayWidth": 1568, "displayHeight": 882}}}
                return ("Read", {"file_path": ip}, [{"type": "image", "source": src}], False, tur, rng.randint(5, 60))
        if r < 0.04 + 0.03:
            size = self.big_size(50_000, 500_000, dup=2)
            n = int(size / (self.p.code_avg[self.proj.lang] + 7)) if size else rng.randint(20, 400)
        else:
            n = self.fit(rng.randint(15, 420), self.p.code_avg[self.proj.lang] + 7, 2)
        if self.typical:
            n = min(n, READ_MAX_LINES)
        lines = self.code(n)
        raw = "\n".join(lines)
        text = self.numbered(lines) + READ_REMINDER
        if self.typical and len(text) > READ_MAX_TOKENS * 4:
            msg = (f"File content ({len(text) // 4} tokens) exceeds maximum allowed tokens ({READ_MAX_TOKENS}). "
                   "Please use offset and limit parameters to read specific portions of the file, or use the "
                   "GrepTool to search for specific content.")
            return ("Read", {"file_path": path}, f"<tool_use_error>{msg}</tool_use_error>", True, "Error: " + msg,
                    rng.randint(3, 80))
        tur = {"type": "text", "file": {"filePath": path, "content": raw, "numLines": len(lines),
                                        "startLine": 1, "totalLines": len(lines)}}
        return ("Read", {"file_path": path}, text, False, tur, rng.randint(3, 80))

    def t_Bash(self):
        rng = self.rng
        lang = self.proj.lang
        cmds = {
            "rust": ["cargo test -p {c}", "cargo build --workspace", "cargo clippy --workspace --all-targets -- -D warnings",
                     "cargo test --workspace 2>&1 | tail -50", "make test"],
            "ts": ["npm test", "npx tsc --noEmit", "npm run build", "npx vitest run src/{m}"],
            "py": ["pytest -x -q", "python -m evalkit.run --limit 50", "ruff check ."],
        }[lang] + ["git status", "git diff --stat", "git log --oneline -20", "ls -la", "rg -n '{i}' ."]
        cmd = rng.choice(cmds).format(c=rng.choice(CRATES), m=rng.choice(MODS), i=rng.choice(IDENTS))
        desc = rng.choice(["Run the tests", "Build the workspace", "Show changed files",
                           "Show recent commits", "Search for usages", "List files", "Run the linter"])
        inp = {"command": cmd, "description": desc}
        if rng.random() < 0.3:
            inp["timeout"] = 600000
        r = rng.random()
        if r < 0.025:
            size = self.big_size(50_000, 500_000, dup=2)
            n = int(size / self.p.log_avg) if size else rng.randint(3, 80)
        else:
            n = rng.choice([0, 1, 3, 8, 20, 40, 80]) if rng.random() < 0.9 else rng.randint(80, 600)
            n = min(n, self.fit(n, self.p.log_avg, 2))
        out = self.logs(n) if n else ""
        if self.typical:
            out = bash_cap(out)
        ms = int(200 * (180_000 / 200) ** (rng.random() ** 2))
        if rng.random() < 0.08:
            code = rng.choice([1, 2, 101, 127])
            text = f"Exit code {code}\n{out}" if out else f"Exit code {code}"
            return ("Bash", inp, text, True, "Error: " + text, ms)
        tur = {"stdout": out, "stderr": "", "interrupted": False, "isImage": False, "noOutputExpected": n == 0}
        if rng.random() < 0.02:
            tur["backgroundTaskId"] = "bash_" + self.rid(8)
        content = out if out else "(Bash completed with no output)"
        if rng.random() < 0.02:  # some results come back as an array of text blocks
            content = [{"type": "text", "text": content}]
        return ("Bash", inp, content, False, tur, ms)

    def t_Edit(self):
        rng = self.rng
        path = rng.choice(self.proj.files)
        avg = self.p.code_avg[self.proj.lang]
        old = "\n".join(self.code(self.fit(rng.randint(1, 12), avg, 4)))
        new = "\n".join(self.code(self.fit(rng.randint(1, 16), avg, 4)))
        inp = {"file_path": path, "old_string": old, "new_string": new, "replace_all": False}
        if rng.random() < 0.06:
            msg = f"String to replace not found in file.\nString: {old}"
            return ("Edit", inp, f"<tool_use_error>{msg}</tool_use_error>", True, "Error: " + msg, rng.randint(2, 20))
        if rng.random() < 0.02 and self.agent is None:
            return ("Edit", inp, REJECT, True, "User rejected tool use", rng.randint(3000, 60000))
        self.edit(path)
        start = rng.randint(1, 300)
        snippet = self.numbered(self.code(self.fit(rng.randint(6, 14), avg + 7, 3)), start)
        orig = "\n".join(self.code(self.fit(rng.randint(30, 500), avg, 3)))
        patch = [{"oldStart": start, "oldLines": old.count("\n") + 1, "newStart": start,
                  "newLines": new.count("\n") + 1,
                  "lines": ["-" + x for x in old.split("\n")] + ["+" + x for x in new.split("\n")]}]
        tur = {"filePath": path, "oldString": old, "newString": new, "originalFile": orig,
               "structuredPatch": patch, "userModified": False, "replaceAll": False}
        text = (f"The file {path} has been updated. Here's the result of running `cat -n` on a "
                f"snippet of the edited file:\n{snippet}")
        return ("Edit", inp, text, False, tur, rng.randint(5, 120))

    def t_Write(self):
        rng = self.rng
        sep = self.proj.sep
        path = (f"{self.proj.cwd}{sep}{rng.choice(['tests', 'src', 'docs'])}{sep}"
                f"{rng.choice(IDENTS)}_{rng.choice(MODS)}.{EXT[self.proj.lang]}")
        body = "\n".join(self.code(self.fit(rng.randint(10, 220), self.p.code_avg[self.proj.lang], 2))) + "\n"
        self.edit(path)
        tur = {"type": "create", "filePath": path, "content": body, "structuredPatch": [], "originalFile": None}
        return ("Write", {"file_path": path, "content": body}, f"File created successfully at: {path}",
                False, tur, rng.randint(5, 60))

    def t_Grep(self):
        rng = self.rng
        pat = rng.choice(IDENTS) + rng.choice(["", "\\(", "\\s*=", "_.*"])
        files = rng.sample(self.proj.rels, rng.randint(0, 12))
        if rng.random() < 0.6:
            inp = {"pattern": pat, "output_mode": "files_with_matches"}
            text = f"Found {len(files)} file{'s' if len(files) != 1 else ''}\n" + "\n".join(files) if files else "No files found"
            tur = {"mode": "files_with_matches", "filenames": files, "numFiles": len(files)}
        else:
            inp = {"pattern": pat, "path": self.proj.cwd, "output_mode": "content", "-n": True}
            lines = [f"{rng.choice(self.proj.rels)}:{rng.randint(1, 900)}:{x}"
                     for x in self.code(self.fit(rng.randint(1, 60), 60, 2))]
            text = "\n".join(lines)
            tur = {"mode": "content", "numFiles": 0, "filenames": [], "content": text, "numLines": len(lines)}
        return ("Grep", inp, text, False, tur, rng.randint(10, 400))

    def t_Glob(self):
        rng = self.rng
        ext = EXT[self.proj.lang]
        files = rng.sample(self.proj.files, rng.randint(1, 30))
        tur = {"filenames": files, "durationMs": rng.randint(3, 200), "numFiles": len(files), "truncated": False}
        return ("Glob", {"pattern": f"**/*.{ext}"}, "\n".join(files), False, tur, rng.randint(3, 200))

    def t_TodoWrite(self):
        rng = self.rng
        old = self.todos
        new = [{"content": f"{v.capitalize()} the {n}", "status": s, "activeForm": f"{v.capitalize()}ing the {n}"}
               for v, n, s in ((rng.choice(VERBS), rng.choice(NOUNS), rng.choice(["pending", "in_progress", "completed"]))
                               for _ in range(rng.randint(2, 7)))]
        self.todos = new
        return ("TodoWrite", {"todos": new}, TODO_OK, False, {"oldTodos": old, "newTodos": new}, rng.randint(1, 10))

    def t_mcp_search_issues(self):
        rng = self.rng
        q = f"repo:tonbo-io/tonbo is:issue {rng.choice(NOUNS)} {rng.choice(ADJS)}"
        items = [{"number": rng.randint(10, 2400), "title": f"{rng.choice(NOUNS).capitalize()} is {rng.choice(ADJS)}",
                  "state": rng.choice(["open", "closed"]),
                  "html_url": f"https://github.com/tonbo-io/tonbo/issues/{rng.randint(10, 2400)}",
                  "user": {"login": rng.choice(["ethe", "kkould", "ana-dev", "sam-ops"])},
                  "labels": [{"name": rng.choice(["bug", "perf", "good first issue"])}],
                  "body": self.para(1, 5)} for _ in range(rng.randint(0, 10))]
        text = J({"total_count": len(items) + rng.randint(0, 40), "incomplete_results": False, "items": items})
        blocks = [{"type": "text", "text": text}]
        if rng.random() < 0.04:
            err = "MCP error -32603: GitHub API rate limit exceeded"
            return ("mcp__github__search_issues", {"query": q, "perPage": 10}, err, True, "Error: " + err, rng.randint(100, 900))
        return ("mcp__github__search_issues", {"query": q, "perPage": 10}, blocks, False, blocks, rng.randint(200, 2500))

    # ---- subagents

    def run_task(self, toolu, inp, assistant_uuid):
        rng = self.rng
        g = self.g
        agent = "a" + "".join(rng.choices(HEX, k=16))
        folder = os.path.join(g.root, self.proj.folder, self.sid, "subagents")
        out = g.transcript(os.path.join(folder, f"agent-{agent}.jsonl"))
        room = self.room()
        budget = min(int(math.exp(rng.gauss(math.log(60_000), 1.0))), max(8000, room // 3), 3 * MB)
        sub = Sess(g, corpus.child_rng(rng), self.proj, self.sid, self.t, budget, out,
                   agent=agent, model=SUB_MODEL, version=self.version, branch=self.branch)
        sub.user(inp["prompt"], parent=None)
        calls = tools = 0
        while True:
            final = sub.room() <= 0 or calls >= 60
            blocks = []
            if rng.random() < 0.3:
                blocks.append(sub.thinking_block())
            if final:
                result_text = sub.final_text()
                blocks.append(sub.text_block(result_text))
                sub.response(blocks, True)
                break
            if rng.random() < 0.4:
                blocks.append(sub.text_block(sub.para(1, 2)))
            tools += sub.agent_step(blocks, SUB_TOOLS)
            calls += 1
        out.close()
        with open(os.path.join(folder, f"agent-{agent}.meta.json"), "w") as f:
            f.write(json.dumps({"agentType": inp["subagent_type"], "toolUseId": toolu}))
        g.files += 1
        g.subagents += 1
        self.sub_bytes += out.size
        dur = sub.t - self.t
        self.t = sub.t + rng.randint(50, 800)
        usage = {"input_tokens": rng.randint(1, 9), "cache_creation_input_tokens": rng.randint(200, 4000),
                 "cache_read_input_tokens": sub.ctx, "output_tokens": rng.randint(200, 3000),
                 "service_tier": "standard"}
        total = sum(v for v in usage.values() if isinstance(v, int))
        content = [{"type": "text", "text": result_text},
                   {"type": "text", "text": f"agentId: {agent} (for resuming to continue this agent's work if needed)\n"
                                            f"<usage>total_tokens: {total}\ntool_uses: {tools}\nduration_ms: {dur}</usage>"}]
        tur = {"status": "completed", "prompt": inp["prompt"], "agentId": agent,
               "content": [{"type": "text", "text": result_text}], "totalDurationMs": dur,
               "totalTokens": total, "totalToolUseCount": tools, "usage": usage}
        self.tool_result(toolu, content, False, tur, assistant_uuid)

    # ---- turn pieces

    def tool_result(self, toolu, content, is_error, tur, assistant_uuid):
        block = {"tool_use_id": toolu, "type": "tool_result", "content": content}
        if is_error:
            block["is_error"] = True
        self.user([block], post=f',"toolUseResult":{J(tur)},"sourceToolAssistantUUID":"{assistant_uuid}"')
        self.ctx += min(30_000, len(content if isinstance(content, str) else J(content)) // 4)

    def agent_step(self, blocks, table):
        """A response that calls tools, then their results. Returns the number of tool calls
        made, or -1 if the user rejected one (the turn then stops)."""
        rng = self.rng
        k = 1 if rng.random() < 0.75 else rng.randint(2, 4)
        calls = []
        for _ in range(k):
            name = self.pick(table)
            if name == "Task" and (self.room() < 60_000 or k > 1):
                name = "Read"
            toolu = "toolu_01" + self.rid(22)
            if name == "Task":
                st = rng.choice(["Explore", "Explore", "general-purpose", "Plan"])
                inp = {"description": f"{rng.choice(VERBS).capitalize()} {rng.choice(NOUNS)}",
                       "prompt": self.para(2, 8), "subagent_type": st}
                calls.append((toolu, name, inp, None))
            else:
                name, inp, content, err, tur, ms = self.tool(name)
                calls.append((toolu, name, inp, (content, err, tur, ms)))
            blocks.append(J({"type": "tool_use", "id": toolu, "name": name, "input": inp}))
        uuids = self.response(blocks, False)
        tool_uuids = uuids[len(uuids) - k:]
        rejected = False
        for (toolu, name, inp, res), au in zip(calls, tool_uuids):
            if res is None:
                self.run_task(toolu, inp, au)
                continue
            content, err, tur, ms = res
            if self.typical:
                self.tool_progress(toolu, name, tur.get("stdout", "") if isinstance(tur, dict) else "", ms)
            else:
                self.t += ms
            self.tool_result(toolu, content, err, tur, au)
            if self.hooks:
                self.hook_progress("PostToolUse", name, toolu)
            if err and content is REJECT:
                rejected = True
            if name in ("Edit", "Write") and not err and self.agent is None and rng.random() < 0.5:
                self.snapshot(self.prompt_uuid, update=True)
        if rejected:
            self.tick(300, 3000)
            self.user([{"type": "text", "text": "[Request interrupted by user for tool use]"}])
            return -1
        return k

    def edit(self, path):
        bid, v = self.edited.get(path) or ("".join(self.rng.choices(HEX, k=16)), 0)
        self.edited[path] = (bid, v + 1)

    def snapshot(self, mid, update=False):
        ts = iso(self.t)
        backups = {}
        for path, (bid, v) in list(self.edited.items())[-20:]:
            rel = path[len(self.proj.cwd) + 1:] if path.startswith(self.proj.cwd) else path
            backups[rel] = {"backupFileName": f"{bid}@v{v}", "version": v, "backupTime": ts}
        self.bookkeeping({"type": "file-history-snapshot", "messageId": mid,
                          "snapshot": {"messageId": mid, "trackedFileBackups": backups, "timestamp": ts},
                          "isSnapshotUpdate": update})

    def slash(self, name, args, stdout):
        self.user(CAVEAT, mid=',"isMeta":true')
        self.tick(10, 200)
        self.user(f"<command-name>/{name}</command-name>\n            <command-message>{name}</command-message>\n"
                  f"            <command-args>{args}</command-args>")
        self.tick(50, 3000)
        if stdout is not None:
            self.user(f"<local-command-stdout>{stdout}</local-command-stdout>")

    def compact(self, trigger):
        rng = self.rng
        pre = self.ctx
        self.tick(20_000, 90_000)
        logical = self.last
        self.system(f'"subtype":"compact_boundary","content":"Conversation compacted","isMeta":false,'
                    f'"level":"info","compactMetadata":{{"trigger":"{trigger}","preTokens":{pre}}}',
                    parent=None, pre=f',"logicalParentUuid":"{logical}"')
        sections = "\n\n".join(f"{i}. {h}:\n   {self.para(2, 8)}" for i, h in enumerate(
            ["Primary Request and Intent", "Key Technical Concepts", "Files and Code Sections",
             "Errors and fixes", "Problem Solving", "All user messages", "Pending Tasks",
             "Current Work", "Optional Next Step"], 1))
        summary = ("This session is being continued from a previous conversation that ran out of context. "
                   "The summary below covers the earlier portion of the conversation.\n\nAnalysis:\n"
                   f"{self.para(3, 10)}\n\nSummary:\n{sections}\n\nPlease continue the conversation from where "
                   "we left it off without asking the user any further questions.")
        self.user(summary, mid=',"isVisibleInTranscriptOnly":true,"isCompactSummary":true')
        self.ctx = rng.randint(14000, 26000) + len(summary) // 4
        if trigger == "manual":
            self.user(f"<command-name>/compact</command-name>\n            <command-message>compact</command-message>\n"
                      f"            <command-args></command-args>")
            self.user("<local-command-stdout>\x1b[2mCompacted (ctrl+o to see full summary)\x1b[22m</local-command-stdout>")

    def prompt_text(self):
        rng = self.rng
        r = rng.random()
        if self.queued is not None:
            t, self.queued = self.queued, None
            return t

        def request():
            f = rng.choice(self.proj.rels)
            return f"Can you {rng.choice(VERBS)} the {rng.choice(NOUNS)} in {f}? {self.para(0, 4)}".rstrip()

        return self.prompt_for(r, request)

    def turn(self):
        rng = self.rng
        self.tick(4000, 600_000 if self.turns else 5000)
        if self.ctx > 150_000:
            self.compact("auto")
        elif self.ctx > 70_000 and rng.random() < 0.08:
            self.compact("manual")
        if self.turns and rng.random() < 0.05:
            name, args, out = rng.choice([
                ("model", "", "Set model to \x1b[1mopus (claude-opus-4-6)\x1b[22m"),
                ("cost", "", f"Total cost: ${rng.randint(1, 60)}.{rng.randint(0, 99):02d}\nTotal duration (API): {rng.randint(2, 90)}m"),
                ("context", "", f"Context usage: {self.ctx // 1000}k/200k tokens"),
                ("mcp", "", "MCP servers: github \u2714 connected"),
                ("review", "", None)])
            self.slash(name, args, out)
            return
        t0 = self.t
        if rng.random() < 0.05:
            self.user(f"<system-reminder>\nThe user opened the file {rng.choice(self.proj.files)} in the IDE. "
                      "This may or may not be related to the current task.\n</system-reminder>",
                      mid=',"isMeta":true')
        text = self.prompt_text()
        self.last_prompt = text
        uid = self.prompt_uuid = self.g.ids.uuid()
        self.snapshot(uid)
        content = text
        if rng.random() < 0.006:
            size = self.big_size(100_000, 800_000, dup=1)
            if size:
                b64, _ = self.png_b64(size)
                content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}},
                           {"type": "text", "text": text}]
        self.user(content, mid=',"permissionMode":"default"' if rng.random() < 0.5 else "", uid=uid)
        self.ctx += len(text) // 4
        n_calls = 1 if self.small() else 1 + min(40, int(rng.expovariate(1 / 4)))
        for k in range(n_calls):
            final = k == n_calls - 1 or self.room() <= 0
            if rng.random() < 0.01:
                for attempt in range(1, rng.randint(2, 4)):
                    status, etype, msg = rng.choice([(529, "overloaded_error", "Overloaded"),
                                                     (500, "api_error", "Internal server error"),
                                                     (429, "rate_limit_error", "Rate limited")])
                    req = "req_011C" + self.rid(20)
                    wait = round(500 * 2 ** (attempt - 1) * (1 + rng.random() / 4), 3)
                    err = {"status": status, "headers": {}, "requestID": req,
                           "error": {"type": "error", "error": {"type": etype, "message": msg}, "request_id": req}}
                    self.system(f'"subtype":"api_error","level":"error","error":{J(err)},"retryInMs":{wait},'
                                f'"retryAttempt":{attempt},"maxRetries":10')
                    self.t += int(wait)
            blocks = []
            if rng.random() < 0.6:
                blocks.append(self.thinking_block())
            if final:
                blocks.append(self.text_block(self.final_text()))
                self.response(blocks, True)
                break
            if rng.random() < 0.6:
                blocks.append(self.text_block(self.para(1, 3)))
            if rng.random() < 0.01:  # Esc while the model was talking
                self.response(blocks or [self.text_block(self.para(1, 2))], False)
                self.tick(300, 5000)
                self.user([{"type": "text", "text": "[Request interrupted by user]"}])
                self.turns += 1
                return
            if self.agent_step(blocks, TOOL_WEIGHTS) < 0:
                self.turns += 1
                return
            if self.queued is None and rng.random() < 0.02:
                self.queued = rng.choice(["also run clippy", "and update the README", "use the existing helper",
                                          "don't touch the tests"])
                self.bookkeeping({"type": "queue-operation", "operation": "enqueue", "timestamp": iso(self.t),
                                  "sessionId": self.sid, "content": self.queued})
        self.tick(20, 400)
        if self.hooks:
            self.hook_progress("Stop", None, self.g.ids.uuid())
        self.system(f'"subtype":"turn_duration","durationMs":{self.t - t0},"isMeta":false')
        if self.queued is not None:
            self.bookkeeping({"type": "queue-operation", "operation": "dequeue", "timestamp": iso(self.t),
                              "sessionId": self.sid})
        if self.turns == 0:
            self.bookkeeping({"type": "ai-title", "sessionId": self.sid,
                              "aiTitle": f"{rng.choice(VERBS).capitalize()} {rng.choice(ADJS)} {rng.choice(NOUNS)}"})
        self.turns += 1

    def run(self):
        while self.room() > 0 or self.turns == 0:
            self.turn()
        if self.last_prompt and self.rng.random() < 0.5:
            self.bookkeeping({"type": "last-prompt", "lastPrompt": self.last_prompt[:200], "sessionId": self.sid})


# --------------------------------------------------------------------------------------------


class Gen(corpus.Run):
    def __init__(self, root, seed, typical=False):
        super().__init__(seed, Pools, Ids)
        self.root = root
        self.typical = typical
        self.projects = [Project(self.rng, *p) for p in PROJECTS]
        self.files = self.lines = self.bytes = self.subagents = 0

    def transcript(self, path):
        """A new .jsonl file, counted in files."""
        self.files += 1
        return corpus.Out(path, self)

    def session(self, proj, target, big=False):
        rng = corpus.child_rng(self.rng)
        sid = self.ids.uuid()
        start = BASE_MS + rng.randrange(75 * 86_400_000)
        out = self.transcript(os.path.join(self.root, proj.folder, sid + ".jsonl"))
        s = Sess(self, rng, proj, sid, start, target, out, big=big)
        s.run()
        out.close()

    def line_session(self, proj, size):
        """One more session, holding one line of about `size` bytes."""
        rng = corpus.child_rng(self.rng)
        sid = self.ids.uuid()
        out = self.transcript(os.path.join(self.root, proj.folder, sid + ".jsonl"))
        Sess(self, rng, proj, sid, BASE_MS + rng.randrange(75 * 86_400_000), size, out, big=True).huge_line(size)
        out.close()


def main():
    _, a = corpus.parse_args(__doc__, ("--typical", bool, False), ("--line-mb", float, 0))
    t0 = time.perf_counter()
    total = int(a.size_mb * MB)
    root = os.path.join(a.out_dir, "projects")
    g = Gen(root, a.seed, a.typical)
    rng = g.rng

    big = corpus.big_target(a, total, a.sessions == 1)
    n_tail = a.sessions - (1 if big else 0)
    corpus.warn_short("gen-claude-corpus", total - big, n_tail, 4000)
    # The median session fits one short tool-using turn (~8 KB).
    weights = corpus.lognormal_weights(rng, n_tail, (total - big) / max(1, n_tail), 8000)
    projs = rng.choices(g.projects, weights=[p.weight for p in g.projects], k=n_tail)
    if big:
        g.session(g.projects[0], big, big=n_tail > 0)  # big: its main file alone reaches the size
    for target, proj in zip(corpus.targets(weights, lambda: total - g.bytes, 3000), projs):
        g.session(proj, target)
    if a.line_mb > 0:
        g.line_session(g.projects[0], int(a.line_mb * MB))

    dt = time.perf_counter() - t0
    extra = f" + 1 with a line of {a.line_mb:g} MB" if a.line_mb > 0 else ""
    print(f"gen-claude-corpus: {g.files} files ({a.sessions} sessions{extra}, {g.subagents} subagents), "
          f"{g.bytes / MB:.1f} MB, {g.lines} lines in {dt:.1f}s ({g.bytes / MB / dt:.1f} MB/s) -> {root}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
