//! What clnrm reads of a Dockerfile: the base images its `FROM` lines name, with the
//! `ARG`s declared before the first `FROM` (and the build's arguments over them)
//! substituted, leaving out `scratch` and the stages of the same file (their ids are
//! part of a build's key, SPEC §14: a re-pulled base makes a new image); the names of
//! its stages (a `target` must be one); and the line of the instruction a failed
//! build stopped at, from what the builder printed.

use std::collections::{BTreeMap, BTreeSet};

/// The images the `FROM` lines of `dockerfile` start from, in order, each once;
/// `args` are the build's arguments.
pub fn base_images(dockerfile: &str, args: &BTreeMap<String, String>) -> Vec<String> {
    let mut globals: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut seen_from = false;
    let mut out: Vec<String> = Vec::new();
    for (_, line) in instructions(dockerfile) {
        let mut words = line.split_whitespace();
        let Some(op) = words.next() else {
            continue;
        };
        if op.eq_ignore_ascii_case("ARG") && !seen_from {
            for decl in words {
                let (name, default) = match decl.split_once('=') {
                    Some((n, v)) => (n, Some(unquote(v))),
                    None => (decl, None),
                };
                let value = args.get(name).cloned().or(default);
                globals.insert(name.to_owned(), value.unwrap_or_default());
            }
        } else if op.eq_ignore_ascii_case("FROM") {
            seen_from = true;
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let Some(image) = rest.first() else {
                continue;
            };
            let image = substitute(image, &globals);
            // A stage named before this line, not one this line names.
            let own_stage = stages.contains(&image.to_ascii_lowercase());
            if let [_, as_kw, name] = rest.as_slice()
                && as_kw.eq_ignore_ascii_case("AS")
            {
                stages.insert(name.to_ascii_lowercase());
            }
            if image != "scratch" && !own_stage && !image.is_empty() && !out.contains(&image) {
                out.push(image);
            }
        } else if op.eq_ignore_ascii_case("COPY") {
            // `COPY --from=<image>` reads another image: a base as well (not a stage of
            // the file, nor a stage's number).
            for from in line
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("--from="))
            {
                let image = substitute(from, &globals);
                let stage = stages.contains(&image.to_ascii_lowercase())
                    || image.bytes().all(|b| b.is_ascii_digit());
                if !stage && !image.is_empty() && !out.contains(&image) {
                    out.push(image);
                }
            }
        }
    }
    out
}

/// The names of the stages of `dockerfile` (`FROM … AS <name>`), in order, as written.
pub fn stages(dockerfile: &str) -> Vec<String> {
    instructions(dockerfile)
        .into_iter()
        .filter_map(|(_, line)| {
            let words: Vec<&str> = line
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            match words.as_slice() {
                [from, _, as_kw, name]
                    if from.eq_ignore_ascii_case("FROM") && as_kw.eq_ignore_ascii_case("AS") =>
                {
                    Some((*name).to_owned())
                }
                _ => None,
            }
        })
        .collect()
}

/// The instruction a failed build stopped at: its 1-based line in `dockerfile` and its
/// text, found from the last step the builder announced in `output` (Docker's
/// `Step 3/5 : RUN make`, Buildah's `STEP 3/5: RUN make`). The step's number is tried
/// first (the builder counts the instructions after the first `FROM`), then its text.
pub fn failed_step(dockerfile: &str, output: &str) -> Option<(usize, String)> {
    let (number, text) = output.lines().rev().find_map(step_line)?;
    let all = instructions(dockerfile);
    let first_from = all.iter().position(|(_, l)| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
    })?;
    let steps = &all[first_from..];
    let same = |l: &str| squeeze(l).eq_ignore_ascii_case(&squeeze(&text));
    let found = steps
        .get(number.wrapping_sub(1))
        .filter(|(_, l)| same(l))
        .or_else(|| steps.iter().find(|(_, l)| same(l)))?;
    Some((found.0, squeeze(&found.1)))
}

