#!/usr/bin/env python3
"""gen-copilot-corpus.py: deterministic synthetic GitHub Copilot CLI session corpus, for benchmarks.

Usage:
    scripts/gen-copilot-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                          [--big-session-mb 300] [--seed 1]

Writes a COPILOT_HOME-like tree under OUT_DIR totalling about --size-mb MB (1 MB = 10^6 bytes)
over about --sessions sessions:

  session-state/<uuid>/events.jsonl        most sessions (with a workspace.yaml beside)
  session-state/<uuid>.jsonl               a few flat sessions
  history-session-state/session_<n>.json   a few legacy documents (pretty-printed)

One session is --big-session-mb MB (capped at 30% of --size-mb; 0 turns it off); the others get
log-normal sizes. Event shapes follow crates/source-copilot/FORMAT.md: session.start with its
context, then per turn user.message (now and then with attachments, a skill's injected message
or an autopilot continuation), assistant.turn_start, assistant.reasoning, assistant.message with
toolRequests (bash, view, edit, an MCP tool) and the same reasoningText, tool.execution_start and
tool.execution_complete (outputs of 100 B to 200 KB, some failures), a closing
assistant.message, assistant.turn_end; occasionally a compaction; session.shutdown at the end.

Same arguments give byte-identical output: everything comes from random.Random(seed). Prints one
summary line to stderr. Python 3.11 standard library only.
"""

import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the generators share)
from corpus import ADJS, J, MB, VERBS, iso  # noqa: E402

NOUNS = ["cart", "parser", "session store", "retry loop", "config loader", "cache", "router",
         "migration", "auth check", "tokenizer", "scheduler", "CLI flags", "lock file"]
TOOLS = ["bash", "view", "edit", "github-mcp-server-list_issues"]
MODELS = ["claude-sonnet-4.5", "gpt-5", "claude-opus-4.1"]


class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.ids = corpus.Ids(rng)
        self.bytes = 0
        self.lines = 0
        self.sessions = 0

    def uuid(self):
        v = (self.rng.getrandbits(64) << 64) | self.ids.low62()
        v = (v & ~(0xF << 76)) | (4 << 76)
        return corpus.uuid_text(v)

    def sentence(self):
        r = self.rng
        return f"{r.choice(VERBS)} the {r.choice(ADJS)} {r.choice(NOUNS)}"

    def text(self, n):
        """About n bytes of text."""
        out, size = [], 0
        while size < n:
            s = self.sentence()
            out.append(s)
            size += len(s) + 2
        return ". ".join(out)


class Session:
    """One session's events, written as they are made; the clock moves a few seconds a line."""

    def __init__(self, g, out, sid, cwd, model, start_ms):
        self.g, self.out, self.sid, self.cwd, self.model = g, out, sid, cwd, model
        self.ms = start_ms
        self.prev = None
        self.call = 0

    def event(self, kind, data):
        self.ms += self.g.rng.randint(50, 4000)
        eid = self.g.uuid()
        line = J({"type": kind, "data": data, "id": eid, "timestamp": iso(self.ms),
                  "parentId": self.prev})
        self.prev = eid
        self.out.write(line + "\n")

    def start(self, version):
        self.event("session.start", {
            "sessionId": self.sid, "version": 1, "producer": "copilot-agent",
            "copilotVersion": version, "startTime": iso(self.ms), "selectedModel": self.model,
            "context": {"cwd": self.cwd, "gitRoot": self.cwd, "repository": "acme/app",
                        "hostType": "github", "branch": "main"}})

    def prompt(self):
        g, r = self.g, self.g.rng
        data = {"content": g.sentence() + " in " + self.cwd, "agentMode": "interactive"}
        if r.random() < 0.1:
            data["attachments"] = [{"type": "file", "path": self.cwd + "/src/lib.rs",
                                    "displayName": "lib.rs"}]
        self.event("user.message", data)
        if r.random() < 0.05:
            self.event("user.message", {"content": "<skill>" + g.text(300) + "</skill>",
                                        "source": "skill-pdf"})

    def tool(self, turn, output_bytes):
        g, r = self.g, self.g.rng
        self.call += 1
        cid = f"toolu_{self.call:06d}"
        name = r.choice(TOOLS)
        args = {"command": "cargo test -q " + r.choice(NOUNS).replace(" ", "_")}
        req = {"toolCallId": cid, "name": name, "arguments": args, "type": "function"}
        start = {"toolCallId": cid, "toolName": name, "arguments": args, "turnId": turn}
        if name.startswith("github-mcp-server-"):
            for d in (req, start):
                d["mcpServerName"], d["mcpToolName"] = "github-mcp-server", "list_issues"
        thought = g.text(r.randint(80, 600))
        self.event("assistant.reasoning", {"reasoningId": g.uuid(), "content": thought})
        self.event("assistant.message", {
            "messageId": g.uuid(), "model": self.model, "content": g.text(r.randint(40, 300)),
            "toolRequests": [req], "reasoningText": thought, "outputTokens": r.randint(20, 900),
            "turnId": turn})
        self.event("tool.execution_start", start)
        if r.random() < 0.05:
            self.event("tool.execution_complete", {"toolCallId": cid, "success": False,
                                                   "error": {"message": g.text(120), "code": "failure"}})
        else:
            self.event("tool.execution_complete", {"toolCallId": cid, "success": True,
                                                   "result": {"content": g.text(output_bytes)},
                                                   "turnId": turn})

    def turn(self, n, budget):
        r = self.g.rng
        turn = str(n)
        self.prompt()
        self.event("assistant.turn_start", {"turnId": turn})
        for _ in range(r.randint(1, 6)):
            size = min(budget, int(r.lognormvariate(7, 1.6)), 200_000)
            self.tool(turn, max(100, size))
        self.event("assistant.message", {"messageId": self.g.uuid(), "model": self.model,
                                         "content": self.g.text(r.randint(80, 1200)),
                                         "turnId": turn})
        self.event("assistant.turn_end", {"turnId": turn})
        if r.random() < 0.02:
            self.event("session.compaction_complete", {"success": True,
                                                       "summaryContent": self.g.text(2000)})

    def end(self):
        u = {"inputTokens": 90_000, "outputTokens": 4_000, "cacheReadTokens": 60_000,
             "cacheWriteTokens": 5_000}
        self.event("session.shutdown", {
            "shutdownType": "routine", "totalPremiumRequests": 3, "totalApiDurationMs": 40_000,
            "sessionStartTime": 0, "codeChanges": {"linesAdded": 1, "linesRemoved": 0,
                                                   "filesModified": []},
            "modelMetrics": {self.model: {"requests": {"count": 3, "cost": 1}, "usage": u}}})


