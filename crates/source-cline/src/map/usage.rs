//! Usage as every source writes it (`model_usage` of `span.model_request_end`: input tokens
//! without the cached ones, output, cache reads, cache writes) from the three places the family
//! keeps it: Cline's message `metrics`, the SDK's message `metrics`, and the UI's
//! `api_req_started` request info. Each returns the usage and the cost as written.

use serde::Deserialize;
use serde_json::value::RawValue;

/// An `api_req_started` UI message's request info (`ClineApiReqInfo`) as the usage every
/// source writes: `tokensIn` (Anthropic's protocol: without the cached tokens; Roo Code's
/// `apiProtocol: "openai"`: with them), `tokensOut`, `cacheReads`, `cacheWrites`, and the cost.
pub(crate) fn request_usage(text: &str) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ReqInfo<'a> {
        tokens_in: Option<u64>,
        tokens_out: Option<u64>,
        cache_reads: Option<u64>,
        cache_writes: Option<u64>,
        #[serde(borrow)]
        cost: Option<&'a RawValue>,
        api_protocol: Option<String>,
    }
    let r: ReqInfo = serde_json::from_str(text).ok()?;
    r.tokens_in.or(r.tokens_out)?;
    let cached = r.cache_reads.unwrap_or(0);
    let input = r.tokens_in.unwrap_or(0);
    let input = match r.api_protocol.as_deref() {
        Some("openai") => input.saturating_sub(cached),
        _ => input,
    };
    let usage = usage_json(
        input,
        r.tokens_out.unwrap_or(0),
        cached,
        r.cache_writes.unwrap_or(0),
    );
    Some((usage, r.cost.map(|c| c.get().to_string())))
}

/// Newer Cline's per-message `metrics` (`{tokens: {prompt, completion, cached}, cost}`) as the
/// usage every source writes, and the cost as written.
pub(crate) fn usage_of(raw: &RawValue) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    struct Tokens {
        prompt: Option<u64>,
        completion: Option<u64>,
        cached: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Metrics<'a> {
        tokens: Option<Tokens>,
        #[serde(borrow)]
        cost: Option<&'a RawValue>,
    }
    let m: Metrics = serde_json::from_str(raw.get()).ok()?;
    let Some(t) = m.tokens else {
        return sdk_usage_of(raw);
    };
    // `prompt` counts every input token, `cached` the part read from the cache; the usage of
    // every source counts them apart, as Anthropic's API does.
    let cached = t.cached.unwrap_or(0);
    let usage = usage_json(
        t.prompt.unwrap_or(0).saturating_sub(cached),
        t.completion.unwrap_or(0),
        cached,
        0,
    );
    Some((usage, m.cost.map(|c| c.get().to_string())))
}

/// The SDK's `metrics` (`{inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens,
/// cost}`), taken as written.
fn sdk_usage_of(raw: &RawValue) -> Option<(String, Option<String>)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metrics<'a> {
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        cache_read_tokens: Option<u64>,
        cache_write_tokens: Option<u64>,
        #[serde(borrow)]
        cost: Option<&'a RawValue>,
    }
    let m: Metrics = serde_json::from_str(raw.get()).ok()?;
    m.input_tokens.or(m.output_tokens)?;
    let usage = usage_json(
        m.input_tokens.unwrap_or(0),
        m.output_tokens.unwrap_or(0),
        m.cache_read_tokens.unwrap_or(0),
        m.cache_write_tokens.unwrap_or(0),
    );
    Some((usage, m.cost.map(|c| c.get().to_string())))
}

/// The usage object every source writes, keys in the order serde_json's map writes them
/// (sorted): written directly, not built as a `Value` first.
fn usage_json(input: u64, output: u64, cache_read: u64, cache_write: u64) -> String {
    format!(
        "{{\"cache_creation_input_tokens\":{cache_write},\"cache_read_input_tokens\":{cache_read},\
         \"input_tokens\":{input},\"output_tokens\":{output}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: &str) -> Option<(serde_json::Value, Option<String>)> {
        let raw: &RawValue = serde_json::from_str(json).unwrap();
        usage_of(raw).map(|(u, c)| (serde_json::from_str(&u).unwrap(), c))
    }

    #[test]
    fn each_shape_gives_input_without_cached_tokens() {
        let (u, cost) =
            usage(r#"{"tokens":{"prompt":2100,"completion":95,"cached":2000},"cost":0.0077}"#)
                .unwrap();
        assert_eq!(u["input_tokens"], 100);
        assert_eq!(u["cache_read_input_tokens"], 2000);
        assert_eq!(cost.as_deref(), Some("0.0077"));
        let (u, _) = usage(
            r#"{"inputTokens":1800,"outputTokens":60,"cacheReadTokens":1500,"cacheWriteTokens":7}"#,
        )
        .unwrap();
        assert_eq!(
            (
                u["input_tokens"].clone(),
                u["cache_creation_input_tokens"].clone()
            ),
            (1800.into(), 7.into())
        );
        assert!(usage(r#"{"cost":1}"#).is_none());
        let (u, _) = request_usage(
            r#"{"tokensIn":5200,"tokensOut":3,"cacheReads":4096,"apiProtocol":"openai"}"#,
        )
        .unwrap();
        assert!(u.contains(r#""input_tokens":1104"#), "{u}");
        let (u, _) = request_usage(r#"{"tokensIn":900,"cacheReads":100}"#).unwrap();
        assert!(u.contains(r#""input_tokens":900"#), "{u}");
        assert!(request_usage(r#"{"request":"hi"}"#).is_none());
    }
}
