//! ds-conformance-adapter: the Durable Streams client conformance adapter protocol, spoken over
//! tonbo-post's own HTTP client and producer state machine, so that the upstream producer and
//! lifecycle suites can be run against this project's code.
//!
//! Protocol (the `client-adapter` protocol of the durable-streams conformance suite): one JSON command per line on stdin, exactly one
//! JSON result per line on stdout, in order; logs on stderr. Commands: `init`, `create`,
//! `connect`, `append`, `idempotent-append`, `idempotent-append-batch`, `idempotent-close`,
//! `idempotent-detach`, `head`, `delete`, `read` (catch-up), `close`, `validate`, `shutdown`.
//! Only `batching` is declared among the optional features, so live reads and dynamic headers
//! are skipped by the suites.
//!
//! Run the upstream suites from a checkout of durable-streams/durable-streams:
//!   cd packages/client-conformance-tests
//!   pnpm tsx src/cli.ts --run /path/to/target/debug/ds-conformance-adapter \
//!        --suite producer --suite lifecycle

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::{json, Value};
use tonbo_post::client::{Appended, ProducerAppend, RawResponse, StreamClient};
use tonbo_post::retry::RetryPolicy;

/// A producer kept between `idempotent-append` commands: (epoch, next seq).
#[derive(Default, Clone, Copy)]
struct Producer {
    epoch: u64,
    next_seq: u64,
}

struct Adapter {
    server: String,
    client: StreamClient,
    producers: HashMap<(String, String), Producer>,
    content_types: HashMap<String, String>,
}

