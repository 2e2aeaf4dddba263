// Reads sessions back from a Durable Streams server and checks them against the events that
// were sent: per session, the server must hold every source_key exactly once, in input order.
// Usage: node readback.mjs BASE_URL EVENTS.ndjson [URL_TEMPLATE]
// EVENTS.ndjson holds event lines ({"session_id":..,"event":{..}}), e.g. tonbo-map's output.
// Prints one line per session; exits 1 if any session differs.
import { readFileSync } from "node:fs";

const [base, eventsFile, template = "{base}/v1/sessions/{session_id}/events"] = process.argv.slice(2);
if (!base || !eventsFile) {
  console.error("usage: node readback.mjs BASE_URL EVENTS.ndjson [URL_TEMPLATE]");
  process.exit(2);
}
const expected = new Map();
for (const line of readFileSync(eventsFile, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const { session_id, event } = JSON.parse(line);
  if (!expected.has(session_id)) expected.set(session_id, []);
  expected.get(session_id).push(event.metadata.source_key);
}
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
let bad = 0;
const pad = Math.max(7, ...[...expected.keys()].map((s) => s.length));
console.log(`${"session".padEnd(pad)}  expected  on server  duplicates  in order`);
for (const [session, keys] of expected) {
  const url = template.replace("{base}", base.replace(/\/$/, "")).replace("{session_id}", enc(session));
  const res = await fetch(`${url}?offset=-1`);
  const held = res.status === 200 ? await res.json() : [];
  const got = held.map((e) => e?.metadata?.source_key);
  const dups = got.length - new Set(got).size;
  const inOrder = got.length === keys.length && got.every((k, i) => k === keys[i]);
  if (!inOrder || dups) bad++;
  console.log(`${session.padEnd(pad)}  ${String(keys.length).padStart(8)}  ${String(got.length).padStart(9)}  ${String(dups).padStart(10)}  ${inOrder ? "yes" : "NO"}`);
}
process.exit(bad ? 1 : 0);
