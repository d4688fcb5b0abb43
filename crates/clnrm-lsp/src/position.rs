//! Byte offsets ↔ LSP positions (a line and a UTF-16 column), in one place.

use lsp_types::Position;

/// Where each line of a text starts.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    /// The index of `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    /// The position of byte `offset` (clamped to the text, and back to a character's
    /// start).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|s| *s <= offset) - 1;
        let col: usize = self.text[self.starts[line]..offset]
            .chars()
            .map(char::len_utf16)
            .sum();
        Position::new(
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
    }

    /// The byte offset of `pos`: a line past the end is the end, a column past the
    /// line's end is the line's end, a column inside a surrogate pair is the character.
    pub fn offset(&self, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return self.text.len();
        };
        let end = self
            .starts
            .get(pos.line as usize + 1)
            .map_or(self.text.len(), |e| e - 1);
        let mut units = 0u32;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += c.len_utf16() as u32;
            if units > pos.character {
                return start + i;
            }
        }
        end
    }

    /// The range of bytes `start..end`.
    pub fn range(&self, start: usize, end: usize) -> lsp_types::Range {
        lsp_types::Range::new(self.position(start), self.position(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_utf16_units() {
        let text = "a = \"é𝄞x\"\nb\n";
        let idx = LineIndex::new(text);
        let x = text.find('x').unwrap_or_default();
        // é is one unit, 𝄞 two.
        assert_eq!(idx.position(x), Position::new(0, 8));
        assert_eq!(idx.offset(Position::new(0, 8)), x);
        assert_eq!(
            idx.position(text.find('b').unwrap_or_default()),
            Position::new(1, 0)
        );
        // Inside the surrogate pair: the character's start.
        let clef = text.find('𝄞').unwrap_or_default();
        assert_eq!(idx.offset(Position::new(0, 7)), clef);
        assert_eq!(idx.position(clef + 1), Position::new(0, 6));
        // Past the line's end, past the text's end.
        assert_eq!(idx.offset(Position::new(1, 99)), text.len() - 1);
        assert_eq!(idx.offset(Position::new(9, 0)), text.len());
        assert_eq!(idx.position(999), Position::new(2, 0));
    }
}
