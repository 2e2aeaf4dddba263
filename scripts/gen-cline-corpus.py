#!/usr/bin/env python3
"""gen-cline-corpus.py: deterministic synthetic Cline / Roo Code task corpus, for benchmarks.

Usage:
    scripts/gen-cline-corpus.py OUT_DIR [--size-mb 1000] [--sessions 1000]
                                        [--big-session-mb 300] [--roo-share 0.3] [--seed 1]

Writes editors' storage folders under OUT_DIR totalling about --size-mb MB of task files over
about --sessions tasks, in the shapes of crates/source-cline/FORMAT.md:

  Code/User/globalStorage/saoudrizwan.claude-dev/tasks/<ms id>/   Cline: native tool calls,
      api_conversation_history.json, ui_messages.json              `ts`, modelInfo and metrics
  Code/User/globalStorage/saoudrizwan.claude-dev/state/taskHistory.json
  Code/User/globalStorage/rooveterinaryinc.roo-cline/tasks/<uuid>/ Roo Code (about --roo-share):
      api_conversation_history.json, ui_messages.json,            `<user_message>` prompts,
      history_item.json                                            reasoning items

A task is turns of: the person's prompt (first turn `<task>`/`<user_message>`, with
`<environment_details>`), the model's thinking, text and 1-3 tool calls, their results in the next
user message (with environment details), and the panel's UI messages. One task is
--big-session-mb MB (capped at 30% of --size-mb; 0 turns it off); the others get log-normal
sizes.

Same arguments give byte-identical output: everything comes from random.Random(seed). Prints one
summary line to stderr. Python 3.11 standard library only.
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402  (scripts/corpus.py: what the generators share)
from corpus import ADJS, J, MB, VERBS  # noqa: E402

NOUNS = ["the reader", "the batcher", "the checkpoint", "the retry loop", "the parser", "the CLI",
         "the follow mode", "the tests", "the config", "the server client"]
TOOLS = ["read_file", "execute_command", "replace_in_file", "search_files", "list_files"]
MODELS = ["claude-sonnet-4-5", "claude-opus-4-1", "gpt-5"]
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CLINE = "Code/User/globalStorage/saoudrizwan.claude-dev"
ROO = "Code/User/globalStorage/rooveterinaryinc.roo-cline"


class Gen:
    """Counts what was written (corpus.Out adds to bytes and lines)."""

    def __init__(self):
        self.bytes = 0
        self.lines = 0
        self.sessions = 0


class Task:
    """One task's API messages and UI messages, as JSON texts; `size` of them so far."""

    def __init__(self, rng, ms, roo, model):
        self.rng, self.ms, self.roo, self.model = rng, ms, roo, model
        self.api, self.ui = [], []
        self.size = 0
        self.calls = 0

    def now(self, step=1500):
        self.ms += self.rng.randint(step // 2, step * 2)
        return self.ms

    def text(self, words):
        rng = self.rng
        return " ".join(f"{rng.choice(VERBS)} {rng.choice(NOUNS)}, it is {rng.choice(ADJS)}"
                        for _ in range(words))

    def env(self):
        return {"type": "text", "text": "<environment_details>\n# Current Time\n"
                f"{self.ms}\n\n# Current Mode\nACT MODE\n</environment_details>"}

    def add(self, api=None, ui=None):
        for obj, into in ((api, self.api), (ui, self.ui)):
            if obj is not None:
                s = J(obj)
                into.append(s)
                self.size += len(s) + 1

    def turn(self, first):
        rng = self.rng
        prompt = self.text(rng.randint(1, 4))
        tag = "user_message" if self.roo else ("task" if first else "user_message")
        wrapped = f"<{tag}>\n{prompt}\n</{tag}>"
        if not first and not self.roo:
            wrapped = f"[TASK RESUMPTION] This task was interrupted.\n\nNew instructions for task continuation:\n{wrapped}"
        ts = self.now()
        self.add({"role": "user", "content": [{"type": "text", "text": wrapped}, self.env()], "ts": ts},
                 {"ts": ts, "type": "say", "say": "task" if first else "user_feedback", "text": prompt})
        for _ in range(rng.randint(1, 3)):
            self.step()
        ts = self.now()
        self.add({"role": "assistant", "content": [{"type": "text", "text": self.text(rng.randint(2, 12))}],
                  "ts": ts}, {"ts": ts, "type": "say", "say": "completion_result", "text": "done"})

    def step(self):
        rng = self.rng
        ts = self.now()
        self.calls += 1
        call = f"toolu_{self.calls:06d}{rng.getrandbits(32):08x}"
        name = rng.choice(TOOLS)
        if self.roo and rng.random() < 0.3:
            self.add({"type": "reasoning", "summary": [{"type": "summary_text", "text": self.text(2)}],
                      "id": f"rs_{call}", "ts": ts})
        content = [{"type": "text", "text": self.text(rng.randint(1, 6))},
                   {"type": "tool_use", "id": call, "name": name, "input": {"path": self.text(1)}}]
        if not self.roo:
            content.insert(0, {"type": "thinking", "thinking": self.text(3), "signature": "sig"})
        msg = {"role": "assistant", "content": content, "ts": ts}
        if not self.roo:
            msg["modelInfo"] = {"providerId": "anthropic", "modelId": self.model, "mode": "act"}
            msg["metrics"] = {"tokens": {"prompt": rng.randint(1000, 90000), "completion": rng.randint(10, 900),
                                         "cached": rng.randint(0, 800)}, "cost": 0.01}
        self.add(msg, {"ts": ts, "type": "say", "say": "api_req_started",
                       "text": J({"tokensIn": 100, "tokensOut": 10, "cost": 0.01})})
        out = self.text(rng.choice([5, 20, 80, 400]))
        ts = self.now(3000)
        self.add({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call,
                                               "content": [{"type": "text", "text": out}]}, self.env()],
                  "ts": ts}, {"ts": ts, "type": "say", "say": "tool", "text": J({"tool": name})})


