#!/usr/bin/env python3
"""gen-gemini-corpus.py: deterministic synthetic Gemini CLI chat corpus, for benchmarks.

Usage:
    scripts/gen-gemini-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                         [--big-session-mb 300] [--json-share 0.1] [--seed 1]

Writes a `.gemini`-like tree under OUT_DIR totalling about --size-mb MB of chat bytes over about
--sessions sessions, in the shapes of crates/source-gemini/FORMAT.md:

  tmp/<project>/.project_root                                  the project's root
  tmp/<project>/chats/session-<YYYY-MM-DDThh-mm>-<id8>.jsonl   v0.39.0+ JSONL (most files)
  tmp/<project>/chats/session-<...>-<id8>.json                 about --json-share of the sessions,
                                                               pretty-printed whole documents
  tmp/<project>/chats/<sessionId>/<agentId>.jsonl              a subagent's chat, now and then

A JSONL chat is a metadata line, then per turn: the user's message, `$set` lastUpdated, the model's
turn written once with its tool calls executing and again (same id) with their results and tokens,
the model's answer; now and then an info message, a slash command, a `$rewindTo`. One session is
--big-session-mb MB (capped at 30% of --size-mb; 0 turns it off); the others get log-normal sizes.

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

NOUNS = ["the reader", "the batcher", "the checkpoint", "the retry loop", "the parser", "the CLI",
         "the follow mode", "the tests", "the config", "the server client"]
TOOLS = ["run_shell_command", "read_file", "list_directory", "search_file_content", "replace"]
MODELS = ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-pro-preview"]
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


class Gen:
    """Counts what was written (corpus.Out adds to bytes and lines)."""

    def __init__(self):
        self.bytes = 0
        self.lines = 0
        self.sessions = 0


class Chat:
    """One session's lines, in order; `size` of them so far."""

    def __init__(self, rng, ids, ms):
        self.rng = rng
        self.ids = ids
        self.ms = ms
        self.lines = []
        self.size = 0

    def uuid(self):
        v = (self.rng.getrandbits(64) << 64) | self.ids.low62()
        v = (v & ~(0xF << 76)) | (0x4 << 76)
        return corpus.uuid_text(v)

    def now(self, step=1500):
        self.ms += self.rng.randint(step // 2, step * 2)
        return iso(self.ms)

    def add(self, obj):
        line = J(obj)
        self.lines.append(line)
        self.size += len(line) + 1

    def text(self, words):
        rng = self.rng
        return " ".join(f"{rng.choice(VERBS)} {rng.choice(NOUNS)}, it is {rng.choice(ADJS)}"
                        for _ in range(words))

    def turn(self, model):
        rng = self.rng
        if rng.random() < 0.05:
            self.add({"id": self.uuid(), "timestamp": self.now(), "type": "user",
                      "content": [{"text": rng.choice(["/stats", "/memory show", "/tools"])}]})
            self.add({"id": self.uuid(), "timestamp": self.now(100), "type": "info",
                      "content": self.text(2)})
        prompt = self.uuid()
        self.add({"id": prompt, "timestamp": self.now(), "type": "user",
                  "content": [{"text": self.text(rng.randint(1, 4))}]})
        self.add({"$set": {"lastUpdated": iso(self.ms)}})
        g, at = self.uuid(), self.now()
        calls = [{"id": f"call-{self.uuid()[:8]}", "name": rng.choice(TOOLS),
                  "args": {"command": self.text(1)}, "status": "executing", "timestamp": at}
                 for _ in range(rng.randint(1, 3))]
        thoughts = [{"subject": rng.choice(VERBS).title(), "description": self.text(2),
                     "timestamp": at}]
        base = {"id": g, "timestamp": at, "type": "gemini", "content": "", "thoughts": thoughts,
                "model": model}
        self.add({**base, "toolCalls": calls})
        out_words = rng.choice([5, 20, 80, 400])
        done = [{**c, "status": "success", "timestamp": self.now(3000),
                 "result": [{"functionResponse": {"id": c["id"], "name": c["name"],
                                                  "response": {"output": self.text(out_words)}}}]}
                for c in calls]
        tokens = {"input": rng.randint(1000, 90000), "output": rng.randint(10, 900),
                  "cached": rng.randint(0, 800), "thoughts": rng.randint(0, 300), "tool": 0}
        tokens["total"] = tokens["input"] + tokens["output"] + tokens["thoughts"]
        self.add({**base, "toolCalls": done, "tokens": tokens})
        self.add({"id": self.uuid(), "timestamp": self.now(), "type": "gemini",
                  "content": self.text(rng.randint(2, 12)), "model": model})
        if rng.random() < 0.03:
            self.add({"$rewindTo": prompt})


def write_session(gen, rng, ids, root, project, target, as_json):
    ms = START_MS + rng.randint(0, 300 * 86_400_000)
    chat = Chat(rng, ids, ms)
    sid = chat.uuid()
    meta = {"sessionId": sid, "projectHash": project, "startTime": iso(ms), "lastUpdated": iso(ms),
            "kind": "main"}
    model = rng.choice(MODELS)
    while chat.size < target:
        chat.turn(model)
    stamp = iso(ms)[:16].replace(":", "-")
    chats = os.path.join(root, "tmp", project, "chats")
    name = f"session-{stamp}-{sid[:8]}"
    if as_json:
        messages = [json.loads(line) for line in chat.lines if '"id"' in line[:8]]
        doc = {**meta, "lastUpdated": iso(chat.ms), "messages": messages}
        out = corpus.Out(os.path.join(chats, name + ".json"), gen)
        out.write(json.dumps(doc, indent=2, ensure_ascii=False), len(messages))
    else:
        out = corpus.Out(os.path.join(chats, name + ".jsonl"), gen)
        out.write(J(meta) + "\n")
        for line in chat.lines:
            out.write(line + "\n")
    out.close()
    gen.sessions += 1
    if rng.random() < 0.1:
        sub = Chat(rng, ids, chat.ms)
        aid = sub.uuid()
        sub.turn(model)
        out = corpus.Out(os.path.join(chats, sid, aid + ".jsonl"), gen)
        out.write(J({**meta, "sessionId": aid, "kind": "subagent"}) + "\n")
        for line in sub.lines:
            out.write(line + "\n")
        out.close()
        gen.sessions += 1


def main():
    ap, a = corpus.parse_args(__doc__, ("--json-share", float, 0.1))
    rng = random.Random(a.seed)
    ids = corpus.Ids(rng)
    total = int(a.size_mb * MB)
    big = corpus.big_target(a, total, a.sessions == 1)
    n_tail = a.sessions - (1 if big else 0)
    corpus.warn_short("gen-gemini-corpus", total - big, n_tail, 3000)
    gen = Gen()
    projects = [f"{rng.choice(corpus.SLUG_A)}-{rng.choice(corpus.SLUG_C)}-{i}" for i in range(12)]
    for p in projects:
        root_file = os.path.join(a.out_dir, "tmp", p, ".project_root")
        os.makedirs(os.path.dirname(root_file), exist_ok=True)
        with open(root_file, "w") as f:
            f.write(f"/home/dev/src/{p}\n")
    if big:
        write_session(gen, rng, ids, a.out_dir, projects[0], big, False)
    weights = corpus.lognormal_weights(rng, n_tail, (total - big) / max(1, n_tail), 6000)
    for target in corpus.targets(weights, lambda: total - gen.bytes, 3000):
        as_json = rng.random() < a.json_share
        write_session(gen, rng, ids, a.out_dir, rng.choice(projects), target, as_json)
    print(f"gen-gemini-corpus: {gen.sessions} sessions, {gen.lines} lines, "
          f"{gen.bytes / MB:.1f} MB in {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
