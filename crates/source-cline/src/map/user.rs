//! Who wrote the text of a `user` message in the API history. The extensions send the model
//! one `user` message per turn, and a person typed only part of it: the extension wraps what a
//! person typed in a tag (FORMAT.md, "Who wrote a user message"), and everything else in the
//! message is the extension's (environment details, tool results, notices, instructions):
//!
//! * `<task>` (Cline; Roo Code before 2026-01), `<user_message>` (Roo Code since; Cline's task
//!   resumption): a prompt;
//! * `<feedback>` (Cline: a denied tool, a rejected completion, too many mistakes): feedback;
//! * `<answer>` (Cline: the answer to a follow-up question): an answer;
//! * a tool result that is a JSON object with a `feedback` string (Roo Code since 2026-01);
//! * `<user_input mode="...">`, `<user_command slash="...">` (the newest Cline's SDK): a prompt,
//!   a slash command.
//!
//! A tag counts only where the extension puts it: at the start of the text, or right after a
//! line ending in `:` (`...the following feedback:`, `New instructions for task continuation:`,
//! `[ask_followup_question for '...'] Result:`) or speaking of feedback (`The user has provided
//! feedback on the results. ...`). The same tag quoted in a file the model read, or in the
//! middle of a sentence, is not a person's message.

use std::borrow::Cow;

/// The tags around what a person typed, and what their text is.
const HUMAN_TAGS: [&str; 6] = [
    "task",
    "user_message",
    "feedback",
    "answer",
    "user_input",
    "user_command",
];

/// A part of a `user` text block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// What a person typed, inside the tag `tag`.
    Human {
        tag: &'static str,
        text: Cow<'a, str>,
    },
    /// A tool's result written as text by XML tool calling: `[tool for 'x'] Result:` and what
    /// follows.
    ToolResult { tool: String, text: &'a str },
    /// The extension's text: its kind (`environment_details`, `task_resumption`, ...).
    Injected { kind: &'static str, text: &'a str },
}

/// The tool a `[name] Result:` / `[name for '...'] Result:` header names.
pub(crate) fn tool_result_header(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('[')?;
    let (inside, after) = rest.split_once(']')?;
    if !after.starts_with(" Result:") {
        return None;
    }
    let name = inside.split(" for ").next()?.trim();
    let tool_like = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    tool_like.then(|| name.to_string())
}

/// The kind of a text the extension wrote, by how it starts.
fn injected_kind(text: &str) -> &'static str {
    let t = text.trim_start();
    const KINDS: [(&str, &str); 10] = [
        ("<environment_details>", "environment_details"),
        ("[TASK RESUMPTION]", "task_resumption"),
        ("[ERROR]", "error_notice"),
        ("[NOTE]", "notice"),
        ("<explicit_instructions", "explicit_instructions"),
        ("<files>", "attached_files"),
        ("<file_content", "attached_files"),
        ("# task_progress", "task_progress"),
        ("[Continue assisting the user!]", "notice"),
        ("<mode_notice", "mode_notice"),
    ];
    KINDS
        .iter()
        .find(|(p, _)| t.starts_with(p))
        .map_or("injected", |(_, k)| k)
}

/// Where a human tag opens in `text` at a place the extension puts one (see the module's
/// doc): its byte offset, the tag, and the length of the opening tag (the SDK's carry
/// attributes: `<user_input mode="act">`).
fn next_human_tag(text: &str) -> Option<(usize, &'static str, usize)> {
    // One pass over the `<`s: no tag is a prefix of another followed by `>` or ` `, so the
    // first `<` that opens a tag at a counted place is the earliest of them all.
    let mut from = 0;
    while let Some(i) = text[from..].find('<').map(|i| i + from) {
        from = i + 1;
        let after_lt = &text[from..];
        let Some(tag) = HUMAN_TAGS.into_iter().find(|t| after_lt.starts_with(t)) else {
            continue;
        };
        let open = tag.len() + 1;
        let after = &after_lt[tag.len()..];
        let open_len = match after.as_bytes().first() {
            Some(b'>') => open + 1,
            Some(b' ') => match after.find('>') {
                Some(end) => open + end + 1,
                None => continue,
            },
            _ => continue,
        };
        let before = text[..i].trim_end_matches([' ', '\t', '\r', '\n']);
        let line = before.rsplit('\n').next().unwrap_or_default();
        // The SDK prepends `<mode_notice>` elements to a person's input.
        let notice = line.ends_with("</mode_notice>");
        if before.is_empty() || line.ends_with(':') || line.contains("feedback") || notice {
            return Some((i, tag, open_len));
        }
    }
    None
}

/// One newline the extension writes inside the tag, on each side, is not the person's.
fn inner(text: &str) -> &str {
    let t = text.strip_prefix('\n').unwrap_or(text);
    t.strip_suffix('\n').unwrap_or(t)
}

