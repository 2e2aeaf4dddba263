//! The shape of a Qwen Code `ChatRecord` as far as the mapping reads it (FORMAT.md, "Records").
//! Strings are borrowed from the line; text, arguments and results stay raw JSON, spliced into
//! events unchanged.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChatRecord<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub uuid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub parent_uuid: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub subtype: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub cwd: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub git_branch: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub provenance: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub agent_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub agent_name: Option<Cow<'a, str>>,
    pub is_sidechain: Option<bool>,
    #[serde(borrow)]
    pub message: Option<Content<'a>>,
    #[serde(borrow)]
    pub usage_metadata: Option<&'a RawValue>,
    #[serde(borrow)]
    pub tool_call_result: Option<ToolCallResult<'a>>,
    #[serde(borrow)]
    pub system_payload: Option<&'a RawValue>,
    /// On the records `/branch` copied from the session it forked.
    #[serde(borrow)]
    pub forked_from: Option<ForkedFrom<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkedFrom<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub session_id: Option<Cow<'a, str>>,
}

/// `@google/genai` `Content`: a role and its parts.
#[derive(Deserialize, Default)]
pub struct Content<'a> {
    #[serde(default, borrow)]
    pub parts: Vec<Part<'a>>,
}

/// One `@google/genai` `Part`; which field it has says what it is.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Part<'a> {
    /// Raw JSON string.
    #[serde(borrow)]
    pub text: Option<&'a RawValue>,
    pub thought: Option<bool>,
    #[serde(borrow)]
    pub function_call: Option<FunctionCall<'a>>,
    #[serde(borrow)]
    pub function_response: Option<FunctionResponse<'a>>,
    #[serde(borrow)]
    pub inline_data: Option<InlineData<'a>>,
}

#[derive(Deserialize)]
pub struct FunctionCall<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub args: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct FunctionResponse<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub response: Option<Response<'a>>,
}

/// A function response's `response`: Qwen Code's tools put their text in `output`, a failure
/// in `error`.
#[derive(Deserialize)]
pub struct Response<'a> {
    #[serde(borrow)]
    pub output: Option<&'a RawValue>,
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineData<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub mime_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
}

/// The UI's view of a tool call's result (`toolCallResult`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub call_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub status: Option<Cow<'a, str>>,
}

/// The `systemPayload` fields the mapping reads, whichever subtype holds them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Payload<'a> {
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub custom_title: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub title_source: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub raw_command: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub phase: Option<Cow<'a, str>>,
    /// Raw JSON string.
    #[serde(borrow)]
    pub display_text: Option<&'a RawValue>,
    #[serde(borrow)]
    pub info: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub parent_session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub ui_event: Option<UiEvent<'a>>,
}

/// A `ui_telemetry` record's event: Qwen Code's telemetry event with its `event.name`
/// (`qwen-code.api_error` carries `error`, `error_type`, `status_code`, `model`).
#[derive(Deserialize, Default)]
pub struct UiEvent<'a> {
    #[serde(
        rename = "event.name",
        borrow,
        default,
        deserialize_with = "tonbo_core::raw::opt_str"
    )]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub error: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "tonbo_core::raw::opt_str")]
    pub error_type: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status_code: Option<&'a RawValue>,
}

impl<'a> Payload<'a> {
    /// The `systemPayload` of `r`, as far as it has these fields (none when it has none).
    pub fn of(r: &ChatRecord<'a>) -> Payload<'a> {
        r.system_payload
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default()
    }
}

/// Whether a raw JSON value is `null`.
pub fn is_null(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| r.get() == "null")
}