def event_session(g, root, target, flat):
    r = g.rng
    sid = g.uuid()
    cwd = f"/home/dev/{r.choice(NOUNS).replace(' ', '-')}"
    if flat:
        path = os.path.join(root, "session-state", f"{sid}.jsonl")
    else:
        path = os.path.join(root, "session-state", sid, "events.jsonl")
    out = corpus.Out(path, g)
    s = Session(g, out, sid, cwd, r.choice(MODELS), 1_767_225_600_000 + r.randint(0, 200 * 86_400_000))
    s.start(r.choice(["0.0.369", "0.0.422", "1.0.48"]))
    n = 0
    while out.size < target:
        n += 1
        s.turn(n, max(100, target - out.size))
    s.end()
    out.close()
    if not flat:
        with open(os.path.join(root, "session-state", sid, "workspace.yaml"), "w") as f:
            f.write(f"id: {sid}\ncwd: {cwd}\nsummary: {g.sentence()}\n")
    g.sessions += 1


def legacy_session(g, root, n):
    r = g.rng
    msgs = []
    for i in range(r.randint(2, 20)):
        cid = f"call_{n}_{i}"
        msgs.append({"role": "user", "content": g.sentence()})
        msgs.append({"role": "assistant", "content": g.text(200), "tool_calls": [
            {"id": cid, "type": "function",
             "function": {"name": "bash", "arguments": json.dumps({"command": "ls"})}}]})
        msgs.append({"role": "tool", "tool_call_id": cid, "content": g.text(r.randint(100, 3000))})
    doc = {"sessionId": g.uuid(), "startTime": iso(1_759_000_000_000 + n * 3_600_000),
           "chatMessages": msgs, "timeline": []}
    path = os.path.join(root, "history-session-state", f"session_{n:04d}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    with open(path, "w") as f:
        f.write(text)
    g.bytes += len(text.encode())
    g.sessions += 1


def main():
    _, a = corpus.parse_args(__doc__)
    rng = random.Random(a.seed)
    g = Gen(rng)
    whole = int(a.size_mb * MB)
    n = a.sessions
    legacy = max(1, n // 50)
    for i in range(legacy):
        legacy_session(g, a.out_dir, i)
    big = corpus.big_target(a, whole, n == 1)
    if big:
        event_session(g, a.out_dir, big, False)
    rest = n - legacy - (1 if big else 0)
    if rest > 0:
        weights = corpus.lognormal_weights(rng, rest, max(1, (whole - g.bytes) / rest), 20_000)
        left = lambda: max(0, whole - g.bytes)  # noqa: E731
        for i, t in enumerate(corpus.targets(weights, left, 2_000)):
            event_session(g, a.out_dir, t, i % 40 == 7)
    print(f"gen-copilot-corpus: {g.sessions} sessions, {g.lines} lines, "
          f"{g.bytes / MB:.1f} MB in {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
