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
        // Comments and blank lines are left out inside a continued instruction too.
        if line.is_empty() || line.starts_with('#') {
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

/// Where a build of a Dockerfile puts the context's files it copies in the last
/// instructions of the stage it builds, when nothing after them reads or changes the
/// file system (SPEC §14, a rebuild in `clnrm watch`): an image it made before, with
/// such files put at their places, holds what a build of the changed files would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateCopies {
    /// The `COPY`s of the built stage's last instructions, in order.
    late: Vec<Copy>,
    /// The sources of every other instruction that reads the context (`COPY`, `ADD`,
    /// `ONBUILD` ones, a bind mount), in any stage; `None` for one whose sources cannot
    /// be told (a wildcard, a variable, an instruction not known here): it may read
    /// any file.
    early: Vec<Option<String>>,
}

/// A `COPY` among the last instructions.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Copy {
    /// Of the context: its sources (relative to it, `""` for all of it) and its
    /// absolute destination (a directory when it ends in `/`).
    Context(Vec<String>, String),
    /// From another stage or image (`--from`): its absolute destination, which it
    /// may overwrite.
    From(String),
}

/// What an instruction is to the last instructions of a stage.
enum Late {
    /// A `COPY` they may hold.
    Copy(Copy),
    /// An instruction that only sets the image's settings.
    Settings,
    /// Anything else: it ends them.
    Other,
}

/// The built stage's last instructions of `dockerfile` (`target`, else the last
/// stage) that are `COPY`s (no flag but `--from`, no wildcard or variable, an absolute
/// destination or one below an absolute `WORKDIR`, a single file's ending in `/`) or
/// set only the image's settings, and every other read of the context. `None` when the
/// file uses what this does not follow (an `# escape=` directive, a `# syntax=` other
/// than `docker/dockerfile`, a target it lacks).
pub fn late_copies(dockerfile: &str, target: Option<&str>) -> Option<LateCopies> {
    for directive in dockerfile
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
    {
        let d = directive
            .trim_start_matches('#')
            .trim()
            .to_ascii_lowercase();
        let syntax = d
            .strip_prefix("syntax")
            .map(|r| r.trim_start_matches([' ', '=']));
        if d.starts_with("escape") || syntax.is_some_and(|v| !v.starts_with("docker/dockerfile")) {
            return None;
        }
    }
    let stages = stage_steps(dockerfile);
    let built = match target {
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))?,
        None => stages.len().checked_sub(1)?,
    };
    let steps = &stages[built].steps;
    let late_from = steps
        .iter()
        .rposition(|(line, workdir)| matches!(late(line, workdir.as_deref()), Late::Other))
        .map_or(0, |n| n + 1);
    let mut out = LateCopies {
        late: Vec::new(),
        early: Vec::new(),
    };
    for (s, stage) in stages.iter().enumerate() {
        for (n, (line, workdir)) in stage.steps.iter().enumerate() {
            if s == built && n >= late_from {
                if let Late::Copy(copy) = late(line, workdir.as_deref()) {
                    out.late.push(copy);
                }
            } else {
                out.early.extend(context_reads(line));
            }
        }
    }
    Some(out)
}

/// A stage of a Dockerfile: its name (lowercase), and its instructions, each with the
/// `WORKDIR` it runs in (`None`: not known here).
struct Stage {
    name: Option<String>,
    steps: Vec<(String, Option<String>)>,
    /// Its `WORKDIR` after its last instruction.
    workdir: Option<String>,
}

/// The stages of `dockerfile`, in order.
fn stage_steps(dockerfile: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut workdir: Option<String> = None;
    for (_, line) in instructions(dockerfile) {
        let op = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if op == "FROM" {
            let words: Vec<&str> = line
                .split_whitespace()
                .skip(1)
                .filter(|w| !w.starts_with("--"))
                .collect();
            let image = words
                .first()
                .map(|w| w.to_ascii_lowercase())
                .unwrap_or_default();
            // A stage of the file carries its `WORKDIR` on; an image's is not known
            // here (`scratch` has none).
            let parent = stages
                .iter()
                .rev()
                .find(|s| s.name.as_deref() == Some(image.as_str()));
            workdir = match parent {
                Some(parent) => parent.workdir.clone(),
                None if image == "scratch" => Some("/".to_owned()),
                None => None,
            };
            let name = match words.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("AS") => {
                    Some(name.to_ascii_lowercase())
                }
                _ => None,
            };
            stages.push(Stage {
                name,
                steps: Vec::new(),
                workdir: workdir.clone(),
            });
            continue;
        }
        let Some(stage) = stages.last_mut() else {
            continue;
        };
        if op == "WORKDIR" {
            let dir = line
                .split_whitespace()
                .nth(1)
                .map(unquote)
                .unwrap_or_default();
            workdir = if dir.contains('$') {
                None
            } else if dir.starts_with('/') {
                Some(dir)
            } else {
                workdir.map(|w| format!("{}/{dir}", w.trim_end_matches('/')))
            };
        }
        stage.steps.push((line, workdir.clone()));
        stage.workdir.clone_from(&workdir);
    }
    stages
}

