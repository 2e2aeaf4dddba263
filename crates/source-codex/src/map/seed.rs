//! The homegrown seed shape's messages, `{id, messages: [{role, content | name, args}]}`: a
//! message, a tool call (`name`, `args`), or the result of the latest open call (`role: tool`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tonbo_core::event::{text_content, tool_use_event, EventBuf};
use tonbo_core::mapping::MapError;

use super::content::as_str;
use super::{CodexMapper, Line};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Seed<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    args: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    timestamp: Option<Cow<'a, str>>,
}

impl CodexMapper {
    pub(super) fn map_seed(&mut self, raw: &RawValue, line: &mut Line) -> Result<(), MapError> {
        let m: Seed = serde_json::from_str(raw.get())
            .map_err(|e| MapError::Reject(format!("not a message: {e}")))?;
        line.timestamp = m.timestamp.as_deref().map(str::to_string);
        if let Some(ts) = &line.timestamp {
            self.state.last_timestamp.clone_from(ts);
        }
        let content = m.content.map(|c| match as_str(c) {
            Some(_) => text_content(c.get()),
            None => c.get().to_string(),
        });
        let (event, kind, author) = match (m.role.as_deref().unwrap_or(""), &m.name, content) {
            (_, Some(name), _) => return self.seed_call(name, m.args, line),
            ("tool", _, Some(content)) => {
                let id = self.state.seed_open_calls.pop().unwrap_or_default();
                return self.result_event(&id, &content, false, line);
            }
            ("user", _, Some(content)) => (("user.message", content), "prompt", Some("human")),
            ("assistant" | "agent", _, Some(content)) => (("agent.message", content), "text", None),
            ("system" | "developer", _, Some(content)) => {
                (("system.message", content), "system", None)
            }
            (role, _, _) => {
                self.unknown(&format!("seed:{role}"));
                return Ok(());
            }
        };
        let mut ev = EventBuf::new(event.0);
        ev.raw("content", &event.1);
        ev.meta_opt("author", author);
        self.emit(ev, Some(kind), line)
    }

    /// A seed tool call, open until the next `tool` message; its id is the record's place.
    fn seed_call(
        &mut self,
        name: &str,
        args: Option<&RawValue>,
        line: &mut Line,
    ) -> Result<(), MapError> {
        let id = format!("{}#call", line.key_base);
        self.state.seed_open_calls.push(id.clone());
        self.state.calls.insert(id.clone(), None);
        let input = match args {
            Some(a) if a.get().starts_with('{') => a.get().to_string(),
            Some(a) => format!("{{\"args\":{}}}", a.get()),
            None => "{}".into(),
        };
        let ev = tool_use_event(name, None, &input, &id);
        self.emit(ev, Some("tool_use"), line)
    }
}