def write_task(gen, rng, ids, root, target, roo):
    ms = START_MS + rng.randint(0, 300 * 86_400_000)
    model = rng.choice(MODELS)
    task = Task(rng, ms, roo, model)
    tid = corpus.uuid_text((rng.getrandbits(64) << 64) | ids.low62()) if roo else str(ms)
    first = True
    while task.size < target:
        task.turn(first)
        first = False
    folder = os.path.join(root, ROO if roo else CLINE, "tasks", tid)
    for name, items in (("api_conversation_history.json", task.api), ("ui_messages.json", task.ui)):
        out = corpus.Out(os.path.join(folder, name), gen)
        out.write("[" + ",".join(items) + "]", len(items))
        out.close()
    item = {"id": tid, "ts": task.ms, "task": "first prompt", "tokensIn": 1, "tokensOut": 1,
            "totalCost": 0.01}
    if roo:
        out = corpus.Out(os.path.join(folder, "history_item.json"), gen)
        out.write(J({**item, "number": gen.sessions + 1, "workspace": "/home/dev/src/app",
                     "mode": "code"}), 1)
        out.close()
    gen.sessions += 1
    return None if roo else J({**item, "cwdOnTaskInitialization": "/home/dev/src/app",
                               "modelId": model})


def main():
    ap, a = corpus.parse_args(__doc__, ("--roo-share", float, 0.3))
    rng = random.Random(a.seed)
    ids = corpus.Ids(rng)
    total = int(a.size_mb * MB)
    big = corpus.big_target(a, total, a.sessions == 1)
    n_tail = a.sessions - (1 if big else 0)
    corpus.warn_short("gen-cline-corpus", total - big, n_tail, 4000)
    gen = Gen()
    history = []
    if big:
        history.append(write_task(gen, rng, ids, a.out_dir, big, False))
    weights = corpus.lognormal_weights(rng, n_tail, (total - big) / max(1, n_tail), 8000)
    for target in corpus.targets(weights, lambda: total - gen.bytes, 4000):
        history.append(write_task(gen, rng, ids, a.out_dir, target, rng.random() < a.roo_share))
    items = [h for h in history if h]
    out = corpus.Out(os.path.join(a.out_dir, CLINE, "state", "taskHistory.json"), gen)
    out.write("[" + ",".join(items) + "]", len(items))
    out.close()
    print(f"gen-cline-corpus: {gen.sessions} tasks, {gen.lines} messages, "
          f"{gen.bytes / MB:.1f} MB in {a.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
