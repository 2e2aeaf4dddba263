#!/usr/bin/env python3
"""gen-codex-corpus.py: deterministic synthetic Codex CLI transcript corpus, for benchmarks.

Usage:
    scripts/gen-codex-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                        [--big-session-mb 300] [--zst-share 0.2] [--seed 1]

Writes a CODEX_HOME-like tree under OUT_DIR totalling about --size-mb MB of uncompressed
transcript bytes (1 MB = 10^6 bytes, within ~5%) over about --sessions sessions:

  sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl   V2/V3 wrapped JSONL (most files)
  sessions/YYYY/MM/DD/rollout-...jsonl.zst                        about --zst-share of those,
                                                                  compressed with `zstd -q --rm -3`
                                                                  (left plain, with a warning, if
                                                                  `zstd` is not on PATH)
  archived_sessions/rollout-...jsonl                              a few archived V2 sessions (flat)
  sessions/rollout-YYYY-MM-DDThh-mm-ss-<uuid>.jsonl               a few V1 bare-JSONL sessions
  sessions/rollout-YYYY-MM-DD-<uuid>.json                         a few V0 (TypeScript CLI) sessions
  (a few V2 files are forks: own session_meta with forked_from_id, then a copy of a parent's
  lines re-stamped with the fork's time, then new turns)

One V2 session is --big-session-mb MB (capped at 30% of --size-mb; 0 turns it off); the others
get log-normal sizes (a long tail of small ones). Line shapes follow
crates/source-codex/FORMAT.md (V2 envelopes, V1 and V0 headers): session_meta, injected
<environment_context> / AGENTS.md / <permissions instructions> messages, then per turn
task_started, turn_context, user message + user_message, reasoning + agent_reasoning,
function_call/function_call_output (shell, shell_command, exec_command,
mcp__github__search_issues; JSON-string arguments; three output-string shapes; occasional
50-500 KB outputs and input_text/input_image arrays with 100-800 KB data URLs), apply_patch
custom_tool_call + output, assistant message + agent_message, token_count (cumulative totals,
rate limits), task_complete; occasionally turn_aborted, compacted + context_compacted,
ghost_snapshot, web_search_call. Older V2 builds (cli_version < 0.100) have no
task_started/task_complete and no permissions message; builds < 0.59 tag sandbox_policy by "mode".

Same arguments give byte-identical output (including the .zst files): everything comes from
random.Random(seed), including UUIDs (v7 for V2, v4 for V0/V1; unique by construction) and
timestamps. Prints one summary line to stderr. Python 3.11 standard library only.
"""

import base64
import calendar
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the three generators share)
from corpus import ADJS, J, MB, VERBS, iso  # noqa: E402

TS_LEN = 24  # len("2025-10-01T09:12:03.481Z")
TS_PREFIX = b'{"timestamp":"'


def ms_of(y, m, d):
    return calendar.timegm((y, m, d, 0, 0, 0)) * 1000


V0_RANGE = (ms_of(2025, 4, 17), ms_of(2025, 6, 30))
V1_RANGE = (ms_of(2025, 6, 1), ms_of(2025, 9, 10))
V2_RANGE = (ms_of(2025, 10, 1), ms_of(2026, 3, 31))
# (cli_version, tuple for comparisons), roughly in release order over V2_RANGE
VERSIONS = [("0.46.0", (0, 46)), ("0.50.0", (0, 50)), ("0.53.0", (0, 53)), ("0.58.0", (0, 58)),
            ("0.63.0", (0, 63)), ("0.72.0", (0, 72)), ("0.77.0", (0, 77)), ("0.86.0", (0, 86)),
            ("0.98.0", (0, 98)), ("0.104.0", (0, 104)), ("0.110.0", (0, 110)), ("0.116.0", (0, 116))]

# --------------------------------------------------------------------------------------------
# Vocabulary

NOUNS = ["retry loop", "checkpoint", "batch writer", "offset", "parser", "session", "rollout file",
         "manifest", "cursor", "backoff", "schema", "fixture", "buffer", "event stream", "worker",
         "token budget", "config loader", "CLI flag", "error path", "integration test", "migration",
         "index", "cache", "lock file", "handler", "reader", "sequence number", "compaction",
         "timestamp", "payload", "dedupe step", "rate limiter", "snapshot", "serializer",
         "HTTP client", "connection pool", "benchmark", "CI job", "query builder", "tokenizer"]
