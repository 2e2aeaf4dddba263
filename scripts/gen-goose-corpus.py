#!/usr/bin/env python3
"""gen-goose-corpus.py: deterministic synthetic Goose session corpus, for benchmarks.

Usage:
    scripts/gen-goose-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                        [--big-session-mb 300] [--seed 1]

Writes, for about --sessions sessions totalling about --size-mb MB (1 MB = 10^6 bytes, measured
as the bytes of messages' content_json, or of .jsonl lines):

  OUT_DIR/sessions/sessions.db      Goose's SQLite store at schema version 9 (WAL mode): one big
                                    session of --big-session-mb MB (capped at 30% of --size-mb)
                                    and a log-normal long tail; ~5% of the sessions are sub-agent
                                    or scheduled ones, some compacted (summary, continuation,
                                    archived and copied prompt).
  OUT_DIR/sessions/<id>.jsonl       ~5% of the data in the older one-file-per-session form
                                    (metadata line, then a message per line).

Turns: a user prompt, assistant messages with thinking, text and developer__shell /
developer__text_editor tool requests, each answered by a user-role toolResponse (1-200 KB
outputs, some errors). Shapes follow crates/source-goose/FORMAT.md. Same arguments give
identical row contents. Prints one summary line to stderr. Python 3.11 standard library only.
"""

import json
import os
import random
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

MB = 1_000_000
SCHEMA = """
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
INSERT INTO schema_version (version) VALUES (9);
CREATE TABLE sessions (id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',
  user_set_name BOOLEAN DEFAULT FALSE, session_type TEXT NOT NULL DEFAULT 'user', working_dir TEXT NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  extension_data TEXT DEFAULT '{}', total_tokens INTEGER, input_tokens INTEGER, output_tokens INTEGER,
  accumulated_total_tokens INTEGER, accumulated_input_tokens INTEGER, accumulated_output_tokens INTEGER,
  schedule_id TEXT, recipe_json TEXT, user_recipe_values_json TEXT, provider_name TEXT, model_config_json TEXT,
  tenant_id TEXT, user_id TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT, session_id TEXT NOT NULL REFERENCES sessions(id),
  role TEXT NOT NULL, content_json TEXT NOT NULL, created_timestamp INTEGER NOT NULL,
  timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP, tokens INTEGER, metadata_json TEXT);
CREATE INDEX idx_messages_session ON messages(session_id);
"""
WORDS = ("parse render build test config cache error retry index query schema migrate handler "
         "route token stream buffer reader writer module crate function struct trait").split()
VISIBLE = '{"userVisible":true,"agentVisible":true}'
AGENT_ONLY = '{"userVisible":false,"agentVisible":true}'
INVISIBLE = '{"userVisible":false,"agentVisible":false}'
CONTINUATION = ("Your context was compacted. The previous message contains a summary of the "
                "conversation so far.\nDo not mention that you read a summary or that conversation "
                "summarization occurred.\nJust continue the conversation naturally based on the "
                "summarized context.")


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def text(t):
    return {"type": "text", "text": t}