/// `(n, instruction)` of a line announcing step `n` of the file; `n` is 0 when the
/// builder counts the steps of each stage apart (Buildah's `[1/2] STEP 3/4: …` in a
/// multi-stage build), which only the text then places.
fn step_line(line: &str) -> Option<(usize, String)> {
    let line = line.trim();
    let (staged, line) = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((stage, rest)) if stage.contains('/') => (true, rest.trim_start()),
        _ => (false, line),
    };
    let rest = line
        .strip_prefix("Step ")
        .or_else(|| line.strip_prefix("STEP "))?;
    let (counts, text) = rest.split_once(':')?;
    let number: usize = counts.trim().split('/').next()?.trim().parse().ok()?;
    Some((if staged { 0 } else { number }, text.trim().to_owned()))
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The file's instructions with the 1-based line each begins on: comments and blank
/// lines left out, lines ending in `\` joined to the next.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if current.is_empty() {
            start = i + 1;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push((start, std::mem::take(&mut current)));
            }
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

fn unquote(v: &str) -> String {
    v.trim_matches(|c| c == '"' || c == '\'').to_owned()
}

/// `$NAME`, `${NAME}` and `${NAME:-default}` replaced from `vars` (unknown: empty, or
/// the default).
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(inner) = after.strip_prefix('{')
            && let Some(end) = inner.find('}')
        {
            let body = &inner[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            let value = vars.get(name).filter(|v| !v.is_empty()).cloned();
            out.push_str(&value.or(default.map(str::to_owned)).unwrap_or_default());
            rest = &inner[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(text: &str) -> Vec<String> {
        base_images(text, &BTreeMap::new())
    }

    #[test]
    fn from_lines_name_the_bases_but_scratch_and_the_file_s_own_stages() {
        let text = "# syntax=docker/dockerfile:1\nFROM python:3.11-slim AS build\nRUN pip wheel .\n\nFROM --platform=linux/amd64 nginx:1.25 as web\nCOPY --from=build /w /w\nCOPY --from=0 /x /x\nCOPY --from=composer:2 /usr/bin/composer /usr/bin/\nFROM build AS test\nFROM scratch\nFROM python:3.11-slim\n";
        assert_eq!(
            bases(text),
            vec!["python:3.11-slim", "nginx:1.25", "composer:2"]
        );
    }

    #[test]
    fn stages_are_named_as_written() {
        let text = "FROM python:3.11 AS Build\nRUN x\nFROM --platform=linux/amd64 nginx as web\nFROM scratch\n";
        assert_eq!(stages(text), vec!["Build", "web"]);
    }

    #[test]
    fn a_failed_step_is_found_by_its_number_or_its_text() {
        let text = "ARG V=1\nFROM clnrm/busybox:latest\n# a comment\n\nRUN echo one \\\n    two\nRUN false\nCMD [\"sh\"]\n";
        let docker = "Step 1/4 : FROM clnrm/busybox:latest\n ---> 1a2b\nStep 2/4 : RUN echo one     two\none two\nStep 3/4 : RUN false\n ---> Running in 9f\n";
        assert_eq!(failed_step(text, docker), Some((7, "RUN false".to_owned())));
        let podman = "STEP 1/4: FROM clnrm/busybox:latest\nSTEP 2/4: RUN echo one two\n";
        assert_eq!(
            failed_step(text, podman),
            Some((5, "RUN echo one two".to_owned()))
        );
        // A count that does not match (another builder's numbering): the text decides.
        assert_eq!(
            failed_step(text, "Step 9/9 : RUN false\n"),
            Some((7, "RUN false".to_owned()))
        );
        assert_eq!(failed_step(text, "no steps at all"), None);
        // Buildah counts each stage's steps apart in a multi-stage build.
        let staged = "FROM clnrm/busybox:latest AS a\nRUN true\nFROM a\nRUN true\nRUN exit 4\n";
        let podman = "[1/2] STEP 1/2: FROM clnrm/busybox:latest AS a\n[1/2] STEP 2/2: RUN true\n[2/2] STEP 1/3: FROM a\n[2/2] STEP 2/3: RUN true\n[2/2] STEP 3/3: RUN exit 4\n";
        assert_eq!(
            failed_step(staged, podman),
            Some((5, "RUN exit 4".to_owned()))
        );
    }

    #[test]
    fn args_before_the_first_from_are_substituted_the_build_s_over_their_defaults() {
        let text = "ARG BASE=debian \\\n    TAG=\"bookworm\"\nFROM ${BASE}:$TAG\nARG LATE=x\nFROM alpine:${V:-3.19}\n";
        assert_eq!(bases(text), vec!["debian:bookworm", "alpine:3.19"]);
        let args = BTreeMap::from([("TAG".to_owned(), "trixie".to_owned())]);
        assert_eq!(
            base_images(text, &args),
            vec!["debian:trixie", "alpine:3.19"]
        );
    }
}
