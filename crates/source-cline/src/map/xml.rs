//! XML tool calling: before native tool calls, Cline (and Roo Code, Kilo Code) asked the model
//! to write a tool call as XML in its text (`<read_file>\n<path>src/main.rs</path>\n
//! </read_file>`), and sent the result back as text blocks headed `[read_file for
//! 'src/main.rs'] Result:` (FORMAT.md, "Tool calls"). The call is found here so that it maps to
//! an `agent.tool_use` its result is paired with.

/// The tool names of Cline (`ClineDefaultTool`) and Roo Code (`toolNames`): only these tags
/// are calls; other XML in the text (`<thinking>`, code) is text.
const TOOLS: &[&str] = &[
    "access_mcp_resource",
    "act_mode_respond",
    "apply_diff",
    "apply_patch",
    "ask_followup_question",
    "attempt_completion",
    "browser_action",
    "codebase_search",
    "condense",
    "edit_file",
    "execute_command",
    "fetch_instructions",
    "focus_chain",
    "generate_explanation",
    "insert_content",
    "list_code_definition_names",
    "list_files",
    "load_mcp_documentation",
    "new_rule",
    "new_task",
    "plan_mode_respond",
    "read_file",
    "replace_in_file",
    "report_bug",
    "run_slash_command",
    "search_and_replace",
    "search_files",
    "summarize_task",
    "switch_mode",
    "update_todo_list",
    "use_mcp_tool",
    "use_skill",
    "use_subagents",
    "web_fetch",
    "web_search",
    "write_to_file",
];

/// A tool call written as XML: where it is in the text, its name, and its parameters as a
/// JSON object of strings.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct XmlCall {
    pub start: usize,
    pub end: usize,
    pub name: String,
    pub input: String,
}

/// The first XML tool call in `text`, if any.
pub(crate) fn find_call(text: &str) -> Option<XmlCall> {
    let mut from = 0;
    while let Some(i) = text[from..].find('<').map(|i| i + from) {
        let rest = &text[i + 1..];
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        let name = &rest[..name_len];
        if rest[name_len..].starts_with('>') && TOOLS.contains(&name) {
            let close = format!("</{name}>");
            let body_start = i + name_len + 2;
            // An unclosed call (the model stopped mid-call) runs to the end.
            let (body_end, end) = match text[body_start..].find(&close) {
                Some(j) => (body_start + j, body_start + j + close.len()),
                None => (text.len(), text.len()),
            };
            return Some(XmlCall {
                start: i,
                end,
                name: name.to_string(),
                input: params(&text[body_start..body_end]),
            });
        }
        from = i + 1;
    }
    None
}

/// The `<param>value</param>` children of a call's body, as a JSON object.
fn params(body: &str) -> String {
    let mut map = serde_json::Map::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let n = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            .count();
        if n == 0 || !after[n..].starts_with('>') {
            rest = &rest[i + 1..];
            continue;
        }
        let name = &after[..n];
        let close = format!("</{name}>");
        let value_start = n + 1;
        // Free text (a file's content, a diff) may hold tags itself: it runs to its last
        // closing tag, as Cline's own parser reads it; other parameters to their first.
        let free = matches!(name, "content" | "diff" | "result" | "input");
        let found = if free {
            after[value_start..].rfind(&close)
        } else {
            after[value_start..].find(&close)
        };
        let Some(j) = found else {
            rest = &after[value_start..];
            continue;
        };
        let value = &after[value_start..value_start + j];
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        map.insert(
            name.to_string(),
            serde_json::Value::String(value.to_string()),
        );
        rest = &after[value_start + j + close.len()..];
    }
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_a_known_tool_tag_with_its_parameters() {
        let text = "<thinking>\nread it\n</thinking>\n\n<read_file>\n<path>src/main.rs</path>\n</read_file>";
        let call = find_call(text).unwrap();
        assert_eq!(call.name, "read_file");
        assert_eq!(call.input, r#"{"path":"src/main.rs"}"#);
        assert_eq!(
            &text[call.start..call.end],
            "<read_file>\n<path>src/main.rs</path>\n</read_file>"
        );
        assert_eq!(find_call("use <b>bold</b> here"), None);
        let w = find_call("<write_to_file>\n<path>a</path>\n<content>\nx <path>y</path>\n</content>\n</write_to_file>").unwrap();
        assert_eq!(w.input, r#"{"content":"x <path>y</path>","path":"a"}"#);
    }
}
