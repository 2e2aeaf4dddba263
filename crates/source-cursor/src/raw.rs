//! A message (bubble) read as its fields' raw texts ([`Obj`], tonbo_core's one-pass object
//! reader): a field is looked at only when the mapping needs it, and a string it only copies
//! (a tool's output, a text) is written as the record holds it, not decoded and escaped again.

pub use tonbo_core::raw::{has_surrogate_escape, json_text, value};

/// An object's fields, each kept as its raw text.
pub type Obj<'a> = tonbo_core::raw::Obj<'a, tonbo_core::raw::NoneExpanded>;