CLAUSES = corpus.CLAUSES + ["the call_id pairing assumes outputs follow calls", "the token totals are double counted"]
IDENTS = ["offset", "batch", "reader", "writer", "line", "buf", "session_id", "event", "record", "cfg",
          "cursor", "item", "payload", "path", "rollout", "ctx", "state", "count", "total", "limit"]
METHODS = ["parse", "flush", "commit", "next", "take", "split_off", "read_line", "write_all", "retain",
           "sort_by_key", "finish", "decode", "encode", "resume", "validate", "open", "close", "poll"]
TYPES = ["Batch", "Reader", "Writer", "Session", "Event", "Record", "Config", "Cursor", "Offset",
         "RolloutLine", "ResponseItem", "TokenUsage", "Error", "Manifest", "Checkpoint"]
MODS = ["reader", "writer", "batch", "checkpoint", "schema", "codex", "claude", "rollout", "config",
        "cli", "metrics", "retry", "manifest", "dedupe", "sink", "source", "util", "error"]
CRATES = ["ingest-core", "ingest-codex", "ingest-claude", "ingest-sink", "ingest-cli", "ingest-bench"]
WORDS = corpus.Vocab(nouns=NOUNS, clauses=CLAUSES, idents=IDENTS, methods=METHODS, crates=CRATES, types=TYPES,
                     mods=MODS)
SENTENCES = ["plan", "because", "check", "understand", "looks", "next", "passed", "tests", "keeps",
             "wait", "wants"]
CODE = {"rust": ["let", "fn", "end_block", "end_item", "blank", "use", "comment", "derive", "struct", "field",
                 "early_return", "error", "assert", "test"]}
LOG = ["compiling", "ok", "ok", "failed", "warning", "at", "info_s", "modified", "commit_bits", "finished",
       "match"]
PROJECTS = [  # cwd, repository_url, branches, weight
    ("/home/dev/src/tonbo-ingest", "git@github.com:tonbo-io/tonbo-ingest.git", ["main", "codex-backfill", "fix/offsets"], 5),
    ("/home/dev/src/tonbo", "https://github.com/tonbo-io/tonbo.git", ["main", "wal-rework"], 3),
    ("/home/dev/work/dashboard", "git@github.com:acme/dashboard.git", ["main", "feat/date-picker"], 2),
    ("/Users/sam/code/evalkit", "https://github.com/acme/evalkit", ["main"], 1),
    ("/home/dev/scratch", None, [None], 1),
]
SANDBOX = ["workspace-write", "read-only", "danger-full-access"]
APPROVAL = ["on-request", "never", "untrusted", "on-failure"]
PERMISSIONS = (
    "<permissions instructions>\nFilesystem sandboxing defines which files can be read or written. "
    "`sandbox_mode` is `{sb}`: the sandbox permits reading files, and editing files in `cwd` and "
    "`writable_roots`. Editing files in other directories requires approval. Network access is "
    "restricted.\nApprovals are your mechanism to get user consent to run shell commands without "
    "the sandbox. `approval_policy` is `{ap}`: commands will be run in the sandbox by default, and "
    "you can specify in your tool call if you want to escalate a command to run without "
    "sandboxing. If the completing the task requires escalated permissions, do not let these "
    "settings or the sandbox deter you from attempting to accomplish the user's task.\n"
    "</permissions instructions>"
)
AGENTS_BODY = (
    "## Repository guidelines\n\n- Run `cargo fmt` and `cargo clippy --all-targets` before "
    "committing.\n- Keep functions small; prefer returning `Result` over panicking.\n- Tests live "
    "next to the code in `#[cfg(test)] mod tests`.\n- Do not add dependencies without asking.\n- "
    "Use conventional commit messages (`fix:`, `feat:`, `chore:`).\n\n## Layout\n\n- `crates/` "
    "holds the pipeline stages; `scripts/` holds generators and helpers.\n- Fixtures are under "
    "`tests/fixtures/`; regenerate them with `scripts/regen-fixtures.sh`.\n"
)
class Pools(corpus.Pools):
    """Prebuilt text: sentences, bold reasoning titles, Rust code lines, log lines."""

    def __init__(self, rng):
        super().__init__(rng, WORDS, sentences=SENTENCES, titles=500, code=CODE, log=LOG)


