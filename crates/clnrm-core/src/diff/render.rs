//! The diff as a tree for people: `✓` same, `✏️` changed, `➕` extra, `❌` missing.

use super::compare::{DiffNode, Mark, TreeDiff};
use std::fmt::Write;

/// How to print.
#[derive(Clone, Copy, Debug)]
pub struct Display {
    /// Print only spans on the way to a difference.
    pub only_diffs: bool,
    /// Deepest level printed (deeper levels are summarised).
    pub max_depth: usize,
}

fn differs(n: &DiffNode) -> bool {
    n.mark != Mark::Same || n.children.iter().any(differs)
}

/// The diff of one scenario as indented lines.
pub fn render_tree(diff: &TreeDiff, opts: Display) -> String {
    let mut out = String::new();
    for r in &diff.roots {
        node(&mut out, r, 1, opts);
    }
    out
}

fn node(out: &mut String, n: &DiffNode, depth: usize, opts: Display) {
    if opts.only_diffs && !differs(n) {
        return;
    }
    let indent = "  ".repeat(depth);
    if depth > opts.max_depth {
        let _ = writeln!(
            out,
            "{indent}… (deeper levels not shown; diff.max_display_depth = {})",
            opts.max_depth
        );
        return;
    }
    let icon = match n.mark {
        Mark::Same => "✓",
        Mark::Changed => "✏️",
        Mark::Extra => "➕",
        Mark::Missing => "❌",
    };
    let _ = write!(out, "{indent}{icon} {} ({})", n.name, n.kind.as_str());
    let mut details = Vec::new();
    for a in &n.attrs {
        let show = |v: &Option<crate::otel::AttrValue>| {
            v.as_ref().map_or("∅".to_owned(), ToString::to_string)
        };
        details.push(format!("{}: {} → {}", a.key, show(&a.old), show(&a.new)));
    }
    if let Some((o, w)) = n.kind_change {
        details.push(format!("kind: {} → {}", o.as_str(), w.as_str()));
    }
    if let Some((o, w)) = n.status_change {
        details.push(format!("status: {} → {}", o.as_str(), w.as_str()));
    }
    if let Some((o, w)) = &n.events_change {
        details.push(format!("events: [{}] → [{}]", o.join(", "), w.join(", ")));
    }
    if let Some((o, w)) = n.duration_change {
        details.push(format!("duration: {o:.1} ms → {w:.1} ms"));
    }
    if !details.is_empty() {
        let _ = write!(out, "  {}", details.join("; "));
    }
    out.push('\n');
    if matches!(n.mark, Mark::Missing | Mark::Extra) && opts.only_diffs {
        let size: usize = n.children.iter().map(count).sum();
        if size > 0 {
            let _ = writeln!(
                out,
                "{indent}  (and {size} span{} under it)",
                if size == 1 { "" } else { "s" }
            );
        }
        return;
    }
    for c in &n.children {
        node(out, c, depth + 1, opts);
    }
}

fn count(n: &DiffNode) -> usize {
    1 + n.children.iter().map(count).sum::<usize>()
}
