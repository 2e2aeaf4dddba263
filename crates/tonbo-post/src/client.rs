//! HTTP side of tonbo-post: append with idempotent-producer headers, create, and read back.
//!
//! Status handling follows the Durable Streams protocol's answers to an append: 200 appended,
//! 204 duplicate, 403 stale epoch (with the server's `Producer-Epoch`), 409 either a closed
//! stream (`Stream-Closed: true`, checked first) or a sequence gap
//! (`Producer-Expected-Seq`/`Producer-Received-Seq`). Transient failures (429, 408, 5xx, network)
//! are retried here, re-sending the same bytes with the same `(epoch, seq)`, which is safe because
//! the server deduplicates them; everything else is returned to the caller to decide.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use ureq::http::Response;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::{Body, RequestBuilder};

use tonbo_core::url::without_credentials;

use crate::health::{Halt, Halted, Health};
use crate::read::source_keys;
use crate::retry::{is_transient_status, parse_retry_after, RetryPolicy};

/// What the server said to an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// 200: the batch is new and stored.
    New,
    /// 204: the server already has this `(epoch, seq)`.
    Duplicate,
    /// 404: the stream does not exist.
    NotFound,
    /// 403: the server knows a newer epoch for this producer.
    StaleEpoch { server_epoch: Option<u64> },
    /// 409 with a sequence gap.
    Gap {
        expected: Option<u64>,
        received: Option<u64>,
    },
    /// 409 with `Stream-Closed: true`.
    Closed,
    /// 409 to the batch's `Stream-Seq`: the stream moved past the position this batch was
    /// written for (another writer appended); nothing was stored and the producer seq is unused.
    SeqConflict { last: Option<String> },
    /// Any other answer that retrying will not change.
    Refused { status: u16, detail: String },
    /// No answer: the connection failed after the request may have reached the server, so the
    /// batch may or may not be stored (only with [`LostAnswer::Report`]).
    Unknown { why: String },
}

/// What a create found ([`StreamClient::create`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// 201: created by this call, new and empty, with no producer state.
    New,
    /// 200/204: it existed already (also when a retried create's lost first attempt was the
    /// one that created it).
    Existed,
}

/// What an append does when its connection fails after the request may have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// Send it again like any transient failure: the server's dedupe by `(epoch, seq)` covers it.
    Retry,
    /// End as [`Appended::Unknown`] instead of sending again blindly: a server that stored it but
    /// lost its producer state (the reference server restarted between writing a batch and
    /// recording its seq) would store it twice. The caller looks at the stream first.
    Report,
}

/// One append of a producer: its numbering, its body, and any extra headers
/// (`Stream-Closed: true` to close, a `Content-Type` other than JSON).
#[derive(Debug, Clone, Copy)]
pub struct ProducerAppend<'a> {
    pub producer: &'a str,
    pub epoch: u64,
    pub seq: u64,
    pub body: &'a [u8],
    pub headers: &'a [(&'a str, &'a str)],
}

/// An append that failed in a way that leaves open whether the server stored it.
#[derive(Debug)]
struct Ambiguous(String);

impl std::fmt::Display for Ambiguous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Ambiguous {}

#[derive(Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct StreamClient {
    agent: ureq::Agent,
    auth: Option<String>,
    producer_id: String,
    pub retry: RetryPolicy,
    /// Retries made so far (all requests), for the summary.
    pub retries: u64,
    /// What an append whose answer was lost comes to ([`LostAnswer::Retry`] unless set).
    pub lost_answer: LostAnswer,
    /// Shared by every clone: the run's stop and its budget for server failures.
    pub health: Arc<Health>,
    /// Shared by every clone: for a stream (its URL without query), the URL of the node that
    /// last answered a request for it after redirects (a cluster's leader of the stream's
    /// group), so that only the first request to a stream pays a redirect.
    leaders: Arc<Mutex<HashMap<String, String>>>,
}

/// How one attempt of a request ended, in [`StreamClient::with_retries_as`].
enum Attempt {
    /// An answer to return to the caller.
    Answered(Response<Body>),
    /// A redirect to follow at once.
    Redirected(String),
    /// A failure worth trying again.
    Failed(Failure),
}

