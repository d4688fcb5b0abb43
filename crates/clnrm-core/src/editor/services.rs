//! Service references: the ids of a file's `[service.<id>]` tables, whether a value
//! names a service, and the table a reference leads to (go to definition).

use super::context::{context_at, floor_boundary, header_of, word_at};
use crate::diag::Span;

/// The ids of `[service.<id>]` tables in `text`.
pub fn service_ids(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some((segs, _)) = header_of(line)
            && segs.len() >= 2
            && segs[0] == "service"
            && !out.contains(&segs[1])
        {
            out.push(segs[1].clone());
        }
    }
    out
}

/// Whether a value at `path` with key `key` names a service.
pub(super) fn names_service(path: &[String], key: &[String]) -> bool {
    let last = key.last().or(path.last()).map(String::as_str);
    matches!(last, Some("service" | "services" | "depends_on"))
}

/// The span of the `[service.<id>]` header's id that a service reference at `offset`
/// names (in a scenario's or step's `service`, `services`, `depends_on`, an
/// `[[expect.log]]`'s `service`), when that table is in `text`.
pub fn definition(text: &str, offset: usize) -> Option<Span> {
    find_service_header(text, &service_reference(text, offset)?)
}

/// The service id a reference at `offset` names.
pub fn service_reference(text: &str, offset: usize) -> Option<String> {
    let offset = floor_boundary(text, offset.min(text.len()));
    let ctx = context_at(text, offset);
    let id = match (ctx.string, &ctx.value_of, &ctx.key) {
        (Some(s), Some(key), _) if names_service(&ctx.path, key) => {
            text[s.start..s.end].trim_matches(['"', '\'']).to_owned()
        }
        // `depends_on = { db = "healthy" }`: the key names the service.
        (None, _, Some(_)) if ctx.path.last().is_some_and(|k| k == "depends_on") => {
            let w = word_at(text, offset)?;
            text[w.start..w.end].to_owned()
        }
        (None, Some(key), None) if key.last().is_some_and(|k| k == "depends_on") => {
            return None;
        }
        _ => return None,
    };
    Some(id)
}

/// The span of the id in `[service.<id>]` (or, failing that, in the first
/// `[service.<id>.…]`) in `text`.
pub fn find_service_header(text: &str, id: &str) -> Option<Span> {
    let mut pos = 0;
    let mut fallback = None;
    for line in text.split_inclusive('\n') {
        if let Some((segs, many)) = header_of(line)
            && !many
            && segs.len() >= 2
            && segs[0] == "service"
            && segs[1] == id
        {
            // The id after `service.` (not a match inside the word `service`).
            let after = line.find("service").map_or(0, |i| i + "service".len());
            let at = line[after..].find(id).map_or(pos, |i| pos + after + i);
            let span = Span::new(at, at + id.len());
            if segs.len() == 2 {
                return Some(span);
            }
            fallback.get_or_insert(span);
        }
        pos += line.len();
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::tests::{HEAD, at};

    #[test]
    fn service_references_lead_to_their_table() {
        let db = HEAD.find("[service.db]").unwrap_or_default() + "[service.".len();
        let want = Some(Span::new(db, db + 2));
        for marked in [
            format!("{HEAD}[[scenario]]\nservice = \"d|b\""),
            format!("{HEAD}[[scenario]]\nservices = [\"app\", \"|db\"]"),
            format!("{HEAD}[[scenario.steps]]\nname = \"x\"\nservice = \"db|\""),
            format!("{HEAD}[service.web]\ndepends_on = {{ d|b = \"healthy\" }}"),
            format!("{HEAD}[service.web]\ndepends_on = [\n  \"d|b\",\n]"),
            format!("{HEAD}[[expect.log]]\nservice = \"|db\""),
        ] {
            let (text, i) = at(&marked);
            assert_eq!(definition(&text, i), want, "{marked}");
        }
        let (text, i) = at(&format!("{HEAD}[[scenario]]\nname = \"d|b\""));
        assert_eq!(definition(&text, i), None);
        // An id that is part of the word `service`.
        let text = "[service.ice]\nimage = \"i\"\n[[scenario]]\nservice = \"ice\"\n";
        let at_ref = text.rfind("ice").unwrap_or_default() + 1;
        assert_eq!(definition(text, at_ref), Some(Span::new(9, 12)));
        let (text, i) = at(&format!("{HEAD}[[scenario]]\nservice = \"nope|\""));
        assert_eq!(definition(&text, i), None);
    }
}
