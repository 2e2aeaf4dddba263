//! `event_msg` lines, by their payload's `type`: usage, turns starting and ending, aborts,
//! rollbacks, errors. Those repeating response items (messages, reasoning, the extended
//! `*_end` events, `item_completed`) are counted, never emitted.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::{error_event, model_request_end, turn_end_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::envelope::SKIPPED;
use super::{CodexMapper, Line};

/// An `event_msg` payload: only what the mapping reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Msg<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    info: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    turn_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    duration_ms: Option<&'a RawValue>,
    num_turns: Option<u64>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    message: Option<Cow<'a, str>>,
}

/// One request's token usage (`last_token_usage`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Usage {
    input_tokens: u64,
    cached_input_tokens: u64,
    output_tokens: u64,
    reasoning_output_tokens: u64,
    total_tokens: u64,
}

impl CodexMapper {
    pub(super) fn map_event_msg(
        &mut self,
        payload: &RawValue,
        line: &mut Line,
    ) -> Result<(), MapError> {
        let m: Msg = serde_json::from_str(payload.get()).unwrap_or_default();
        if let Some(turn) = m.turn_id.as_deref() {
            self.state.turn_id = Some(turn.to_string());
        }
        let (ev, kind) = match m.kind.as_deref().unwrap_or("") {
            "token_count" => return self.token_count(m.info, line),
            "task_started" | "turn_started" => {
                (EventBuf::new("session.status_running"), "turn_started")
            }
            "task_complete" | "turn_complete" => {
                // `last_agent_message` repeats the assistant message: not emitted.
                let mut ev = turn_end_event();
                if let Some(d) = m.duration_ms {
                    ev.meta_raw("duration_ms", d.get());
                }
                (ev, "turn_complete")
            }
            "turn_aborted" => {
                let mut ev = EventBuf::new("user.interrupt");
                ev.meta_opt("reason", m.reason.as_deref());
                (ev, "turn_aborted")
            }
            "thread_rolled_back" => {
                let mut ev = EventBuf::new("codex.thread_rolled_back");
                ev.raw("num_turns", &m.num_turns.unwrap_or(0).to_string());
                (ev, "rollback")
            }
            "error" => {
                let message = m.message.as_deref().unwrap_or("");
                (error_event("unknown_error", message, "terminal"), "error")
            }
            "item_completed" => {
                self.item_completed(payload);
                return Ok(());
            }
            other if SKIPPED.contains(&other) => {
                self.skip(other);
                return Ok(());
            }
            other => {
                self.unknown(&format!("event_msg:{other}"));
                return Ok(());
            }
        };
        self.emit(ev, Some(kind), line)
    }

    /// `token_count`: one request's usage (`last_token_usage`, never the cumulative total); a
    /// line repeating the previous cumulative total is a duplicate.
    fn token_count(&mut self, info: Option<&RawValue>, line: &mut Line) -> Result<(), MapError> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Info<'a> {
            #[serde(borrow)]
            total_token_usage: Option<&'a RawValue>,
            last_token_usage: Option<Usage>,
        }
        let Some(info) = info.filter(|i| i.get() != "null") else {
            self.skip("token_count without info");
            return Ok(());
        };
        let info: Info = serde_json::from_str(info.get()).unwrap_or_default();
        // The cumulative total repeats on duplicate lines: count each request once.
        let total = info.total_token_usage.map(|t| t.get().to_string());
        if total.is_some() && total == self.state.last_total {
            self.skip("token_count repeated");
            return Ok(());
        }
        self.state.last_total = total;
        let Some(u) = info.last_token_usage else {
            self.skip("token_count without last_token_usage");
            return Ok(());
        };
        let usage = format!(
            "{{\"input_tokens\":{},\"output_tokens\":{},\"cache_read_input_tokens\":{},\"cache_creation_input_tokens\":0}}",
            u.input_tokens.saturating_sub(u.cached_input_tokens),
            u.output_tokens,
            u.cached_input_tokens
        );
        let mut ev = model_request_end(None, &usage);
        ev.meta_raw(
            "codex_usage",
            &format!(
                "{{\"input_tokens\":{},\"cached_input_tokens\":{},\"output_tokens\":{},\"reasoning_output_tokens\":{},\"total_tokens\":{}}}",
                u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_output_tokens, u.total_tokens
            ),
        );
        self.emit(ev, Some("token_count"), line)
    }

    /// `item_completed`: every turn item has its response item, but a plan and a sleep, whose
    /// text is in the assistant's message or is no content: counted by the item's type.
    fn item_completed(&mut self, payload: &RawValue) {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Completed<'a> {
            #[serde(borrow)]
            item: Option<Tagged<'a>>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Tagged<'a> {
            #[serde(
                rename = "type",
                borrow,
                default,
                deserialize_with = "tonbo_core::raw::opt_str"
            )]
            kind: Option<Cow<'a, str>>,
        }
        let c: Completed = serde_json::from_str(payload.get()).unwrap_or_default();
        let tag = c.item.and_then(|i| i.kind).unwrap_or_default();
        self.skip(&format!("item_completed:{tag}"));
    }
}
