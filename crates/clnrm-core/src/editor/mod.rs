//! What an editor asks of a test definition at a position: completions of keys,
//! table headers and values (from the JSON Schema, by where the position is in the
//! TOML tree), hover text (the schema's descriptions), and the definition of a service
//! reference (`[service.<id>]`). Everything works on the text as written, so a
//! template's literal TOML gets the same help as a plain file. Positions are byte
//! offsets; the language server converts them.
//!
//! Each feature has its file: `completion`, `hover`, and `services` (service ids and
//! where a reference leads); `context` finds where a position is in the TOML tree, and
//! `schema_walk` looks a TOML path up in the JSON Schema.

mod completion;
mod context;
mod hover;
mod schema_walk;
mod services;

pub use completion::{Completion, CompletionKind, completions, completions_with};
pub use hover::{Hover, hover};
pub use services::{definition, find_service_header, service_ids, service_reference};

#[cfg(test)]
mod tests {
    //! What the feature files' tests share, and a test across the features.

    use super::*;

    /// `text` with `|` marking the position, and the position.
    pub(super) fn at(marked: &str) -> (String, usize) {
        let i = marked
            .find('|')
            .unwrap_or_else(|| panic!("no | in {marked}"));
        (marked.replacen('|', "", 1), i)
    }

    pub(super) const HEAD: &str = "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.db]\nimage = \"i\"\n\n[service.app]\nimage = \"i\"\n\n";

    #[test]
    fn odd_positions_and_texts_do_not_panic() {
        let text = "[meta]\nname = \"é\"\n[[scenario]]\nx = { a = [1, {b = \"\"\"\nq\"\"\"}]}\n'";
        for i in 0..=text.len() + 2 {
            let _ = completions(text, i);
            let _ = hover(text, i);
            let _ = definition(text, i);
        }
    }
}
