#!/usr/bin/env python3
"""gen-qwen-corpus.py: deterministic synthetic Qwen Code session corpus, for benchmarks.

Usage:
    scripts/gen-qwen-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                       [--big-session-mb 300] [--seed 1]

Writes a ~/.qwen-like tree under OUT_DIR totalling about --size-mb MB (1 MB = 10^6 bytes) over
about --sessions sessions: projects/<sanitized cwd>/chats/<session uuid>.jsonl, one ChatRecord
per line in the shapes of crates/source-qwen/FORMAT.md (the current writer): a user record
(displayText, sometimes an @path expansion), assistant records with thought, text and
functionCall parts and genai usageMetadata, tool_result records with functionResponse parts and
toolCallResult (log output, sometimes 50-500 KB, sometimes an error), and now and then
ui_telemetry, attribution_snapshot, chat_compression and a custom_title re-appended.

One session is --big-session-mb MB (capped at 30% of --size-mb; 0 turns it off); the others get
log-normal sizes. Same arguments give byte-identical output: everything comes from
random.Random(seed). Prints one summary line to stderr. Python 3.11 standard library only.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the generators share)
from corpus import ADJS, CLAUSES, J, MB, REPLIES, VERBS, iso  # noqa: E402

START_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z
PROJECTS = ["/home/dev/src/tonbo-ingest", "/home/dev/src/tonbo", "/home/dev/work/dashboard",
            "/Users/sam/code/evalkit"]
NOUNS = ["retry loop", "checkpoint", "batch writer", "offset", "parser", "session", "cursor",
         "schema", "fixture", "buffer", "worker", "config loader", "handler", "cache", "index"]
TOOLS = [("run_shell_command", "command"), ("read_file", "absolute_path"),
         ("search_file_content", "pattern"), ("edit", "file_path")]
LOG = ["   Compiling {n} v0.1.0", "test {n}::works ... ok", "test {n}::rounds ... FAILED",
       "warning: unused variable `{n}`", "error[E0308]: mismatched types in {n}",
       "    Finished `dev` profile in 3.2s", "  --> src/{n}.rs:{k}:9"]


def sanitize(cwd):
    return "".join(c if c.isalnum() and c.isascii() else "-" for c in cwd)


class Sess:
    def __init__(self, gen, target):
        self.g, self.rng, self.target = gen, corpus.child_rng(gen.rng), target
        self.id = corpus.uuid_text(gen.rng.getrandbits(128))
        self.cwd = self.rng.choice(PROJECTS)
        self.t = START_MS + self.rng.randrange(120 * 86_400_000)
        self.last = None
        path = os.path.join(gen.out, "projects", sanitize(self.cwd), "chats", f"{self.id}.jsonl")
        self.out = corpus.Out(path, gen)

    def text(self, lo, hi):
        r = self.rng
        return " ".join(f"The {r.choice(NOUNS)} is {r.choice(ADJS)} because {r.choice(CLAUSES)}."
                        for _ in range(r.randint(lo, hi)))

    def logs(self, size):
        r, out, n = self.rng, [], 0
        while n < size:
            line = r.choice(LOG).format(n=r.choice(NOUNS).replace(" ", "_"), k=r.randint(1, 900))
            out.append(line)
            n += len(line) + 1
        return "\n".join(out)

    def record(self, typ, **fields):
        self.t += int(200 * 50 ** self.rng.random())
        uuid = corpus.uuid_text(self.rng.getrandbits(128))
        provenance = {"user": "real_user", "assistant": "assistant_output",
                      "tool_result": "tool_result"}.get(typ, "system")
        rec = {"uuid": uuid, "parentUuid": self.last, "sessionId": self.id,
               "timestamp": iso(self.t), "type": typ, "provenance": provenance, "cwd": self.cwd,
               "version": "0.18.0", "gitBranch": "main"}
        rec.update(fields)
        self.last = uuid
        self.out.write(J(rec) + "\n")

    def turn(self):
        r = self.rng
        typed = r.choice(REPLIES) if r.random() < 0.2 else f"{r.choice(VERBS)} the {r.choice(NOUNS)}, it is {r.choice(ADJS)}"
        parts = [{"text": typed}]
        if r.random() < 0.15:
            parts += [{"text": "\n--- Content from referenced files ---"},
                      {"text": f"\nContent from @{self.cwd}/src/lib.rs:\n{self.logs(r.randint(500, 8000))}"},
                      {"text": "\n--- End of content ---"}]
        self.record("user", message={"role": "user", "parts": parts},
                    systemPayload={"displayText": typed, "hookContext": ""})
        for _ in range(r.randint(1, 6)):
            if self.out.size >= self.target:
                break
            calls = [(f"call_{r.getrandbits(48):012x}",) + r.choice(TOOLS) for _ in range(r.randint(1, 3))]
            parts = [{"text": self.text(1, 4), "thought": True}, {"text": self.text(1, 3)}]
            parts += [{"functionCall": {"id": cid, "name": name, "args": {arg: f"{self.cwd}/src/{r.choice(NOUNS).replace(' ', '_')}.rs"}}}
                      for cid, name, arg in calls]
            self.assistant(parts)
            for cid, name, _ in calls:
                size = r.randint(50_000, 500_000) if r.random() < 0.02 else r.randint(80, 4000)
                failed = r.random() < 0.08
                response = {"error": f"{name} failed: {self.text(1, 1)}"} if failed else {"output": self.logs(size)}
                self.record("tool_result",
                            message={"role": "user", "parts": [{"functionResponse": {"id": cid, "name": name, "response": response}}]},
                            toolCallResult={"callId": cid, "status": "error" if failed else "success",
                                            "error": {"message": "failed"} if failed else None,
                                            "resultDisplay": "done"})
        self.assistant([{"text": self.text(2, 8)}])
        self.system()

    def assistant(self, parts):
        r = self.rng
        prompt = r.randint(2000, 90_000)
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": r.randint(20, 900),
                 "cachedContentTokenCount": prompt // 2, "thoughtsTokenCount": r.randint(0, 300)}
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        self.record("assistant", model="qwen3-coder-plus", message={"role": "model", "parts": parts},
                    usageMetadata=usage, contextWindowSize=1_000_000)

    def system(self):
        r = self.rng.random()
        if r < 0.3:
            self.record("system", subtype="ui_telemetry",
                        systemPayload={"uiEvent": {"event.name": "qwen-code.api_response", "duration_ms": 900}})
        elif r < 0.4:
            self.record("system", subtype="attribution_snapshot",
                        systemPayload={"snapshot": {"files": {f"src/{n}.rs": 12 for n in ("a", "b")}}})
        elif r < 0.43:
            self.record("system", subtype="chat_compression",
                        systemPayload={"info": {"originalTokenCount": 90_000, "newTokenCount": 9000, "compressionStatus": 1},
                                       "compressedHistory": [{"role": "user", "parts": [{"text": self.text(3, 10)}]}]})
        elif r < 0.5:
            self.record("system", subtype="custom_title",
                        systemPayload={"customTitle": f"{VERBS[0].capitalize()} the {NOUNS[self.g.n % len(NOUNS)]}",
                                       "titleSource": "auto"})

    def write(self):
        while self.out.size < self.target:
            self.turn()
        self.out.close()


class Gen:
    def __init__(self, out, seed):
        self.out = out
        self.rng = corpus.random.Random(seed)
        self.bytes = self.lines = self.n = 0

    def session(self, target):
        Sess(self, target).write()
        self.n += 1


def main():
    _, a = corpus.parse_args(__doc__)
    t0 = time.perf_counter()
    total = int(a.size_mb * MB)
    g = Gen(a.out_dir, a.seed)
    big = corpus.big_target(a, total, a.sessions == 1)
    n_tail = a.sessions - (1 if big else 0)
    corpus.warn_short("gen-qwen-corpus", total - big, n_tail, 5000)
    weights = corpus.lognormal_weights(g.rng, n_tail, (total - big) / max(1, n_tail), 10000)
    if big:
        g.session(big)
    for target in corpus.targets(weights, lambda: total - g.bytes, 4000):
        g.session(target)
    dt = time.perf_counter() - t0
    print(f"gen-qwen-corpus: {g.n} sessions, {g.bytes / MB:.1f} MB, {g.lines} lines in {dt:.1f}s "
          f"({g.bytes / MB / dt:.1f} MB/s) -> {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