/// `text` cut at the person's messages (at the places tags count): `Ok` a person's message,
/// `Err` the text between them, in order.
fn split_tags(text: &str) -> Vec<Result<Piece<'_>, &str>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((start, tag, open)) = next_human_tag(rest) {
        out.push(Err(&rest[..start]));
        let close = format!("</{tag}>");
        let body = &rest[start + open..];
        // The last closing tag: the person may have typed the tag's name themselves.
        let (typed, after) = match body.rfind(&close) {
            Some(end) => (&body[..end], &body[end + close.len()..]),
            None => (body, ""),
        };
        out.push(Ok(Piece::Human {
            tag,
            text: Cow::Borrowed(inner(typed)),
        }));
        rest = after;
    }
    out.push(Err(rest));
    out
}

/// The pieces of one text block of a `user` message, in order.
pub(crate) fn split_user_text(text: &str) -> Vec<Piece<'_>> {
    if let Some(tool) = tool_result_header(text) {
        let result = Piece::ToolResult { tool, text };
        let humans = split_tags(text).into_iter().filter_map(Result::ok);
        return std::iter::once(result).chain(humans).collect();
    }
    if let Some(feedback) = json_feedback(text) {
        return vec![Piece::Human {
            tag: "feedback",
            text: Cow::Owned(feedback),
        }];
    }
    split_tags(text)
        .into_iter()
        .filter_map(|seg| match seg {
            Ok(human) => Some(human),
            Err(between) if between.trim().is_empty() => None,
            Err(between) => Some(Piece::Injected {
                kind: injected_kind(between),
                text: between,
            }),
        })
        .collect()
}

/// Roo Code (since 2026-01) writes a tool's result for a person's feedback as a JSON object:
/// `{"status":"denied"|"approved"|"guidance","feedback":"..."}`.
fn json_feedback(text: &str) -> Option<String> {
    let t = text.trim();
    if !t.starts_with('{') {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Status {
        status: String,
        feedback: Option<String>,
    }
    let s: Status = serde_json::from_str(t).ok()?;
    let known = ["denied", "approved", "guidance"].contains(&s.status.as_str());
    s.feedback.filter(|f| known && !f.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn human<'a>(tag: &'static str, text: &'a str) -> Piece<'a> {
        Piece::Human {
            tag,
            text: text.into(),
        }
    }

    #[test]
    fn a_task_is_the_person_s_and_the_details_are_not() {
        assert_eq!(
            split_user_text("<task>\nfix </task> the bug\n</task>"),
            vec![human("task", "fix </task> the bug")]
        );
        let env = "<environment_details>\n# Current Time\n<task>x</task>\n</environment_details>";
        assert_eq!(
            split_user_text(env),
            vec![Piece::Injected {
                kind: "environment_details",
                text: env
            }]
        );
    }

    #[test]
    fn resumption_keeps_its_notice_apart_from_the_new_message() {
        let t = "[TASK RESUMPTION] This task was interrupted.\n\nNew instructions for task continuation:\n<user_message>\ngo on\n</user_message>";
        let p = split_user_text(t);
        assert_eq!(p.len(), 2);
        assert!(matches!(
            &p[0],
            Piece::Injected {
                kind: "task_resumption",
                ..
            }
        ));
        assert_eq!(p[1], human("user_message", "go on"));
    }

    #[test]
    fn a_tool_result_may_carry_an_answer_but_not_a_quoted_tag() {
        let t = "[ask_followup_question for 'which?'] Result:\n<answer>\nthe red one\n</answer>";
        let p = split_user_text(t);
        assert!(matches!(&p[0], Piece::ToolResult { tool, .. } if tool == "ask_followup_question"));
        assert_eq!(p[1], human("answer", "the red one"));
        let quoted =
            "[read_file for 'a.md'] Result:\n# Notes\nwrap it in <feedback>x</feedback> tags";
        assert_eq!(split_user_text(quoted).len(), 1);
    }

    #[test]
    fn roo_json_feedback_is_the_person_s() {
        assert_eq!(
            split_user_text(r#"{"status":"denied","feedback":"not that file"}"#),
            vec![human("feedback", "not that file")]
        );
        assert!(matches!(
            split_user_text(r#"{"status":"denied","message":"The user denied this operation."}"#)
                [0],
            Piece::Injected { .. }
        ));
    }
}

#[cfg(test)]
mod sdk_tests {
    use super::*;

    #[test]
    fn the_sdk_s_user_input_is_the_person_s_and_its_notices_are_not() {
        let t = "<mode_notice>Switched to act mode.</mode_notice>\n<user_input mode=\"act\">ship it</user_input>";
        let p = split_user_text(t);
        assert!(
            matches!(
                &p[0],
                Piece::Injected {
                    kind: "mode_notice",
                    ..
                }
            ),
            "{p:?}"
        );
        assert_eq!(
            p[1],
            Piece::Human {
                tag: "user_input",
                text: "ship it".into()
            }
        );
        assert_eq!(split_user_text("<user_inputs>x</user_inputs>").len(), 1);
    }
}