def turn(rng, clock, call):
    """One turn's messages as (role, content list, metadata, created)."""
    out = [("user", [text(sentence(rng, rng.randint(5, 40)))], VISIBLE, clock)]
    for _ in range(rng.randint(1, 4)):
        call[0] += 1
        cid = f"toolu_{call[0]:08d}"
        tool = rng.choice(["developer__shell", "developer__text_editor"])
        args = ({"command": f"cargo test {rng.choice(WORDS)}"} if tool.endswith("shell")
                else {"command": "view", "path": f"/w/src/{rng.choice(WORDS)}.rs"})
        content = []
        if rng.random() < 0.5:
            content.append({"type": "thinking", "thinking": sentence(rng, 30), "signature": "sig"})
        content.append(text(sentence(rng, rng.randint(5, 30))))
        content.append({"type": "toolRequest", "id": cid,
                        "toolCall": {"status": "success", "value": {"name": tool, "arguments": args}}})
        clock += rng.randint(2, 30)
        out.append(("assistant", content, VISIBLE, clock))
        size = int(rng.lognormvariate(8.5, 1.3)) % 200_000 + 100
        body = (sentence(rng, 12) + "\n") * max(1, size // 100)
        error = rng.random() < 0.05
        result = {"status": "success", "value": {"content": [
            {"type": "text", "text": body, "annotations": {"audience": ["assistant"]}}], "isError": error}}
        clock += rng.randint(1, 20)
        out.append(("user", [{"type": "toolResponse", "id": cid, "toolResult": result}], VISIBLE, clock))
    clock += rng.randint(2, 30)
    out.append(("assistant", [text(sentence(rng, rng.randint(10, 80)))], VISIBLE, clock))
    return out, clock


def compaction(rng, prompt, clock):
    return [("user", [text("## Summary\n" + sentence(rng, 60))], AGENT_ONLY, clock),
            ("assistant", [text(CONTINUATION)], AGENT_ONLY, clock),
            ("user", [text(prompt)], VISIBLE, clock + 1)]


def session_messages(rng, target, clock, call):
    """Messages of about `target` bytes of content_json."""
    msgs, size = [], 0
    while size < target:
        t, clock = turn(rng, clock, call)
        if msgs and rng.random() < 0.03:
            prompt = t[0][1][0]["text"]
            t = [(t[0][0], t[0][1], INVISIBLE, t[0][3])] + compaction(rng, prompt, t[0][3]) + t[1:]
        for m in t:
            size += len(json.dumps(m[1]))
        msgs.extend(t)
    return msgs


def write_db(path, sessions):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    for sid, kind, msgs, day in sessions:
        conn.execute("INSERT INTO sessions (id, name, session_type, working_dir, created_at, updated_at,"
                     " provider_name, model_config_json, schedule_id) VALUES (?,?,?,?,?,?,?,?,?)",
                     (sid, f"Session {sid}", kind, f"/w/{sid}", f"{day} 09:00:00", f"{day} 18:00:00",
                      "anthropic", '{"model_name":"claude-sonnet-4-5"}',
                      "nightly" if kind == "scheduled" else None))
        conn.executemany(
            "INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp,"
            " metadata_json) VALUES (?,?,?,?,?,?)",
            ((f"msg_{sid}_{i}", sid, role, json.dumps(content), created, md)
             for i, (role, content, md, created) in enumerate(msgs)))
    conn.commit()
    conn.close()


def write_jsonl(path, msgs, cwd):
    with open(path, "w") as f:
        f.write(json.dumps({"working_dir": cwd, "description": "older session", "schedule_id": None,
                            "message_count": len(msgs), "total_tokens": None, "input_tokens": None,
                            "output_tokens": None, "accumulated_total_tokens": None,
                            "accumulated_input_tokens": None, "accumulated_output_tokens": None}) + "\n")
        for role, content, _md, created in msgs:
            f.write(json.dumps({"role": role, "created": created, "content": content}) + "\n")


def main():
    _, a = corpus.parse_args(__doc__)
    rng = random.Random(a.seed)
    out = os.path.join(a.out_dir, "sessions")
    os.makedirs(out, exist_ok=True)
    whole = int(a.size_mb * MB)
    big = corpus.big_target(a, whole, a.sessions == 1)
    n_legacy = max(0, a.sessions // 20)
    n_db = max(1, a.sessions - n_legacy)
    weights = corpus.lognormal_weights(rng, a.sessions - 1 if big else a.sessions, whole / a.sessions, 20_000)
    left = [whole - big]
    sizes = []
    for t in corpus.targets(weights, lambda: left[0], 2_000):
        sizes.append(t)
        left[0] = max(0, left[0] - t)
    if big:
        sizes.insert(0, big)
    call, clock, db_sessions, total = [0], 1_735_000_000, [], 0
    for i, target in enumerate(sizes):
        day = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"
        msgs = session_messages(rng, target, clock, call)
        clock = msgs[-1][3] + 60
        total += sum(len(json.dumps(m[1])) for m in msgs)
        if i >= n_db:
            write_jsonl(os.path.join(out, f"2024{1 + i % 12:02d}{1 + i % 28:02d}_{i:06d}.jsonl"), msgs, f"/w/{i}")
            continue
        kind = "sub_agent" if i % 40 == 7 else "scheduled" if i % 40 == 13 else "user"
        db_sessions.append((f"{day.replace('-', '')}_{i + 1}", kind, msgs, day))
    write_db(os.path.join(out, "sessions.db"), db_sessions)
    print(f"gen-goose-corpus: {len(sizes)} sessions ({len(db_sessions)} in sessions.db), "
          f"{total / MB:.1f} MB of message content, {call[0]} tool calls", file=sys.stderr)


if __name__ == "__main__":
    main()
