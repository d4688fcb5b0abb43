//! Span-tree baselines and the diff engine: normalise a scenario's spans into a tree
//! ([`SpanTree`]), compare it with the baseline's ([`diff`]), print the difference.
//! Pure: the caller reads and writes files through [`Baseline`].

mod baseline;
mod compare;
mod render;
mod tree;

pub use baseline::{Baseline, BaselineError, FORMAT, Replaced};
pub use compare::{AttrChange, Compare, Counts, DiffNode, Mark, TreeDiff, diff};
pub use render::{Display, render_tree};
pub use tree::{Node, Normalize, SpanTree};

#[cfg(test)]
mod tests;
