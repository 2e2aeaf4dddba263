// Starts the Durable Streams reference server (npm @durable-streams/server, which ships no bin).
// Usage: node start.mjs [--port N] [--data-dir DIR] [--host H] [--max-file-handles N]
// Prints exactly one line on stdout, the base URL ("http://127.0.0.1:PORT"), once it is listening;
// the server's own log lines go to stderr so callers can read the URL from the first stdout line.
// Port 0 (the default) picks a free port. Stops cleanly on SIGTERM/SIGINT.
import { DurableStreamTestServer, FileBackedStreamStore } from "@durable-streams/server";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const port = Number(opt("--port", "0"));
const host = opt("--host", "127.0.0.1");
const dataDir = opt("--data-dir", undefined);

// The store logs recovery lines with console.log/info; keep stdout for the URL alone.
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

// The file-backed store keeps at most `maxFileHandles` segment files open (default 100) and can
// evict a handle between an append's write and its fsync: the append is then answered 404 although
// its bytes are in the segment file, and the next append to that stream makes them readable, so
// the batch appears twice (seen with >100 streams written concurrently; see "The reference server" in the README).
// The test server passes only dataDir to its store, so build it without one and hand it a store
// with a pool large enough for every stream of a run.
const maxFileHandles = Number(opt("--max-file-handles", "8192"));
const server = new DurableStreamTestServer({ port, host, longPollTimeout: 1000 });
if (dataDir) server.store = new FileBackedStreamStore({ dataDir, maxFileHandles });
const url = await server.start();
process.stdout.write(url + "\n");

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop();
  } finally {
    process.exit(0);
  }
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
