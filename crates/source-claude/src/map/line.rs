//! The typed Claude Code line the mapping reads: the fields it uses, with large values kept as
//! raw JSON to be copied into events unchanged.

use std::borrow::Cow;
use std::cell::Cell;

use serde::Deserialize;
use serde_json::value::RawValue;
pub(super) use tonbo_core::event::{as_str, is_str};
use tonbo_core::mapping::MapError;

use super::assistant::KNOWN_BLOCKS;
use super::user::Origin;

/// A transcript line: its envelope (FORMAT.md, "The line envelope"). Only what the mapping
/// reads; large values stay raw.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ClaudeLine<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) subtype: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) uuid: Option<Cow<'a, str>>,
    #[serde(
        rename = "parentUuid",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) parent_uuid: Option<Cow<'a, str>>,
    #[serde(
        rename = "logicalParentUuid",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) logical_parent_uuid: Option<Cow<'a, str>>,
    #[serde(
        rename = "sessionId",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) cwd: Option<Cow<'a, str>>,
    #[serde(
        rename = "gitBranch",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) git_branch: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) version: Option<Cow<'a, str>>,
    #[serde(rename = "isSidechain")]
    pub(super) is_sidechain: Option<bool>,
    #[serde(
        rename = "agentId",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) agent_id: Option<Cow<'a, str>>,
    #[serde(rename = "isMeta")]
    pub(super) is_meta: Option<bool>,
    #[serde(rename = "isCompactSummary")]
    pub(super) is_compact_summary: Option<bool>,
    #[serde(
        rename = "requestId",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) request_id: Option<Cow<'a, str>>,
    #[serde(rename = "isApiErrorMessage")]
    pub(super) is_api_error_message: Option<bool>,
    #[serde(rename = "toolUseResult", borrow)]
    pub(super) tool_use_result: Option<&'a RawValue>,
    #[serde(
        rename = "sourceToolAssistantUUID",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) source_tool_assistant_uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) message: Option<Message<'a>>,
    #[serde(borrow)]
    pub(super) content: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) level: Option<Cow<'a, str>>,
    #[serde(rename = "durationMs", borrow)]
    pub(super) duration_ms: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) error: Option<&'a RawValue>,
    #[serde(rename = "retryAttempt")]
    pub(super) retry_attempt: Option<u64>,
    #[serde(rename = "maxRetries")]
    pub(super) max_retries: Option<u64>,
    #[serde(rename = "compactMetadata", borrow)]
    pub(super) compact_metadata: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) summary: Option<Cow<'a, str>>,
    #[serde(
        rename = "leafUuid",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) leaf_uuid: Option<Cow<'a, str>>,
    #[serde(
        rename = "aiTitle",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) ai_title: Option<Cow<'a, str>>,
    #[serde(
        rename = "customTitle",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) custom_title: Option<Cow<'a, str>>,
    #[serde(
        rename = "agentName",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) agent_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) title: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) attachment: Option<Attachment<'a>>,
    /// Who or what a newer `user` line came from (`origin.kind`: `human`, `peer`, ...).
    #[serde(borrow)]
    pub(super) origin: Option<Origin<'a>>,
    #[serde(
        rename = "promptSource",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) prompt_source: Option<Cow<'a, str>>,
    #[serde(rename = "scheduledTaskId", borrow)]
    pub(super) scheduled_task_id: Option<&'a RawValue>,
}

/// The Messages API object in `message`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Message<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) content: Option<Content<'a>>,
    #[serde(borrow)]
    pub(super) usage: Option<&'a RawValue>,
}

/// `message.content`: its blocks typed in the line's own pass, or its raw JSON.
///
/// Content is a third of a line's bytes. Read raw and then typed, it was scanned twice; typed
/// in the same pass, once. The blocks' raw text is gone then, so a line whose mapping keeps a
/// block whole (a prompt's blocks, text beside results, an unknown block), or whose content is
/// no array of blocks (a string), is read again with the content raw: [`ClaudeLine::parse`].
pub(super) enum Content<'a> {
    Typed(Vec<Block<'a>>),
    Raw(&'a RawValue),
    /// No array (a string, most often), met by the typed read: to be read raw.
    Other,
}

impl<'a> Content<'a> {
    /// The raw JSON, when it was read raw.
    pub(super) fn raw(&self) -> Option<&'a RawValue> {
        match self {
            Content::Raw(r) => Some(r),
            Content::Typed(_) | Content::Other => None,
        }
    }
}

