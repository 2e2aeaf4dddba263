#!/usr/bin/env python3
"""gen-cursor-corpus.py: deterministic synthetic Cursor chat corpus, for benchmarks.

Usage:
    scripts/gen-cursor-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                         [--big-session-mb 300] [--inline-share 0.1] [--seed 1]

Writes a Cursor `User` folder under OUT_DIR totalling about --size-mb MB of JSON values (1 MB =
10^6 bytes: the chats' composerData and bubble values) over about --sessions chats, in the shapes
of crates/source-cursor/FORMAT.md:

  User/globalStorage/state.vscdb        SQLite (WAL mode), cursorDiskKV: composerData:<id> per
                                        chat; bubbleId:<id>:<bubble> per message, named in order
                                        by fullConversationHeadersOnly (most chats), or about
                                        --inline-share of the chats with their messages inline
                                        in composerData.conversation (older builds)
  User/workspaceStorage/<hash>/         workspace.json ({"folder": file URI}) and state.vscdb
                                        (ItemTable composer.composerData lists its chats)

A turn is the user's prompt, the assistant's thinking, one to three tool calls each with its
result in the same message (toolFormerData), and the answer with its token counts. One chat is
--big-session-mb MB (capped at 30% of --size-mb; 0 turns it off); the others get log-normal sizes.

Same arguments give identical row contents: everything comes from random.Random(seed). Prints one
summary line to stderr. Python 3.11 standard library only.
"""

import os
import random
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the generators share)
from corpus import ADJS, J, MB, VERBS, iso  # noqa: E402

NOUNS = ["the reader", "the batcher", "the checkpoint", "the retry loop", "the parser", "the CLI",
         "the follow mode", "the tests", "the config", "the server client"]
TOOLS = ["read_file_v2", "run_terminal_cmd", "grep", "edit_file_v2", "list_dir_v2"]
MODELS = ["claude-4.5-sonnet", "gpt-5", "composer-1"]
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TABLES = ("CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);"
          "CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);")


class Gen:
    def __init__(self, db):
        self.db = db
        self.bytes = 0
        self.lines = 0  # messages
        self.sessions = 0

    def put(self, key, value):
        self.db.execute("INSERT INTO cursorDiskKV VALUES (?, ?)", (key, value))
        self.bytes += len(value.encode())


class Chat:
    def __init__(self, rng, ids, ms, model):
        self.rng, self.ids, self.ms, self.model = rng, ids, ms, model
        self.bubbles = []  # (bubbleId, JSON text)
        self.size = 0

    def uuid(self):
        v = (self.rng.getrandbits(64) << 64) | self.ids.low62()
        v = (v & ~(0xF << 76)) | (0x4 << 76)
        return corpus.uuid_text(v)

    def now(self, step=1500):
        self.ms += self.rng.randint(step // 2, step * 2)
        return iso(self.ms)

    def text(self, words):
        rng = self.rng
        return " ".join(f"{rng.choice(VERBS)} {rng.choice(NOUNS)}, it is {rng.choice(ADJS)}"
                        for _ in range(words))

    def add(self, kind, **members):
        bid = self.uuid()
        text = J({"_v": 3, "type": kind, "bubbleId": bid, "createdAt": self.now(), **members})
        self.bubbles.append((bid, text))
        self.size += len(text)

    def turn(self):
        rng = self.rng
        self.add(1, text=self.text(rng.randint(1, 4)), richText="",
                 modelInfo={"modelName": self.model})
        self.add(2, text="", capabilityType=30, thinking={"text": self.text(3), "signature": "c2ln"})
        for _ in range(rng.randint(1, 3)):
            out = self.text(rng.choice([5, 20, 80, 400]))
            self.add(2, text="", capabilityType=15, toolFormerData={
                "tool": 15, "name": rng.choice(TOOLS), "toolCallId": f"toolu_{self.uuid()[:12]}",
                "status": "completed" if rng.random() > 0.05 else "error",
                "rawArgs": J({"command": self.text(1)}), "result": J({"output": out})})
        self.add(2, text=self.text(rng.randint(2, 12)), modelInfo={"modelName": self.model},
                 tokenCount={"inputTokens": rng.randint(1000, 90000),
                             "outputTokens": rng.randint(10, 900)})


def write_chat(gen, rng, ids, target, inline):
    ms = START_MS + rng.randint(0, 300 * 86_400_000)
    chat = Chat(rng, ids, ms, rng.choice(MODELS))
    cid = chat.uuid()
    while chat.size < target:
        chat.turn()
    head = {"_v": 10, "composerId": cid, "name": chat.text(1)[:40], "createdAt": ms,
            "lastUpdatedAt": chat.ms, "status": "completed",
            "modelConfig": {"modelName": chat.model, "maxMode": False}, "generatingBubbleIds": []}
    if inline:
        body = ",".join(text for _, text in chat.bubbles)
        gen.put(f"composerData:{cid}", J({**head, "_v": 2})[:-1] + f',"conversation":[{body}]}}')
    else:
        for bid, text in chat.bubbles:
            gen.put(f"bubbleId:{cid}:{bid}", text)
        headers = [{"bubbleId": bid, "type": 1 if '"type":1' in text[:20] else 2}
                   for bid, text in chat.bubbles]
        gen.put(f"composerData:{cid}", J({**head, "fullConversationHeadersOnly": headers}))
    gen.lines += len(chat.bubbles)
    gen.sessions += 1
    return cid


def workspaces(rng, user, chats):
    """Twelve workspaces, each listing the chats started in it."""
    by_ws = {}
    for cid in chats:
        by_ws.setdefault(rng.randrange(12), []).append(cid)
    for n, ids in sorted(by_ws.items()):
        d = os.path.join(user, "workspaceStorage", f"{rng.getrandbits(128):032x}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "workspace.json"), "w") as f:
            f.write(J({"folder": f"file:///home/dev/src/{rng.choice(corpus.SLUG_A)}-{n}"}))
        db = sqlite3.connect(os.path.join(d, "state.vscdb"))
        db.executescript(TABLES)
        listed = {"allComposers": [{"composerId": c, "type": "head"} for c in ids]}
        db.execute("INSERT INTO ItemTable VALUES (?, ?)", ("composer.composerData", J(listed)))
        db.commit()
        db.close()


def main():
    ap, a = corpus.parse_args(__doc__, ("--inline-share", float, 0.1))
    rng = random.Random(a.seed)
    ids = corpus.Ids(rng)
    total = int(a.size_mb * MB)
    big = corpus.big_target(a, total, a.sessions == 1)
    n_tail = a.sessions - (1 if big else 0)
    corpus.warn_short("gen-cursor-corpus", total - big, n_tail, 3000)
    user = os.path.join(a.out_dir, "User")
    os.makedirs(os.path.join(user, "globalStorage"), exist_ok=True)
    db = sqlite3.connect(os.path.join(user, "globalStorage", "state.vscdb"))
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(TABLES)
    gen = Gen(db)
    chats = []
    if big:
        chats.append(write_chat(gen, rng, ids, big, False))
    weights = corpus.lognormal_weights(rng, n_tail, (total - big) / max(1, n_tail), 6000)
    for target in corpus.targets(weights, lambda: total - gen.bytes, 3000):
        chats.append(write_chat(gen, rng, ids, target, rng.random() < a.inline_share))
    db.commit()
    db.close()
    workspaces(rng, user, chats)
    print(f"gen-cursor-corpus: {gen.sessions} sessions, {gen.lines} messages, "
          f"{gen.bytes / MB:.1f} MB in {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
