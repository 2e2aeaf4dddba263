//! A message read as its fields' raw texts ([`Obj`], tonbo_core's one-pass object reader): a
//! field is looked at only when the mapping needs it, and a string it only copies (a tool's
//! output, a text) is written as the record holds it. The containers a message nests its
//! content and tool results in ([`Nested`]) are read in the same pass as the fields around
//! them: a tool's output, nested five deep, is scanned once.

use tonbo_core::raw::Expand;
pub use tonbo_core::raw::{has_surrogate_escape, json_text, value};

/// The fields that hold the containers a message nests its content and tool results in.
#[derive(Clone, Default)]
pub struct Nested;

impl Expand for Nested {
    const FIELDS: &'static [&'static str] = &["content", "toolCall", "toolResult", "value"];
}

/// An object's fields, [`Nested`] ones read in the same pass.
pub type Obj<'a> = tonbo_core::raw::Obj<'a, Nested>;
/// A content item.
pub type Part<'a> = tonbo_core::raw::Part<'a, Nested>;
/// A field's value.
pub type Val<'a> = tonbo_core::raw::Val<'a, Nested>;