/// A failed attempt: why, how long the server asked to wait, and whether it is a failure of the
/// server as a whole (spent from the run's shared budget).
struct Failure {
    why: String,
    retry_after: Option<Duration>,
    server: bool,
}

/// A request as its retries name it and treat it.
struct Asked<'a> {
    /// What it does (`append to`, `read`), for messages.
    what: &'a str,
    /// Its URL without credentials, for messages.
    shown: String,
    /// Its URL without query: the key of the leader it is sent to.
    stream: &'a str,
    lost_answer: LostAnswer,
}

impl StreamClient {
    pub fn new(
        api_key: Option<String>,
        producer_id: String,
        retry: RetryPolicy,
        timeout: Duration,
        health: Arc<Health>,
    ) -> StreamClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("tonbo-post/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(8)
            // Redirects are followed in `with_retries`, body and all (ureq will not re-send a
            // POST body on 307/308, and a follower of an Ursula cluster answers writes so).
            .max_redirects(0)
            .build();
        let agent =
            ureq::Agent::with_parts(config, DefaultConnector::default(), IpFirst::default());
        StreamClient {
            agent,
            auth: api_key.map(|k| format!("Bearer {k}")),
            producer_id,
            retry,
            retries: 0,
            lost_answer: LostAnswer::Retry,
            health,
            leaders: Arc::default(),
        }
    }

    /// POSTs `body` (a JSON array) as batch `(epoch, seq)` of this producer, written for the
    /// stream position `at` (the number of events the stream holds before it): the server refuses
    /// it ([`Appended::SeqConflict`]) if another append reached that position first.
    pub fn append(
        &mut self,
        url: &str,
        epoch: u64,
        seq: u64,
        at: u64,
        body: &[u8],
    ) -> Result<Appended> {
        let producer = self.producer_id.clone();
        let position = stream_seq(at);
        let append = ProducerAppend {
            producer: &producer,
            epoch,
            seq,
            body,
            headers: &[("Stream-Seq", position.as_str())],
        };
        self.append_as(url, &append)
    }

    /// The producer id this client writes as.
    pub fn producer_id(&self) -> &str {
        &self.producer_id
    }