thread_local! {
    /// Whether [`Content`] is read raw (the second read of [`ClaudeLine::parse`]).
    static RAW_CONTENT: Cell<bool> = const { Cell::new(false) };
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if RAW_CONTENT.get() {
            <&RawValue>::deserialize(d).map(Content::Raw)
        } else {
            // Any value but an array is taken as `Other`, not refused: an error would cost
            // its message (which quotes the string) and the rest of the line's read.
            d.deserialize_any(TypedContent)
        }
    }
}

/// Reads `message.content` as blocks, or anything else as [`Content::Other`].
struct TypedContent;

impl<'de> serde::de::Visitor<'de> for TypedContent {
    type Value = Content<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("message content")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(b) = seq.next_element()? {
            blocks.push(b);
        }
        Ok(Content::Typed(blocks))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Content::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Content::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Content::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Content::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Content::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Content::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Content::Other)
    }
}

impl<'a> ClaudeLine<'a> {
    /// Reads a line: content typed in the same pass where the mapping needs no block whole,
    /// else (and when that read fails: string content, a block of odd shape) read again with
    /// the content raw, which is what the mapping then works from.
    pub(super) fn parse(text: &'a str) -> serde_json::Result<ClaudeLine<'a>> {
        if let Ok(line) = serde_json::from_str::<ClaudeLine>(text) {
            if !line.needs_raw_content() {
                return Ok(line);
            }
        }
        RAW_CONTENT.set(true);
        let line = serde_json::from_str(text);
        RAW_CONTENT.set(false);
        line
    }

    /// Whether the mapping of this line keeps a content block whole, which typed blocks cannot
    /// give: an `assistant` line with a block of a type not in [`KNOWN_BLOCKS`], a `user` line
    /// that is a prompt or has text beside its results; lines of other types (none has
    /// content), to be safe.
    fn needs_raw_content(&self) -> bool {
        let blocks = match self.message.as_ref().and_then(|m| m.content.as_ref()) {
            Some(Content::Typed(blocks)) => blocks,
            Some(Content::Other) => return true,
            _ => return false,
        };
        match self.kind.as_deref() {
            Some("assistant") => blocks.iter().any(|b| !KNOWN_BLOCKS.contains(&b.kind())),
            Some("user") => {
                let results = blocks.iter().any(|b| b.kind() == "tool_result")
                    || self.tool_use_result.is_some()
                    || self.source_tool_assistant_uuid.is_some();
                !results || blocks.iter().any(|b| b.kind() != "tool_result")
            }
            _ => true,
        }
    }
}

/// One content block; values that are copied through stay raw.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Block<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) text: Option<&'a RawValue>,
    #[serde(borrow)]
    pub(super) thinking: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) input: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub(super) tool_use_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) content: Option<&'a RawValue>,
    pub(super) is_error: Option<bool>,
}

impl Block<'_> {
    /// The block's `type`; empty when it has none.
    pub(super) fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("")
    }
}

/// An `attachment` line's `attachment`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Attachment<'a> {
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) prompt: Option<&'a RawValue>,
    /// `queued_command`: `prompt`, or `task-notification`.
    #[serde(
        rename = "commandMode",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub(super) command_mode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) origin: Option<Origin<'a>>,
    #[serde(rename = "isMeta")]
    pub(super) is_meta: Option<bool>,
}

/// `message.usage`, as far as the span needs it.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Usage {
    pub(super) output_tokens: Option<u64>,
}

/// A line's content blocks, raw and typed (a block that is no object reads as one of no
/// type); an error when the content is no array.
pub(super) fn raw_and_typed_blocks(
    content: &RawValue,
) -> Result<(Vec<&RawValue>, Vec<Block<'_>>), MapError> {
    let raw: Vec<&RawValue> = serde_json::from_str(content.get())
        .map_err(|_| reject("message.content is neither a string nor an array"))?;
    let parsed = raw
        .iter()
        .map(|b| serde_json::from_str(b.get()).unwrap_or_default())
        .collect();
    Ok((raw, parsed))
}

/// A rejection of the record at hand.
pub(super) fn reject(msg: impl Into<String>) -> MapError {
    MapError::Reject(msg.into())
}
