#!/usr/bin/env bash
# make demo: backfill testdata/ through the whole pipeline into a local Durable Streams server,
# read it back, run again to show nothing is sent twice, and stop the server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Where cargo put the release build (make demo builds it, and the example used below, first).
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work="$root/.demo"
rm -rf "$work"; mkdir -p "$work"
trap '"$root/scripts/ds-server" stop "$work"' EXIT

url=$("$root/scripts/ds-server" start "$work")

# The OpenCode fixtures are SQL text: build them into real databases, as the tests do.
opencode="$work/opencode"
mkdir -p "$opencode"
for case in "$root"/testdata/opencode/*/; do
  case "$case" in *bad-input*) continue ;; esac
  cp -r "$case" "$opencode/"
done
# Each X.sql into X.db, by source-opencode's example sqlite_from_sql (the tests' own code for it).
find "$opencode" -name '*.sql' | while read -r sql; do
  "$bin/examples/sqlite_from_sql" "$sql" "${sql%.sql}.db"
done
# The Goose fixtures' sessions.db are SQL text too.
goose="$work/goose"
cp -r "$root/testdata/goose" "$goose"
find "$goose" -name '*.sql' | while read -r sql; do
  "$bin/examples/sqlite_from_sql" "$sql" "${sql%.sql}.db" && rm "$sql"
done
# The Cursor fixtures too: each state.vscdb.sql into state.vscdb, by the same example.
cursor="$work/cursor"
mkdir -p "$cursor"
cp -r "$root"/testdata/cursor/0[12]-*/ "$cursor/"
find "$cursor" -name '*.vscdb.sql' | while read -r sql; do
  "$bin/examples/sqlite_from_sql" "$sql" "${sql%.sql}"
done
echo "== local Durable Streams server at $url (data in .demo/data)"
export TONBO_API="$url" TONBO_STATE="$work/post.sqlite"

backfill() {
  # Every source in testdata/ goes through the same stages: the Claude Code, Codex and OpenCode
  # fixtures through their readers (OpenCode's built into SQLite files above), and "events"
  # records (the anything-else source) as they are. The *-bad-input fixtures hold deliberately
  # broken input for the tests and are left out here.
  {
    "$bin/claude-read" -q $(ls -d "$root"/testdata/claude/*/projects | grep -v bad-input)
    "$bin/codex-read" -q "$root"/testdata/codex/0[1-9]-*/sessions
    "$bin/opencode-read" -q "$opencode"/*/project/.opencode "$opencode"/*/project/.crush "$opencode"/*/data
    "$bin/gemini-read" -q $(ls -d "$root"/testdata/gemini/*/ | grep -v bad-input)
    "$bin/cline-read" -q "$root"/testdata/cline
    "$bin/copilot-read" -q "$root"/testdata/copilot-cli/*/copilot
    "$bin/goose-read" -q "$goose"
    "$bin/qwen-read" -q $(ls -d "$root"/testdata/qwen/*/qwen | grep -v bad-input)
    "$bin/cursor-read" -q "$cursor"
    cat "$root"/testdata/events/*.ndjson
  } | "$bin/tonbo-map" | tee "$work/events.ndjson" \
    | "$bin/tonbo-batch" \
    | "$bin/tonbo-post"
}

echo; echo "== first run: backfill testdata/"
backfill
echo; echo "== read back"
node "$root/scripts/readback.mjs" "$url" "$work/events.ndjson"

echo; echo "== second run over the same input: nothing is sent twice"
backfill
echo; echo "== read back again"
node "$root/scripts/readback.mjs" "$url" "$work/events.ndjson"
echo; echo "== demo done; stopping the server"