    /// The same for any producer, with extra headers.
    pub fn append_as(&mut self, url: &str, append: &ProducerAppend<'_>) -> Result<Appended> {
        let lost_answer = self.lost_answer;
        let sent = self.with_retries_as(url, "append to", lost_answer, |c, url| {
            c.send_append(url, append)
        });
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) => match e.downcast::<Ambiguous>() {
                Ok(Ambiguous(why)) => return Ok(Appended::Unknown { why }),
                Err(e) => return Err(e),
            },
        };
        let outcome = appended(&mut resp);
        drain(&mut resp);
        Ok(outcome)
    }

    /// One POST of an append, with the producer headers.
    fn send_append(
        &self,
        url: &str,
        append: &ProducerAppend<'_>,
    ) -> Result<Response<Body>, ureq::Error> {
        let is_content_type = |k: &str| k.eq_ignore_ascii_case("content-type");
        let content_type = append
            .headers
            .iter()
            .find(|(k, _)| is_content_type(k))
            .map_or("application/json", |(_, v)| *v);
        let mut req = self
            .authorized(self.agent.post(url))
            .header("Content-Type", content_type)
            .header("Producer-Id", append.producer)
            .header("Producer-Epoch", append.epoch.to_string())
            .header("Producer-Seq", append.seq.to_string());
        for (k, v) in append.headers.iter().filter(|(k, _)| !is_content_type(k)) {
            req = req.header(*k, *v);
        }
        if append.body.is_empty() {
            req.send_empty()
        } else {
            req.send(append.body)
        }
    }

    /// A request with the API key, if there is one.
    fn authorized<B>(&self, req: RequestBuilder<B>) -> RequestBuilder<B> {
        match &self.auth {
            Some(a) => req.header("Authorization", a.as_str()),
            None => req,
        }
    }

    /// Any request, with the retries and redirects of every other: the status, the headers
    /// (names lower-cased) and the body.
    pub fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<RawResponse> {
        let method = method.to_ascii_uppercase();
        let mut resp = self.with_retries(url, "request", |c, url| {
            let mut req = ureq::http::Request::builder()
                .method(method.as_str())
                .uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = &c.auth {
                req = req.header("Authorization", a.as_str());
            }
            let req = req
                .body(body.map(<[u8]>::to_vec).unwrap_or_default())
                .map_err(ureq::Error::Http)?;
            c.agent.run(req)
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let mut body = Vec::new();
        if method != "HEAD" {
            resp.body_mut()
                .with_config()
                .limit(1 << 30)
                .reader()
                .read_to_end(&mut body)?;
        }
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Creates the stream (PUT, a JSON stream): [`Created::New`] if this call created it,
    /// [`Created::Existed`] if it was there already.
    pub fn create(&mut self, url: &str) -> Result<Created> {
        let mut resp = self.with_retries(url, "create", |c, url| {
            c.authorized(c.agent.put(url))
                .header("Content-Type", "application/json")
                .send_empty()
        })?;
        match resp.status().as_u16() {
            s @ (200 | 201 | 204) => {
                drain(&mut resp);
                Ok(if s == 201 {
                    Created::New
                } else {
                    Created::Existed
                })
            }
            409 => bail!(
                "stream {} exists with another configuration (not a JSON stream, or closed): {}",
                without_credentials(url),
                body_snippet(&mut resp)
            ),
            s => bail!(
                "creating stream {} failed with HTTP {s}: {}",
                without_credentials(url),
                body_snippet(&mut resp)
            ),
        }
    }

    /// Reads the whole stream from the start, calling `on_key` for each event's
    /// `metadata.source_key`. Returns `None` if the stream does not exist, else the event count.
    pub fn read_keys(&mut self, url: &str, on_key: &mut dyn FnMut(&str)) -> Result<Option<u64>> {
        let mut offset = "-1".to_string();
        let mut total = 0u64;
        let sep = if url.contains('?') { '&' } else { '?' };
        loop {
            let page = format!("{url}{sep}offset={offset}");
            let mut resp = self.with_retries(&page, "read", |c, page| {
                c.authorized(c.agent.get(page))
                    .header("Accept", "application/json")
                    .call()
            })?;
            match resp.status().as_u16() {
                200 => {}
                404 => {
                    // Read to the end so the connection goes back to the pool.
                    drain(&mut resp);
                    return Ok(None);
                }
                s => bail!(
                    "reading stream {} failed with HTTP {s}: {}",
                    without_credentials(url),
                    body_snippet(&mut resp)
                ),
            }
            let up_to_date = header_is_true(&resp, "Stream-Up-To-Date");
            let next = header_text(&resp, "Stream-Next-Offset");
            let reader = BufReader::with_capacity(64 * 1024, resp.into_body().into_reader());
            let n = source_keys(reader, on_key).with_context(|| {
                format!(
                    "reading stream {} at offset {offset}",
                    without_credentials(url)
                )
            })?;
            total += n;
            match next {
                Some(next) if !up_to_date && n > 0 && next != offset => offset = next,
                _ => return Ok(Some(total)),
            }
        }
    }

    /// Runs `send` until it gets an answer that is not transient, or the retry budget is spent.
    /// A 307/308 (or, for reads, 301/302/303) is followed to its `Location`, sending the same
    /// request again there: a follower of an Ursula cluster redirects writes to the leader.
    fn with_retries(
        &mut self,
        url: &str,
        what: &str,
        send: impl FnMut(&Self, &str) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        self.with_retries_as(url, what, LostAnswer::Retry, send)
    }

    /// [`Self::with_retries`]; with [`LostAnswer::Report`], a network failure after which the
    /// request may have reached the server is not retried but returned as an [`Ambiguous`] error.
    ///
    /// Every request is retried at most `max_retries` times (then its session fails); failures
    /// that are the server's (no connection, 5xx, a redirect with no leader to follow) are also
    /// bounded by the run's shared budget ([`Health`]), which stops the whole run. When the run
    /// stops, this returns a [`Halted`] error without sending again.
    fn with_retries_as(
        &mut self,
        url: &str,
        what: &str,
        lost_answer: LostAnswer,
        mut send: impl FnMut(&Self, &str) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>> {
        let (stream, query) = split_query(url);
        let asked = Asked {
            what,
            // What messages name: the URL asked for, without its password or token.
            shown: without_credentials(url),
            stream,
            lost_answer,
        };
        let mut target = self.leader_for(stream, query, url);
        let mut retry = 0u32;
        let mut hops = 0;
        loop {
            if let Some(halt) = self.health.halted() {
                return Err(Halted(halt).into());
            }
            let sent = send(self, &target);
            let failure = match self.attempt(&asked, sent, &target, hops)? {
                Attempt::Answered(resp) => {
                    self.remember_leader(stream, &target);
                    return Ok(resp);
                }
                Attempt::Redirected(next) => {
                    hops += 1;
                    target = next;
                    continue;
                }
                Attempt::Failed(failure) => failure,
            };
            self.wait_to_retry(&asked, &failure, retry)?;
            retry += 1;
            self.retries += 1;
            hops = 0;
            // Start over at the address asked for: a leader that moved redirects afresh.
            self.forget_leader(stream);
            target = url.to_string();
        }
    }

    /// What one attempt at `target` came to. Errors end the request: a failure that retrying
    /// cannot help, or an append's lost answer under [`LostAnswer::Report`].
    fn attempt(
        &mut self,
        asked: &Asked<'_>,
        sent: Result<Response<Body>, ureq::Error>,
        target: &str,
        hops: u32,
    ) -> Result<Attempt> {
        let failure = |why: String, retry_after: Option<Duration>, server: bool| {
            Ok(Attempt::Failed(Failure {
                why,
                retry_after,
                server,
            }))
        };
        match sent {
            Ok(mut resp) if is_redirect(resp.status().as_u16()) => {
                let status = resp.status().as_u16();
                let next =
                    header_text(&resp, "Location").and_then(|l| resolve_location(target, &l));
                drain(&mut resp);
                match next {
                    Some(next) if hops < MAX_REDIRECTS => Ok(Attempt::Redirected(next)),
                    // No leader to follow yet (an election), or nodes sending each other
                    // round: wait and ask again.
                    _ => failure(
                        format!("HTTP {status} with no leader to follow"),
                        None,
                        true,
                    ),
                }
            }
            Ok(resp) if !is_transient_status(resp.status().as_u16()) => {
                self.health.answered();
                Ok(Attempt::Answered(resp))
            }
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = header_text(&resp, "Retry-After")
                    .and_then(|v| parse_retry_after(&v, SystemTime::now()));
                drain(&mut resp);
                let server = status >= 500;
                if !server {
                    self.health.answered();
                }
                failure(format!("HTTP {status}"), retry_after, server)
            }
            Err(e) if asked.lost_answer == LostAnswer::Report && may_have_arrived(&e) => {
                self.retries += 1;
                self.forget_leader(asked.stream);
                let e = error_text(&e);
                tonbo_core::note!(
                    "tonbo-post: {} {}: {e}; the server may have stored it, checking the stream before sending again",
                    asked.what,
                    asked.shown
                );
                Err(Ambiguous(e).into())
            }
            Err(e) if is_transient_error(&e) => failure(error_text(&e), None, true),
            Err(e) => Err(anyhow!(
                "cannot {} {}: {}",
                asked.what,
                asked.shown,
                error_text(&e)
            )),
        }
    }

    /// Waits before retry number `retry` of a failed request; an error when the request may not
    /// be retried (its retries are spent, or the run stops).
    fn wait_to_retry(&mut self, asked: &Asked<'_>, failure: &Failure, retry: u32) -> Result<()> {
        let Failure {
            why,
            retry_after,
            server,
        } = failure;
        if retry >= self.retry.max_retries {
            bail!(
                "cannot {} {}: {why}, still failing after {} retries",
                asked.what,
                asked.shown,
                self.retry.max_retries
            );
        }
        let mut wait = self.retry.delay(retry, *retry_after);
        if *server {
            match self.health.may_retry(why, wait) {
                Some(w) => wait = w,
                None => return Err(Halted(Halt::ServerDown).into()),
            }
        }
        // Server failures come from every worker at once: noted at most once a second.
        if !server || self.health.worth_noting() {
            tonbo_core::note!(
                "tonbo-post: {} {}: {why}; retry {}/{} in {:.1}s",
                asked.what,
                asked.shown,
                retry + 1,
                self.retry.max_retries,
                wait.as_secs_f64()
            );
        }
        if !self.health.sleep(wait) {
            let halt = match (self.health.halted(), self.health.signal()) {
                (Some(h), _) => h,
                (None, Some(sig)) => Halt::Signal(sig),
                (None, None) => Halt::ServerDown,
            };
            return Err(Halted(halt).into());
        }
        Ok(())
    }

    /// Where to send a request for `stream`: the leader that answered last, if any.
    fn leader_for(&self, stream: &str, query: &str, url: &str) -> String {
        match self
            .leaders
            .lock()
            .ok()
            .and_then(|l| l.get(stream).cloned())
        {
            Some(leader) => format!("{leader}{query}"),
            None => url.to_string(),
        }
    }

    fn remember_leader(&self, stream: &str, target: &str) {
        let (at, _) = split_query(target);
        if let Ok(mut l) = self.leaders.lock() {
            if at == stream {
                l.remove(stream);
            } else {
                l.insert(stream.to_string(), at.to_string());
            }
        }
    }

    fn forget_leader(&self, stream: &str) {
        if let Ok(mut l) = self.leaders.lock() {
            l.remove(stream);
        }
    }
}

/// ureq's resolver, except for a host that is an IP address, whose socket address is taken as
/// it is. ureq resolves every request's host before it looks for a kept-alive connection, and
/// with a timeout (tonbo-post always sets one) does so on a thread started for the purpose: a
/// thread started and ended for every request, 5% of tonbo-post's CPU against a local server.
#[derive(Debug, Default)]
struct IpFirst(DefaultResolver);

impl Resolver for IpFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = ip_socket_addr(uri) {
            let mut addrs = self.empty();
            addrs.push(addr);
            return Ok(addrs);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The socket address of a URL whose host is an IP address (`127.0.0.1`, `[::1]`), with the
/// scheme's port when it names none.
fn ip_socket_addr(uri: &ureq::http::Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = match (authority.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("http")) => 80,
        (None, Some("https")) => 443,
        (None, _) => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A URL and its query (with the `?`), apart.
fn split_query(url: &str) -> (&str, &str) {
    match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    }
}

const MAX_REDIRECTS: u32 = 5;

/// The `Stream-Seq` of a batch written at stream position `at`: zero-padded, because the
/// server compares them byte by byte, and strictly increasing with the position, so that of two
/// writers appending at the same position only the first is taken (see [`Appended::SeqConflict`]).
pub fn stream_seq(at: u64) -> String {
    format!("{at:020}")
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The absolute URL a `Location` points to, seen from `from`. A redirect from https to plain
/// http is refused (it would carry the key in clear text).
fn resolve_location(from: &str, location: &str) -> Option<String> {
    let next = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') {
        let scheme_end = from.find("://")? + 3;
        let authority_end = from[scheme_end..]
            .find('/')
            .map_or(from.len(), |i| scheme_end + i);
        format!("{}{location}", &from[..authority_end])
    } else {
        return None;
    };
    if from.starts_with("https://") && next.starts_with("http://") {
        return None;
    }
    Some(next)
}

/// A ureq error as messages may show it: the kinds that carry the URL (with its password) are
/// named without it.
fn error_text(e: &ureq::Error) -> String {
    match e {
        ureq::Error::BadUri(why) if why.ends_with("is missing scheme") => {
            "bad uri: no scheme (http:// or https://)".into()
        }
        ureq::Error::BadUri(why) if why.ends_with("is missing host") => "bad uri: no host".into(),
        ureq::Error::BadUri(why) if why.starts_with("unknown scheme") => format!("bad uri: {why}"),
        ureq::Error::BadUri(_) => "bad uri".into(),
        ureq::Error::RequireHttpsOnly(_) => "configured for https only".into(),
        e => e.to_string(),
    }
}

fn is_transient_error(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// A failure after which the request may have reached the server (not one of connecting).
fn may_have_arrived(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

fn header_is_true(resp: &Response<Body>, name: &str) -> bool {
    header_text(resp, name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

fn header_text(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What the answer to an append says ([`Appended`]).
fn appended(resp: &mut Response<Body>) -> Appended {
    let status = resp.status().as_u16();
    let header_u64 =
        |name: &str| header_text(resp, name).and_then(|v| v.trim().parse::<u64>().ok());
    match status {
        200 | 201 => Appended::New,
        204 => Appended::Duplicate,
        404 => Appended::NotFound,
        403 => Appended::StaleEpoch {
            server_epoch: header_u64("Producer-Epoch"),
        },
        409 if header_is_true(resp, "Stream-Closed") => Appended::Closed,
        409 if resp.headers().contains_key("Producer-Expected-Seq") => Appended::Gap {
            expected: header_u64("Producer-Expected-Seq"),
            received: header_u64("Producer-Received-Seq"),
        },
        409 if resp.headers().contains_key("Stream-Last-Seq") => Appended::SeqConflict {
            last: header_text(resp, "Stream-Last-Seq"),
        },
        409 => {
            // The reference server names a Stream-Seq conflict only in its body; a stale
            // epoch answered 409 instead of 403 (some Ursula builds) by its error code.
            let server_epoch = header_u64("Producer-Epoch");
            let detail = body_snippet(resp);
            if detail.contains("PRODUCER_EPOCH_STALE") {
                Appended::StaleEpoch { server_epoch }
            } else if detail.starts_with("Sequence conflict") {
                Appended::SeqConflict {
                    last: detail.split_once("<= ").map(|(_, l)| l.to_string()),
                }
            } else {
                Appended::Refused { status, detail }
            }
        }
        _ => Appended::Refused {
            status,
            detail: body_snippet(resp),
        },
    }
}

/// The start of an error body, for messages; never more than a few hundred bytes.
fn body_snippet(resp: &mut Response<Body>) -> String {
    let mut buf = Vec::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(16 * 1024)
        .read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Reads what is left of a small response so the connection can be reused.
fn drain(resp: &mut Response<Body>) {
    let _ = std::io::copy(
        &mut resp.body_mut().as_reader().take(1 << 20),
        &mut std::io::sink(),
    );
}

#[cfg(test)]
mod tests {
    use super::resolve_location;

    #[test]
    fn ip_hosts_need_no_lookup() {
        let addr = |url: &str| super::ip_socket_addr(&url.parse().unwrap());
        assert_eq!(
            addr("http://127.0.0.1:4437/v1/x"),
            Some("127.0.0.1:4437".parse().unwrap())
        );
        assert_eq!(addr("https://[::1]/x"), Some("[::1]:443".parse().unwrap()));
        assert_eq!(
            addr("http://10.0.0.2/x"),
            Some("10.0.0.2:80".parse().unwrap())
        );
        assert_eq!(addr("http://localhost:4437/x"), None);
        assert_eq!(addr("https://sessions.tonbo.dev/v1"), None);
    }

    #[test]
    fn locations() {
        assert_eq!(
            resolve_location(
                "http://127.0.0.1:4451/sessions/a",
                "http://127.0.0.1:4452/sessions/a"
            )
            .as_deref(),
            Some("http://127.0.0.1:4452/sessions/a")
        );
        assert_eq!(
            resolve_location("http://h:1/x/y?offset=-1", "/z/y?offset=-1").as_deref(),
            Some("http://h:1/z/y?offset=-1")
        );
        assert_eq!(resolve_location("https://h/x", "http://h/x"), None);
        assert_eq!(resolve_location("http://h/x", "relative"), None);
    }
}