/// What `line`, run in `workdir`, is to the last instructions of a stage.
fn late(line: &str, workdir: Option<&str>) -> Late {
    let (op, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let op = op.to_ascii_uppercase();
    if matches!(
        op.as_str(),
        "ENV"
            | "LABEL"
            | "EXPOSE"
            | "CMD"
            | "ENTRYPOINT"
            | "USER"
            | "STOPSIGNAL"
            | "HEALTHCHECK"
            | "ARG"
            | "SHELL"
            | "MAINTAINER"
            | "WORKDIR"
    ) {
        return Late::Settings;
    }
    if op != "COPY" {
        return Late::Other;
    }
    let Some(mut words) = words_of(rest) else {
        return Late::Other;
    };
    let mut from = false;
    while words.first().is_some_and(|w| w.starts_with("--")) {
        let flag = words.remove(0);
        if flag.starts_with("--from=") {
            from = true;
        } else {
            return Late::Other;
        }
    }
    let Some(dest) = words.pop() else {
        return Late::Other;
    };
    if words.is_empty()
        || words
            .iter()
            .chain([&dest])
            .any(|w| w.contains(['*', '?', '[', '$']) || w.starts_with("<<"))
    {
        return Late::Other;
    }
    let dest = if dest.starts_with('/') {
        dest
    } else {
        let Some(dir) = workdir else {
            return Late::Other;
        };
        let dest = dest.trim_start_matches("./");
        if dest.is_empty() || dest == "." {
            format!("{}/", dir.trim_end_matches('/'))
        } else {
            format!("{}/{dest}", dir.trim_end_matches('/'))
        }
    };
    if from {
        return Late::Copy(Copy::From(dest));
    }
    Late::Copy(Copy::Context(
        words.iter().map(|w| source_path(w)).collect(),
        dest,
    ))
}

impl LateCopies {
    /// Where a build puts the context's file `rel` (relative to the context, `/`
    /// separated): every place a late `COPY` puts it (none when no instruction copies
    /// it); `None` when an earlier instruction may read it, when a later `COPY` may
    /// write over a place (or below it), or when the place is not certain (a single
    /// file copied to a destination without a trailing `/`, which is a directory when
    /// the image has one there).
    pub fn places(&self, rel: &str) -> Option<Vec<String>> {
        if self.early.iter().any(|src| {
            src.as_deref()
                .is_none_or(|s| source_holds(s, rel).is_some())
        }) {
            return None;
        }
        let mut out = Vec::new();
        for (k, copy) in self.late.iter().enumerate() {
            let Copy::Context(sources, dest) = copy else {
                continue;
            };
            for src in sources {
                let Some(rest) = source_holds(src, rel) else {
                    continue;
                };
                let place = match rest {
                    "" if dest.ends_with('/') => {
                        let name = rel.rsplit('/').next().unwrap_or(rel);
                        format!("{dest}{name}")
                    }
                    "" => return None,
                    rest => format!("{}/{rest}", dest.trim_end_matches('/')),
                };
                let written_over = self.late[k + 1..].iter().any(|later| {
                    let to = match later {
                        Copy::Context(_, to) | Copy::From(to) => to.trim_end_matches('/'),
                    };
                    to.is_empty() || place == to || place.starts_with(&format!("{to}/"))
                });
                if written_over {
                    return None;
                }
                out.push(place);
            }
        }
        Some(out)
    }
}

/// What of `rel` lies below the source `src` (`""` when `src` is `rel` itself);
/// `None` when `src` does not hold it.
fn source_holds<'a>(src: &str, rel: &'a str) -> Option<&'a str> {
    if src.is_empty() {
        return Some(rel);
    }
    if rel == src {
        return Some("");
    }
    rel.strip_prefix(src).and_then(|r| r.strip_prefix('/'))
}