fn ok(cmd: &str, status: u16, extra: Value) -> Value {
    let mut v = json!({"type": cmd, "success": true, "status": status});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

fn err(cmd: &str, status: Option<u16>, code: &str, message: impl Into<String>) -> Value {
    let mut v = json!({"type": "error", "success": false, "commandType": cmd, "errorCode": code, "message": message.into()});
    if let Some(s) = status {
        v["status"] = json!(s);
    }
    v
}

/// The error code of an unsuccessful answer (as the protocol names them).
fn code_of(r: &RawResponse) -> &'static str {
    match r.status {
        404 => "NOT_FOUND",
        409 if r.header("stream-closed") == Some("true") => "STREAM_CLOSED",
        409 if r.header("producer-expected-seq").is_some() => "SEQUENCE_CONFLICT",
        409 => "CONFLICT",
        400 => "INVALID_ARGUMENT",
        _ => "UNEXPECTED_STATUS",
    }
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

impl Adapter {
    fn url(&self, cmd: &Value) -> String {
        format!("{}{}", self.server, s(cmd, "path").unwrap_or(""))
    }

    fn headers(cmd: &Value) -> Vec<(String, String)> {
        cmd.get("headers")
            .and_then(Value::as_object)
            .map(|h| h.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default()
    }

    /// The bytes of a command's `data`: base64 when `binary`, else the text as is.
    fn data(cmd: &Value) -> Option<Vec<u8>> {
        let d = cmd.get("data")?;
        let data = text(d);
        if cmd.get("binary").and_then(Value::as_bool) == Some(true) {
            base64_decode(&data)
        } else {
            Some(data.into_bytes())
        }
    }

    fn content_type(&mut self, path: &str) -> String {
        if let Some(ct) = self.content_types.get(path) {
            return ct.clone();
        }
        let url = format!("{}{}", self.server, path);
        let ct = self
            .client
            .request("HEAD", &url, &[], None)
            .ok()
            .and_then(|r| r.header("content-type").map(str::to_string))
            .unwrap_or_else(|| "application/octet-stream".into());
        self.content_types.insert(path.to_string(), ct.clone());
        ct
    }

    fn run(&mut self, cmd: &Value) -> Value {
        let ty = s(cmd, "type").unwrap_or("");
        match self.dispatch(ty, cmd) {
            Ok(v) => v,
            Err(e) => err(ty, None, "NETWORK_ERROR", format!("{e:#}")),
        }
    }

    fn dispatch(&mut self, ty: &str, cmd: &Value) -> anyhow::Result<Value> {
        let c = Command {
            ty,
            cmd,
            path: s(cmd, "path").unwrap_or("").to_string(),
            url: self.url(cmd),
            headers: Self::headers(cmd),
        };
        match ty {
            "init" => Ok(self.init(cmd)),
            "create" => self.create(&c),
            "connect" | "head" => self.head(&c),
            "append" => self.append(&c),
            "close" => self.close(&c),
            "delete" => self.delete(&c),
            "read" => self.read(&c),
            "idempotent-append" | "idempotent-close" => self.idempotent_append(&c),
            "idempotent-append-batch" => self.idempotent_append_batch(&c),
            "idempotent-detach" => {
                self.producers
                    .remove(&(c.path, s(cmd, "producerId").unwrap_or("").to_string()));
                Ok(ok(ty, 200, json!({})))
            }
            "validate" => Ok(validate(ty, cmd)),
            "shutdown" => Ok(json!({"type": "shutdown", "success": true})),
            other => Ok(err(
                other,
                None,
                "NOT_SUPPORTED",
                format!("command `{other}` is not supported"),
            )),
        }
    }

    fn init(&mut self, cmd: &Value) -> Value {
        self.server = s(cmd, "serverUrl")
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        json!({"type": "init", "success": true, "clientName": "tonbo-post", "clientVersion": env!("CARGO_PKG_VERSION"),
               "features": {"batching": true, "sse": false, "longPoll": false, "auto": false, "streaming": false,
                            "dynamicHeaders": false, "retryOptions": false, "batchItems": false, "strictZeroValidation": false}})
    }

    fn create(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let cmd = c.cmd;
        let ct = s(cmd, "contentType")
            .unwrap_or("application/octet-stream")
            .to_string();
        let mut h: Vec<(&str, String)> = vec![("Content-Type", ct.clone())];
        if let Some(t) = cmd.get("ttlSeconds").and_then(Value::as_u64) {
            h.push(("Stream-TTL", t.to_string()));
        }
        if let Some(e) = s(cmd, "expiresAt") {
            h.push(("Stream-Expires-At", e.to_string()));
        }
        if cmd.get("closed").and_then(Value::as_bool) == Some(true) {
            h.push(("Stream-Closed", "true".into()));
        }
        let mut all: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend(c.extra());
        let body = Self::data(cmd);
        let r = self.client.request("PUT", &c.url, &all, body.as_deref())?;
        if r.status == 200 || r.status == 201 {
            self.content_types.insert(c.path.clone(), ct);
            Ok(ok(
                "create",
                r.status,
                json!({"offset": r.header("stream-next-offset")}),
            ))
        } else {
            Ok(refused("create", &r))
        }
    }

    fn head(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let r = self.client.request("HEAD", &c.url, &c.extra(), None)?;
        if r.status != 200 {
            return Ok(err(c.ty, Some(r.status), code_of(&r), ""));
        }
        if let Some(ct) = r.header("content-type") {
            self.content_types.insert(c.path.clone(), ct.to_string());
        }
        Ok(ok(
            c.ty,
            200,
            json!({"offset": r.header("stream-next-offset"), "contentType": r.header("content-type"),
                   "streamClosed": r.header("stream-closed") == Some("true")}),
        ))
    }

    fn append(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let ct = self.content_type(&c.path);
        let mut h: Vec<(&str, &str)> = vec![("Content-Type", ct.as_str())];
        let seq = c.cmd.get("seq").map(text);
        if let Some(seq) = &seq {
            h.push(("Stream-Seq", seq.as_str()));
        }
        h.extend(c.extra());
        let body = Self::data(c.cmd).unwrap_or_default();
        let r = self.client.request("POST", &c.url, &h, Some(&body))?;
        if (200..300).contains(&r.status) {
            Ok(ok(
                "append",
                200,
                json!({"offset": r.header("stream-next-offset")}),
            ))
        } else {
            Ok(refused("append", &r))
        }
    }

    fn close(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let ct = s(c.cmd, "contentType")
            .map(str::to_string)
            .unwrap_or_else(|| self.content_type(&c.path));
        let body = Self::data(c.cmd);
        let h = [("Content-Type", ct.as_str()), ("Stream-Closed", "true")];
        let r = self.client.request("POST", &c.url, &h, body.as_deref())?;
        if (200..300).contains(&r.status) {
            Ok(
                json!({"type": "close", "success": true, "finalOffset": r.header("stream-next-offset")}),
            )
        } else {
            Ok(refused("close", &r))
        }
    }

    fn delete(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let r = self.client.request("DELETE", &c.url, &c.extra(), None)?;
        if (200..300).contains(&r.status) {
            self.content_types.remove(&c.path);
            Ok(ok("delete", 200, json!({})))
        } else {
            Ok(err("delete", Some(r.status), code_of(&r), ""))
        }
    }

    fn read(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let live = c.cmd.get("live");
        if live.is_some_and(|l| l != &Value::Bool(false) && !l.is_null()) {
            return Ok(err(
                "read",
                None,
                "NOT_SUPPORTED",
                "live reads are not implemented",
            ));
        }
        let offset = c.cmd.get("offset").map_or("-1".to_string(), text);
        let page = format!("{}?offset={offset}", c.url);
        let r = self.client.request("GET", &page, &c.extra(), None)?;
        if r.status != 200 {
            return Ok(err("read", Some(r.status), code_of(&r), ""));
        }
        let next = r.header("stream-next-offset").map(str::to_string);
        let ct = r.header("content-type").unwrap_or("").to_string();
        let binary = !(ct.starts_with("application/json") || ct.starts_with("text/"));
        let data = if binary {
            base64_encode(&r.body)
        } else {
            String::from_utf8_lossy(&r.body).into_owned()
        };
        let chunks = if r.body.is_empty() {
            json!([])
        } else {
            json!([{"data": data, "binary": binary, "offset": next}])
        };
        Ok(ok(
            "read",
            200,
            json!({"chunks": chunks, "offset": next, "upToDate": r.header("stream-up-to-date") == Some("true"),
                   "streamClosed": r.header("stream-closed") == Some("true")}),
        ))
    }

    /// `idempotent-append` and `idempotent-close`: one append of a producer kept between
    /// commands, claiming a newer epoch once on 403 with `autoClaim`.
    fn idempotent_append(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let (ty, cmd) = (c.ty, c.cmd);
        let producer_id = s(cmd, "producerId").unwrap_or("").to_string();
        let epoch = cmd.get("epoch").and_then(Value::as_u64).unwrap_or(0);
        let key = (c.path.clone(), producer_id.clone());
        let mut p = *self
            .producers
            .entry(key.clone())
            .or_insert(Producer { epoch, next_seq: 0 });
        if p.epoch != epoch && epoch > p.epoch {
            p = Producer { epoch, next_seq: 0 };
        }
        let ct = self.content_type(&c.path);
        let json_stream = ct.starts_with("application/json");
        let body = match Self::data(cmd) {
            Some(d) if json_stream => [b"[".as_slice(), &d, b"]"].concat(),
            Some(d) => d,
            None => Vec::new(),
        };
        let closing = ty == "idempotent-close";
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", ct.as_str())];
        if closing {
            headers.push(("Stream-Closed", "true"));
        }
        let auto_claim = cmd.get("autoClaim").and_then(Value::as_bool) == Some(true);
        let mut claimed = false;
        loop {
            let append = ProducerAppend {
                producer: &producer_id,
                epoch: p.epoch,
                seq: p.next_seq,
                body: &body,
                headers: &headers,
            };
            match self.client.append_as(&c.url, &append)? {
                Appended::New | Appended::Duplicate => {
                    p.next_seq += 1;
                    self.producers.insert(key, p);
                    return Ok(if closing {
                        json!({"type": ty, "success": true, "status": 200})
                    } else {
                        ok(ty, 200, json!({}))
                    });
                }
                Appended::StaleEpoch { server_epoch } if auto_claim && !claimed => {
                    p = Producer {
                        epoch: server_epoch.unwrap_or(p.epoch) + 1,
                        next_seq: 0,
                    };
                    claimed = true;
                }
                Appended::Gap { expected, received } => {
                    return Ok(err(
                        ty,
                        Some(409),
                        "SEQUENCE_CONFLICT",
                        format!("expected seq {expected:?}, sent {received:?}"),
                    ))
                }
                Appended::SeqConflict { last } => {
                    return Ok(err(
                        ty,
                        Some(409),
                        "SEQUENCE_CONFLICT",
                        format!("Stream-Seq not above the last ({last:?})"),
                    ))
                }
                other => return Ok(append_failed(ty, other)),
            }
        }
    }

    /// `idempotent-append-batch`: a fresh producer, everything in one batch (as the reference
    /// adapters do with maxInFlight 1).
    fn idempotent_append_batch(&mut self, c: &Command<'_>) -> anyhow::Result<Value> {
        let (ty, cmd) = (c.ty, c.cmd);
        let producer_id = s(cmd, "producerId").unwrap_or("").to_string();
        let epoch = cmd.get("epoch").and_then(Value::as_u64).unwrap_or(0);
        let ct = self.content_type(&c.path);
        let items: Vec<String> = cmd
            .get("items")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        let body = if ct.starts_with("application/json") {
            format!("[{}]", items.join(",")).into_bytes()
        } else {
            items.concat().into_bytes()
        };
        let append = ProducerAppend {
            producer: &producer_id,
            epoch,
            seq: 0,
            body: &body,
            headers: &[("Content-Type", ct.as_str())],
        };
        Ok(match self.client.append_as(&c.url, &append)? {
            Appended::New | Appended::Duplicate => {
                self.producers.insert(
                    (c.path.clone(), producer_id),
                    Producer { epoch, next_seq: 1 },
                );
                ok(ty, 200, json!({}))
            }
            Appended::Gap { .. } | Appended::SeqConflict { .. } => {
                err(ty, Some(409), "SEQUENCE_CONFLICT", "sequence conflict")
            }
            other => append_failed(ty, other),
        })
    }
}

/// One command as its handler needs it: its type, the command, its path and URL, and the extra
/// headers it names.
struct Command<'a> {
    ty: &'a str,
    cmd: &'a Value,
    path: String,
    url: String,
    headers: Vec<(String, String)>,
}

impl Command<'_> {
    fn extra(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A JSON value as text: a string as it is, anything else as JSON.
fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// An unsuccessful answer, with the server's body as the message.
fn refused(ty: &str, r: &RawResponse) -> Value {
    err(
        ty,
        Some(r.status),
        code_of(r),
        String::from_utf8_lossy(&r.body),
    )
}

/// The result of an idempotent append the server did not take (gaps and position conflicts
/// aside, which each command words its own way).
fn append_failed(ty: &str, outcome: Appended) -> Value {
    match outcome {
        Appended::StaleEpoch { .. } => err(ty, Some(403), "CONFLICT", "stale producer epoch"),
        Appended::Closed => err(ty, Some(409), "STREAM_CLOSED", "the stream is closed"),
        Appended::NotFound => err(ty, Some(404), "NOT_FOUND", "no such stream"),
        Appended::Refused { status, detail } => err(ty, Some(status), "UNEXPECTED_STATUS", detail),
        // Only with LostAnswer::Report, which this adapter leaves off.
        Appended::Unknown { why } => err(ty, None, "NETWORK_ERROR", why),
        Appended::Gap { .. } | Appended::SeqConflict { .. } => {
            err(ty, Some(409), "SEQUENCE_CONFLICT", "sequence conflict")
        }
        Appended::New | Appended::Duplicate => ok(ty, 200, json!({})),
    }
}

/// `validate`: only the idempotent producer's options are checked (none may be negative).
fn validate(ty: &str, cmd: &Value) -> Value {
    let target = cmd.get("target").cloned().unwrap_or(Value::Null);
    if s(&target, "target") != Some("idempotent-producer") {
        return err(
            ty,
            None,
            "NOT_SUPPORTED",
            "only idempotent-producer options are validated",
        );
    }
    for field in ["epoch", "maxBatchBytes", "maxBatchItems"] {
        if target
            .get(field)
            .and_then(Value::as_i64)
            .is_some_and(|v| v < 0)
        {
            return err(
                ty,
                None,
                "INVALID_ARGUMENT",
                format!("{field} must not be negative"),
            );
        }
    }
    ok(ty, 200, json!({"valid": true}))
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                out.push(T[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for c in clean.chunks(4) {
        let mut n = 0u32;
        for (i, b) in c.iter().enumerate() {
            n |= val(*b)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..c.len().saturating_sub(1)]);
    }
    Some(out)
}

fn main() {
    let client = StreamClient::new(
        std::env::var("TONBO_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        "ds-conformance-adapter".into(),
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(50),
            cap: Duration::from_secs(1),
        },
        Duration::from_secs(30),
        tonbo_post::health::Health::new(Duration::from_secs(60)),
    );
    let mut adapter = Adapter {
        server: String::new(),
        client,
        producers: HashMap::new(),
        content_types: HashMap::new(),
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let result = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) => adapter.run(&cmd),
            Err(e) => err("unknown", None, "PARSE_ERROR", e.to_string()),
        };
        // U+2028/U+2029 are escaped so the runner's line splitting cannot break a result.
        let text = result
            .to_string()
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029");
        if writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
        if result["type"] == "shutdown" {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"\x00\xff\x10binary",
        ] {
            assert_eq!(base64_decode(&base64_encode(data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
    }
}
