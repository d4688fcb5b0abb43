//! Span-tree baselines and the diff engine: normalise a scenario's spans into a tree
//! ([`SpanTree`]), compare it with the baseline's ([`diff`]), print the difference.
//! The tree and diff are pure; [`store`] reads and records the project's baseline.

mod baseline;
mod compare;
mod render;
pub mod store;
pub(crate) mod tree;

pub use baseline::{Baseline, BaselineError, FORMAT, Replaced};
pub use compare::{AttrChange, Compare, Counts, DiffNode, Mark, TreeDiff, diff};
pub use render::{Display, render_tree};
pub use store::BaselineCheck;
pub use tree::{Node, Normalize, SpanTree};

#[cfg(test)]
mod tests;