/// The context sources an instruction other than a late `COPY` reads: each `COPY` and
/// `ADD` source (`None`: any file), an `ONBUILD`'s, any file for a bind mount or an
/// instruction not known here; none for a `COPY --from`, an `ADD` of a URL or an
/// instruction that reads no file of the context.
fn context_reads(line: &str) -> Vec<Option<String>> {
    let (op, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let op = op.to_ascii_uppercase();
    match op.as_str() {
        // A bind mount of the context (BuildKit's `RUN --mount`) reads any file.
        "RUN" => {
            return if rest.contains("--mount") {
                vec![None]
            } else {
                Vec::new()
            };
        }
        "ONBUILD" => return context_reads(rest.trim()),
        "COPY" | "ADD" => {}
        "FROM" | "ENV" | "LABEL" | "EXPOSE" | "CMD" | "ENTRYPOINT" | "USER" | "STOPSIGNAL"
        | "HEALTHCHECK" | "ARG" | "SHELL" | "MAINTAINER" | "WORKDIR" | "VOLUME" => {
            return Vec::new();
        }
        _ => return vec![None],
    }
    let Some(mut words) = words_of(rest) else {
        return vec![None];
    };
    if words.iter().any(|w| w.starts_with("--from=")) {
        return Vec::new();
    }
    words.retain(|w| !w.starts_with("--"));
    words.pop();
    words
        .iter()
        .filter(|w| !(op == "ADD" && w.contains("://")))
        .map(|w| {
            (!w.contains(['*', '?', '[', '$']) && !w.starts_with("<<")).then(|| source_path(w))
        })
        .collect()
}

/// An instruction's arguments: its JSON array, or its words; `None` for an array that
/// does not parse.
fn words_of(rest: &str) -> Option<Vec<String>> {
    let rest = rest.trim();
    if rest.starts_with('[') {
        return serde_json::from_str(rest).ok();
    }
    Some(rest.split_whitespace().map(unquote).collect())
}

/// A source as a path relative to the context, `/` separated, `""` for all of it.
fn source_path(src: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in src.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
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

    fn late(text: &str) -> LateCopies {
        late_copies(text, None).unwrap_or_else(|| panic!("no late copies in {text}"))
    }

    #[test]
    fn files_the_last_copies_read_have_their_places_in_the_image() {
        let text = "# syntax=docker/dockerfile:1\nFROM clnrm/bookworm AS python\nRUN apt-get install -y python3\nFROM python AS packages\nCOPY requirements.txt /tmp/r.txt\nRUN pip install -r /tmp/r.txt\nFROM python\nWORKDIR /app\nENV A=1\nCOPY --from=packages /packages /usr/lib/py\nCOPY [\"conf/app.ini\", \"run.sh\", \"/etc/app/\"]\nCOPY VERSION /opt/\nCOPY src/ ./src/\nCMD [\"python3\"]\n";
        let l = late(text);
        assert_eq!(
            l.places("src/app.py"),
            Some(vec!["/app/src/app.py".to_owned()])
        );
        assert_eq!(
            l.places("src/a/b.py"),
            Some(vec!["/app/src/a/b.py".to_owned()])
        );
        assert_eq!(
            l.places("conf/app.ini"),
            Some(vec!["/etc/app/app.ini".to_owned()])
        );
        assert_eq!(l.places("VERSION"), Some(vec!["/opt/VERSION".to_owned()]));
        // Copied by nothing: no place.
        assert_eq!(l.places("README.md"), Some(vec![]));
        // Read by an earlier stage's COPY, whose RUN may make anything of it.
        assert_eq!(l.places("requirements.txt"), None);
        // A target by its name in another case; a target the file lacks.
        let packages = late_copies(text, Some("PACKAGES")).unwrap_or_else(|| panic!("no stage"));
        // Its last instruction is a RUN; every stage's reads count (conservatively).
        assert_eq!(packages.places("src/app.py"), None);
        assert_eq!(packages.places("README.md"), Some(vec![]));
        assert_eq!(late_copies(text, Some("nope")), None);
    }

    #[test]
    fn a_later_copy_over_a_place_or_an_unsure_place_is_the_build_s() {
        // A later COPY writes over the place (the review's example).
        let text = "FROM scratch\nWORKDIR /app\nCOPY . .\nCOPY config/prod.ini settings.ini\n";
        assert_eq!(late(text).places("settings.ini"), None, "written over");
        assert_eq!(
            late(text).places("main.py"),
            Some(vec!["/app/main.py".to_owned()])
        );
        let text = "FROM scratch\nCOPY . /app/\nCOPY --from=assets /out/x.js /app/static/x.js\n";
        assert_eq!(
            late(text).places("static/x.js"),
            None,
            "a --from COPY over it"
        );
        assert_eq!(
            late(text).places("main.py"),
            Some(vec!["/app/main.py".to_owned()])
        );
        // A single file to a destination without `/`: a directory there takes it in.
        let text = "FROM scratch\nWORKDIR /app\nCOPY app.py /app\n";
        assert_eq!(late(text).places("app.py"), None);
        // A file copied twice, neither over the other: both places.
        let text = "FROM scratch\nCOPY . /a/\nCOPY app.py /b/\n";
        assert_eq!(
            late(text).places("app.py"),
            Some(vec!["/a/app.py".to_owned(), "/b/app.py".to_owned()])
        );
    }

    #[test]
    fn comments_in_a_continued_line_onbuild_and_unknown_instructions_read_the_context() {
        // The comment inside the continued COPY does not cut it: app.py is read early.
        let text = "FROM scratch\nCOPY requirements.txt \\\n# the app\n  app.py /app/\nRUN make\nCOPY static/ /srv/static/\n";
        assert_eq!(late(text).places("app.py"), None);
        assert_eq!(
            late(text).places("static/x"),
            Some(vec!["/srv/static/x".to_owned()])
        );
        // A stage's ONBUILD COPY runs in the stage built on it.
        let text = "FROM scratch AS base\nONBUILD COPY . /src/\nFROM base\nCOPY web/ /srv/\n";
        assert_eq!(late(text).places("web/x"), None);
        // An instruction not known here may read anything.
        let text = "FROM scratch\nFROBNICATE x\nCOPY web/ /srv/\n";
        assert_eq!(late(text).places("web/x"), None);
        // Another front end's syntax is not followed.
        assert_eq!(
            late_copies(
                "# syntax=example.com/fe:1\nFROM scratch\nCOPY . /a/\n",
                None
            ),
            None
        );
    }

    #[test]
    fn a_run_after_a_copy_makes_it_early_and_wildcards_read_anything() {
        let text = "FROM python:3\nCOPY . /app\nRUN make -C /app\nCOPY web/ /srv/\n";
        let l = late(text);
        assert_eq!(
            l.places("web/index.html"),
            None,
            "COPY . before the RUN reads it"
        );
        let text = "FROM python:3\nCOPY *.txt /app/\nCOPY web/ /srv/\n";
        assert_eq!(
            late(text).places("web/x"),
            None,
            "a wildcard ends the last copies"
        );
        let text = "FROM python:3\nCOPY web/*.html /srv/\nRUN true\nCOPY web/ /srv/\n";
        assert_eq!(
            late(text).places("web/x"),
            None,
            "an early wildcard may read it"
        );
        let text = "FROM python:3\nADD https://example.com/x.tgz /x\nCOPY web/ /srv/\n";
        assert_eq!(late(text).places("web/x"), Some(vec!["/srv/x".to_owned()]));
        let text = "FROM python:3\nRUN --mount=type=bind,target=/c make\nCOPY web/ /srv/\n";
        assert_eq!(
            late(text).places("web/x"),
            None,
            "a bind mount of the context"
        );
    }

    #[test]
    fn what_the_last_copies_cannot_place_ends_them() {
        // A relative destination under an image's WORKDIR nobody here knows.
        let text = "FROM python:3\nCOPY app.py ./\n";
        assert_eq!(late(text).places("app.py"), None);
        // --chown: the owner would differ.
        let text = "FROM python:3\nCOPY --chown=1000 app.py /app/\n";
        assert_eq!(late(text).places("app.py"), None);
        // A variable; a heredoc.
        let text = "FROM python:3\nENV D=/app\nCOPY app.py $D/\n";
        assert_eq!(late(text).places("app.py"), None);
        let text = "FROM python:3\nCOPY <<EOF /app/x\nhi\nEOF\nCOPY web/ /srv/\n";
        assert_eq!(late(text).places("web/a"), None);
        // A stage built on another carries its WORKDIR; `..` in a source.
        let text = "FROM scratch AS a\nWORKDIR /srv\nFROM a\nCOPY x/../app.py .\n";
        assert_eq!(
            late(text).places("app.py"),
            Some(vec!["/srv/app.py".to_owned()])
        );
        assert_eq!(
            late_copies("# escape=`\nFROM scratch\nCOPY . /a/\n", None),
            None
        );
        assert_eq!(late_copies("", None), None);
    }
}