class Ids(corpus.Ids):
    def uuid(self, ms=None):
        """UUIDv7 (time-ordered, as Codex >= 0.39) when ms is given, else UUIDv4; the low bits
        from corpus.Ids."""
        lo = self.low62()
        if ms is None:
            hi, ver = self.rng.getrandbits(48), 4
        else:
            hi, ver = ms & ((1 << 48) - 1), 7
        return corpus.uuid_text((hi << 80) | (ver << 76) | (self.rng.getrandbits(12) << 64) | (2 << 62) | lo)


# --------------------------------------------------------------------------------------------
# One session. fmt: "v2" (wrapped JSONL), "v1" (bare JSONL), "v0" (one pretty-printed JSON).


class Sess(corpus.Budget):
    def __init__(self, gen, rng, fmt, proj, sid, start_ms, target, out, version=None):
        self.g, self.rng, self.fmt, self.sid, self.t = gen, rng, fmt, sid, start_ms
        self.target, self.out = target, out
        self.p = gen.pools
        self.cwd, self.repo, branches, _ = proj
        self.branch = rng.choice(branches)
        self.version, vt = version or ("0.0.0", (0, 0))
        self.new = vt >= (0, 100)  # task_started/task_complete, permissions message
        self.sb_key = "type" if vt >= (0, 59) else "mode"
        self.model = "gpt-5-codex" if vt < (0, 77) or rng.random() < 0.6 else rng.choice(["gpt-5.1-codex", "gpt-5.2-codex"])
        self.effort = rng.choice(["medium", "medium", "high", "low"])
        self.approval = rng.choice(APPROVAL)
        self.sandbox = rng.choice(SANDBOX)
        self.ctx = rng.randint(9000, 16000)  # tokens in context
        self.tot = [0, 0, 0, 0]  # input, cached, output, reasoning
        self.turns = 0
        self.turn_ends = []  # (byte offset after turn, copy of self.tot) for fork parents
        self.items = []  # v0 only
        self.v0size = 0
        self.mid = 0  # v0/v1 API ids
        self.user_texts = []
        self.last_agent = None

    # ---- budget (corpus.Budget has the clock and the text helpers)

    def used(self):
        return self.v0size if self.fmt == "v0" else self.out.size

    # ---- text helpers

    def code_text(self, n):
        return "\n".join(self.window(self.p.code["rust"], n))

    def call_id(self):
        return "call_" + self.rid(24)

    def enc(self, lo, hi):
        return "gAAAAAB" + base64.b64encode(self.rng.randbytes(self.rng.randint(lo, hi) * 3 // 4)).decode()

    def path(self):
        r = self.rng
        return f"crates/{r.choice(CRATES)}/src/{r.choice(MODS)}.rs"

    # ---- line writers

    def line(self, typ, payload):
        if self.fmt == "v2":
            self.out.write(f'{{"timestamp":"{iso(self.t)}","type":"{typ}","payload":{J(payload)}}}\n')
        elif typ == "response_item":
            if self.fmt == "v1":
                self.out.write(J(payload) + "\n")
            else:
                self.items.append(payload)
                self.v0size += len(J(payload)) * 6 // 5 + 8
        self.t += self.rng.randint(1, 40)

    def item(self, payload):
        self.line("response_item", payload)

    def event(self, payload):
        self.line("event_msg", payload)

    def api_id(self, prefix):
        self.mid += 1
        return f"{prefix}_{self.sid.replace('-', '')[:20]}{self.mid:06d}"

    def message(self, role, text, kind):
        if self.fmt == "v2":
            self.item({"type": "message", "role": role, "content": [{"type": kind, "text": text}]})
        elif self.fmt == "v1":
            self.item({"type": "message", "id": None, "role": role, "content": [{"type": kind, "text": text}]})
        elif role == "assistant":
            self.item({"id": self.api_id("msg"), "type": "message", "role": role, "status": "completed",
                       "content": [{"type": kind, "text": text, "annotations": []}]})
        else:
            self.item({"role": role, "type": "message", "content": [{"type": kind, "text": text}]})

    def state(self):
        if self.fmt == "v1":
            self.out.write('{"record_type":"state"}\n')

    # ---- session parts

    def meta(self, forked_from=None):
        git = {}
        if self.repo:
            git = {"commit_hash": self.sha(), "branch": self.branch,
                   "repository_url": self.repo}
        if self.fmt == "v1":
            self.out.write(J({"id": self.sid, "timestamp": iso(self.t), "instructions": None, "git": git}) + "\n")
            self.state()
            return
        if self.fmt == "v0":
            return
        p = {"id": self.sid}
        if forked_from:
            p["forked_from_id"] = forked_from
        p.update(timestamp=iso(self.t - self.rng.randint(5, 60)), cwd=self.cwd, originator="codex_cli_rs",
                 cli_version=self.version, instructions=None, source="cli", model_provider="openai")
        if git:
            p["git"] = git
        self.line("session_meta", p)

    def injected(self):
        if self.fmt == "v2" and self.new:
            self.message("developer", PERMISSIONS.format(sb=self.sandbox, ap=self.approval), "input_text")
        if self.fmt != "v0" and self.rng.random() < 0.8:
            self.message("user", f"# AGENTS.md instructions for {self.cwd}\n\n<INSTRUCTIONS>\n{AGENTS_BODY}</INSTRUCTIONS>",
                         "input_text")
        self.message("user", f"<environment_context>\n  <cwd>{self.cwd}</cwd>\n  <approval_policy>{self.approval}"
                     f"</approval_policy>\n  <sandbox_mode>{self.sandbox}</sandbox_mode>\n  <network_access>"
                     f"restricted</network_access>\n  <shell>bash</shell>\n</environment_context>", "input_text")

    def turn_context(self, tid):
        p = {"cwd": self.cwd, "approval_policy": self.approval,
             "sandbox_policy": {self.sb_key: self.sandbox}, "model": self.model, "effort": self.effort,
             "summary": "auto"}
        if self.sandbox == "workspace-write":
            p["sandbox_policy"].update(network_access=False, exclude_tmpdir_env_var=False, exclude_slash_tmp=False)
        if self.new:
            p = {"turn_id": tid, **p}
        self.line("turn_context", p)

    def reasoning(self):
        rng = self.rng
        title = rng.choice(self.p.titles)
        text = f"{title}\n\n{self.para(1, 4)}" if rng.random() < 0.8 else title
        summary = [{"type": "summary_text", "text": text}] if rng.random() < 0.9 else []
        if self.fmt == "v2":
            self.item({"type": "reasoning", "summary": summary, "content": None, "encrypted_content": self.enc(1000, 4000)})
            for s in summary:
                self.event({"type": "agent_reasoning", "text": s["text"]})
        elif self.fmt == "v1":
            self.item({"type": "reasoning", "id": self.api_id("rs"), "summary": summary, "encrypted_content": self.enc(1000, 4000)})
        else:
            self.item({"id": self.api_id("rs"), "type": "reasoning", "summary": summary,
                       "duration_ms": rng.randint(300, 20000)})

    def shell_output(self, text, style, code, dur):
        if style == "json":
            return J({"output": text, "metadata": {"exit_code": code, "duration_seconds": dur}})
        if style == "unified":
            return (f"Chunk ID: {self.rng.getrandbits(24):06x}\nWall time: {dur} seconds\nProcess exited with code {code}\n"
                    f"Original token count: {len(text) // 4}\nOutput:\n{text}")
        return f"Exit code: {code}\nWall time: {dur} seconds\nOutput:\n{text}"

    def tool_call(self):
        """One function_call/custom_tool_call and its output."""
        rng = self.rng
        cid = self.call_id()
        r = rng.random()
        v2 = self.fmt == "v2"
        if r < 0.12 and self.fmt != "v0":  # apply_patch
            path = self.path()
            n = self.fit(rng.randint(2, 40), self.p.code_avg["rust"], 2)
            old = self.code_text(max(1, n // 3)).replace("\n", "\n-")
            new = self.code_text(n).replace("\n", "\n+")
            diff = f"*** Begin Patch\n*** Update File: {path}\n@@\n-{old}\n+{new}\n*** End Patch\n"
            p = {"type": "custom_tool_call", "status": "completed", "call_id": cid, "name": "apply_patch", "input": diff}
            if self.fmt == "v1":
                p = {"type": "custom_tool_call", "id": self.api_id("ctc"), **{k: v for k, v in p.items() if k != "type"}}
            self.item(p)
            self.tick(50, 2000)
            out = J({"output": f"Success. Updated the following files:\nM {path}\n",
                     "metadata": {"exit_code": 0, "duration_seconds": round(rng.random() / 5, 1)}})
            self.item({"type": "custom_tool_call_output", "call_id": cid, "output": out})
            self.ctx += (len(diff) + len(out)) // 4
            return
        if r < 0.18 and v2:  # MCP
            q = f"{rng.choice(NOUNS)} {rng.choice(ADJS)}"
            args = J({"query": q, "repo": "tonbo-io/tonbo-ingest", "per_page": 10})
            name = "mcp__github__search_issues"
            issues = [{"number": rng.randint(1, 900), "title": f"{rng.choice(VERBS).capitalize()} the {rng.choice(NOUNS)}",
                       "state": rng.choice(["open", "closed"]), "body": self.para(1, 5)}
                      for _ in range(rng.randint(0, 8))]
            out = J({"content": [{"type": "text", "text": J({"total_count": len(issues), "items": issues})}],
                     "isError": False})
        else:
            style = rng.choice(["json", "free", "free", "unified"]) if v2 else "json"
            name = {"json": "shell", "free": "shell_command", "unified": "exec_command"}[style]
            k = rng.random()
            if k < 0.35:
                cmd = f"sed -n '1,{rng.randint(80, 400)}p' {self.path()}"
                text = self.code_text(self.fit(rng.randint(20, 400), self.p.code_avg["rust"], 1))
            elif k < 0.55:
                cmd = f"rg -n \"{rng.choice(IDENTS)}\" crates"
                text = self.logs(self.fit(rng.randint(3, 80), self.p.log_avg, 1))
            elif k < 0.8:
                cmd = rng.choice(["cargo test -p " + rng.choice(CRATES), "cargo build", "cargo clippy --all-targets"])
                text = self.logs(self.fit(rng.randint(5, 200), self.p.log_avg, 1))
            else:
                cmd = rng.choice(["git status --short", "git log --oneline -20", "ls -la", "git diff --stat"])
                text = self.logs(self.fit(rng.randint(1, 30), self.p.log_avg, 1))
            if rng.random() < 0.02:
                size = self.big_size(50_000, 500_000)
                if size:
                    cmd = rng.choice(["cat target/debug/build.log", "cargo test 2>&1", "RUST_LOG=debug cargo run"])
                    text = self.big_logs(size, 15000)
            code = 0 if rng.random() < 0.85 else rng.choice([1, 101, 2])
            dur = round(rng.expovariate(1 / 3), 1)
            if style == "json":
                args = J({"command": ["bash", "-lc", cmd], "workdir": self.cwd, "timeout_ms": 120000})
            elif style == "free":
                args = J({"command": cmd, "workdir": self.cwd})
            else:
                args = J({"cmd": cmd, "workdir": self.cwd, "yield_time_ms": 10000})
            out = self.shell_output(text, style, code, dur)
            if v2 and rng.random() < 0.005:
                size = self.big_size(100_000, 800_000)
                if size:
                    b64, _ = self.png_b64(size)
                    name = "view_image"
                    args = J({"path": f"{self.cwd}/docs/screenshot-{rng.randint(1, 99)}.png"})
                    out = [{"type": "input_text", "text": "Image attached."},
                           {"type": "input_image", "image_url": "data:image/png;base64," + b64}]
        if self.fmt == "v2":
            self.item({"type": "function_call", "name": name, "arguments": args, "call_id": cid})
        elif self.fmt == "v1":
            self.item({"type": "function_call", "id": self.api_id("fc"), "name": name, "arguments": args, "call_id": cid})
        else:
            self.item({"id": self.api_id("fc"), "type": "function_call", "call_id": cid, "name": name,
                       "arguments": args, "status": "completed"})
        self.tick(100, 30_000)
        self.item({"type": "function_call_output", "call_id": cid, "output": out})
        self.ctx += (len(args) + (len(out) if isinstance(out, str) else 1500)) // 4

    def prompt(self):
        rng = self.rng
        return self.prompt_for(rng.random(), lambda: f"Can you {rng.choice(VERBS)} the {rng.choice(NOUNS)} in "
                               f"{self.path()}? {self.para(0, 4)}".rstrip())

    def token_count(self, inp, out):
        rng = self.rng
        cached = int(inp * rng.uniform(0.5, 0.95)) // 128 * 128
        reason = int(out * rng.uniform(0.2, 0.8))
        last = [inp, cached, out, reason]
        self.tot = [a + b for a, b in zip(self.tot, last)]
        u = lambda v: {"input_tokens": v[0], "cached_input_tokens": v[1], "output_tokens": v[2],  # noqa: E731
                       "reasoning_output_tokens": v[3], "total_tokens": v[0] + v[2]}
        now = self.t // 1000
        rl = {"primary": {"used_percent": float(rng.randint(0, 100)), "window_minutes": 300,
                          "resets_at": now + rng.randint(60, 18000)},
              "secondary": {"used_percent": float(rng.randint(0, 100)), "window_minutes": 10080,
                            "resets_at": now + rng.randint(3600, 604800)}}
        self.event({"type": "token_count", "info": {"total_token_usage": u(self.tot), "last_token_usage": u(last),
                                                   "model_context_window": 272000}, "rate_limits": rl})

    def compact(self):
        rng = self.rng
        summary = f"Summary of the conversation so far:\n\n{self.para(4, 14)}"
        hist = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]}
                for t in self.user_texts[-rng.randint(1, 3):]]
        hist.append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": summary}]})
        self.line("compacted", {"message": summary, "replacement_history": hist})
        self.event({"type": "context_compacted"})
        self.ctx = rng.randint(12000, 25000)

    def turn(self):
        rng = self.rng
        v2 = self.fmt == "v2"
        self.tick(4000, 600_000 if self.turns else 5000)
        tid = self.g.ids.uuid(self.t) if v2 else None
        if v2 and self.new:
            self.event({"type": "task_started", "turn_id": tid, "model_context_window": 272000})
        if v2:
            self.turn_context(tid)
            if rng.random() < 0.1:
                self.item({"type": "ghost_snapshot", "ghost_commit": {
                    "id": self.sha(), "parent": self.sha(),
                    "preexisting_untracked_files": [], "preexisting_untracked_dirs": []}})
        text = self.prompt()
        self.user_texts.append(text)
        self.message("user", text, "input_text")
        if v2:
            self.event({"type": "user_message", "message": text, "images": []})
        self.ctx += len(text) // 4
        n_calls = 1 + min(5, int(rng.expovariate(1 / 1.8))) if self.room() > 8000 else rng.randint(0, 1)
        self.tick(800, 8000)
        self.reasoning()
        inp_sum = out_sum = 0
        for k in range(n_calls):
            if k and rng.random() < 0.5:
                self.reasoning()
            if v2 and rng.random() < 0.03:
                self.item({"type": "web_search_call", "status": "completed",
                           "action": {"type": "search", "query": f"rust {rng.choice(NOUNS)} {rng.choice(ADJS)}"}})
            self.tool_call()
            inp_sum += self.ctx
            out_sum += rng.randint(40, 900)
            if v2 and rng.random() < 0.02 and k < n_calls - 1:
                self.tick(300, 5000)
                p = {"type": "turn_aborted", "reason": "interrupted"}
                if self.new:
                    p["turn_id"] = tid
                self.event(p)
                self.turns += 1
                self.end_turn()
                return
        self.tick(1000, 20_000)
        final = self.para(1, 6)
        if rng.random() < 0.3:
            final += f"\n\n```rust\n{self.code_text(self.fit(rng.randint(3, 30), self.p.code_avg['rust'], 2))}\n```"
        self.message("assistant", final, "output_text")
        if v2:
            self.event({"type": "agent_message", "message": final})
            self.token_count(inp_sum + self.ctx, out_sum + len(final) // 4)
            if self.new:
                self.event({"type": "task_complete", "turn_id": tid, "last_agent_message": final})
        self.ctx += len(final) // 4
        self.turns += 1
        if v2 and self.ctx > 200_000:
            self.compact()
        elif v2 and self.ctx > 100_000 and rng.random() < 0.05:
            self.compact()
        if self.fmt == "v1" and rng.random() < 0.3:
            self.state()
        self.end_turn()

    def end_turn(self):
        if self.fmt == "v2":
            self.turn_ends.append((self.out.size, list(self.tot)))

    def run(self, forked_from=None, copied=None):
        if forked_from:
            self.meta(forked_from)
            copied()
        else:
            self.meta()
            self.injected()
        while self.room() > 0 or self.turns == 0:
            self.turn()
        if self.fmt == "v0":
            doc = {"session": {"timestamp": iso(self.t), "id": self.sid, "instructions": ""}, "items": self.items}
            s = json.dumps(doc, indent=2, ensure_ascii=False)
            self.out.write(s, nlines=s.count("\n") + 1)


# --------------------------------------------------------------------------------------------


class Gen(corpus.Run):
    def __init__(self, root, seed):
        super().__init__(seed, Pools, Ids)
        self.root = root
        self.lines = self.bytes = 0
        self.kinds = {"v2": 0, "archived": 0, "fork": 0, "v1": 0, "v0": 0}
        self.parents = []  # (path, turn_ends, proj, version) of plain V2 sessions
        self.to_zst = []

    @staticmethod
    def stamp(ms):
        return time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(ms // 1000))

    def session(self, kind, target, zst=False):
        rng = corpus.child_rng(self.rng)
        proj = rng.choices(PROJECTS, weights=[p[3] for p in PROJECTS])[0]
        lo, hi = {"v0": V0_RANGE, "v1": V1_RANGE}.get(kind, V2_RANGE)
        start = lo + rng.randrange(hi - lo)
        stamp = self.stamp(start)
        fmt = kind if kind in ("v0", "v1") else "v2"
        if fmt == "v2":
            sid = self.ids.uuid(start)
            i = min(len(VERSIONS) - 1, int((start - lo) / (hi - lo) * len(VERSIONS) + rng.uniform(-1, 1)))
            version = VERSIONS[max(0, i)]
            name = f"rollout-{stamp}-{sid}.jsonl"
            if kind == "archived":
                path = os.path.join(self.root, "archived_sessions", name)
            else:
                path = os.path.join(self.root, "sessions", stamp[:4], stamp[5:7], stamp[8:10], name)
        else:
            sid = self.ids.uuid()
            version = None
            if fmt == "v1":
                path = os.path.join(self.root, "sessions", f"rollout-{stamp}-{sid}.jsonl")
            else:
                path = os.path.join(self.root, "sessions", f"rollout-{stamp[:10]}-{sid}.json")
        if kind == "fork":
            return self.fork(rng, sid, start, path, target)
        out = corpus.Out(path, self)
        s = Sess(self, rng, fmt, proj, sid, start, target, out, version)
        s.run()
        out.close()
        self.kinds[kind] += 1
        if kind == "v2":
            self.parents.append((path, s.turn_ends, proj, version, start))
            if zst:
                self.to_zst.append(path)

    def fork(self, rng, sid, start, path, target):
        budget = int(target * 0.7)
        cands = [p for p in self.parents if p[1] and p[1][0][0] <= budget and p[4] < start]
        if not cands:
            cands = [p for p in self.parents if p[1] and p[1][0][0] <= max(budget, 400_000)]
        if not cands:
            return self.session("v2", target)
        ppath, ends, proj, version, _ = rng.choice(cands)
        k = max(i for i, e in enumerate(ends) if e[0] <= max(budget, ends[0][0]))
        nbytes, tot = ends[rng.randint(0, k)]
        with open(ppath, "rb") as f:
            data = f.read(nbytes)
        parent_id = ppath[-42:-6]
        out = corpus.Out(path, self)
        s = Sess(self, rng, "v2", proj, sid, start, target, out, version)

        def copied():
            ts = iso(s.t).encode()
            lines = data.split(b"\n")[:-1]
            body = b"\n".join(TS_PREFIX + ts + ln[len(TS_PREFIX) + TS_LEN:] for ln in lines) + b"\n"
            out.write_bytes(body, len(lines))
            s.tot = list(tot)  # cumulative usage continues from the parent's
            s.ctx += len(data) // 8

        s.run(forked_from=parent_id, copied=copied)
        out.close()
        self.kinds["fork"] += 1

    def compress(self, jobs):
        if not self.to_zst:
            return 0
        exe = shutil.which("zstd")
        if not exe:
            print(f"gen-codex-corpus: warning: zstd not on PATH; leaving {len(self.to_zst)} files plain",
                  file=sys.stderr)
            return 0
        running = []
        for p in self.to_zst:
            if len(running) >= jobs:
                running.pop(0).wait()
            running.append(subprocess.Popen([exe, "-q", "--rm", "-3", p]))
        bad = sum(1 for r in running if r.wait() != 0)
        if bad:
            print(f"gen-codex-corpus: warning: zstd failed on {bad} files", file=sys.stderr)
        return len(self.to_zst)


def main():
    ap, a = corpus.parse_args(__doc__, ("--zst-share", float, 0.2))
    if not 0 <= a.zst_share <= 1:
        ap.error("--zst-share must be in [0, 1]")
    t0 = time.perf_counter()
    total = int(a.size_mb * MB)
    g = Gen(a.out_dir, a.seed)
    rng = g.rng

    big = corpus.big_target(a, total, a.sessions == 1)
    n_tail = a.sessions - (1 if big else 0)
    corpus.warn_short("gen-codex-corpus", total - big, n_tail, 5000)
    # Special kinds: a few of each once there are enough sessions; forks go last (need parents).
    special = {}
    if n_tail >= 8:
        lo = 2 if n_tail >= 20 else 1
        special = {"v0": max(lo, round(n_tail * 0.015)), "v1": max(lo, round(n_tail * 0.03)),
                   "archived": max(lo, round(n_tail * 0.03)), "fork": max(lo, round(n_tail * 0.02))}
    kinds = [k for k, n in special.items() if k != "fork" for _ in range(n)]
    kinds += ["v2"] * (n_tail - len(kinds) - special.get("fork", 0))
    rng.shuffle(kinds)
    kinds += ["fork"] * special.get("fork", 0)
    weights = corpus.lognormal_weights(rng, n_tail, (total - big) / max(1, n_tail), 10000)
    for i, k in enumerate(kinds):  # V0/V1 sessions were short: keep them in the small half
        if k in ("v0", "v1"):
            weights[i] = min(weights[i], 1.0)
    # Exactly round(share * n) of the plain dated V2 files (the big one included) get compressed.
    plain = [i for i, k in enumerate(kinds) if k == "v2"] + ([-1] if big else [])
    chosen = set(rng.sample(plain, round(a.zst_share * len(plain))))
    zst = [i in chosen for i in range(n_tail)]

    if big:
        g.session("v2", big, zst=-1 in chosen)
    for target, k, z in zip(corpus.targets(weights, lambda: total - g.bytes, 4000), kinds, zst):
        g.session(k, target, zst=z)
    nz = g.compress(max(1, min(8, os.cpu_count() or 1)))

    dt = time.perf_counter() - t0
    kd = g.kinds
    print(f"gen-codex-corpus: {sum(kd.values())} files (v2 {kd['v2'] + kd['fork'] + kd['archived']}"
          f" incl. {nz} zst, {kd['fork']} forks, {kd['archived']} archived; v1 {kd['v1']}; v0 {kd['v0']}), "
          f"{a.sessions} sessions, {g.bytes / MB:.1f} MB, {g.lines} lines in {dt:.1f}s "
          f"({g.bytes / MB / dt:.1f} MB/s) -> {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
