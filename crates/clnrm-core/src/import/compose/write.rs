//! The imported test definition as TOML text: a header comment with what was left
//! behind, `[meta]`, each service, and a starter scenario for each service that keeps
//! running.

use super::service::Service;
use super::state::Import;
use crate::import::toml_text as t;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The TOML text.
pub(super) fn write(imp: &Import<'_>, name: &str, services: &[Service]) -> String {
    let mut out = String::new();
    let mut head = format!(
        "Imported from {} by `clnrm import`. Each service that keeps running has a starter \
         scenario: edit its steps to test what the service does.",
        imp.input.file
    );
    if !imp.skipped.is_empty() {
        head.push_str("\n\nNot imported:");
        for s in &imp.skipped {
            let _ = write!(head, "\n- {s}");
        }
    }
    if !imp.unset.is_empty() {
        let names: Vec<&str> = imp.unset.iter().map(String::as_str).collect();
        let _ = write!(
            head,
            "\n\nVariables that were not set (replaced by \"\"): {}",
            names.join(", ")
        );
    }
    out.push_str(&t::comment(&head));
    let _ = write!(
        out,
        "\n[meta]\nname = {}\nversion = \"0.1.0\"\ndescription = {}\n",
        t::string(name),
        t::string(&format!("Imported from {}", imp.input.file))
    );
    for s in services {
        write_service(&mut out, s);
    }
    let one_shots: BTreeSet<&str> = services
        .iter()
        .flat_map(|s| &s.depends_on)
        .filter(|(_, c)| *c == "completed")
        .map(|(id, _)| id.as_str())
        .collect();
    for s in services {
        if one_shots.contains(s.id.as_str()) {
            out.push('\n');
            out.push_str(&t::comment(&format!(
                "{} is a one-shot: the scenarios of the services that wait for it to complete \
                 run it.",
                s.id
            )));
            continue;
        }
        write_scenario(&mut out, s);
    }
    out
}

fn write_service(out: &mut String, s: &Service) {
    out.push('\n');
    for note in &s.notes {
        out.push_str(&t::comment(note));
    }
    let _ = writeln!(out, "[service.{}]", t::key(&s.id));
    if let Some(image) = &s.image {
        let _ = writeln!(out, "image = {}", t::string(image));
    }
    if let Some(b) = s.build.as_ref().filter(|b| b.is_context_only()) {
        let _ = writeln!(out, "build = {}", t::string(&b.context));
    }
    if let Some(e) = &s.entrypoint {
        let _ = writeln!(out, "entrypoint = {}", t::strings(e));
    }
    if !s.args.is_empty() {
        let _ = writeln!(out, "args = {}", t::strings(&s.args));
    }
    if !s.ports.is_empty() {
        let ports: Vec<String> = s.ports.iter().map(u16::to_string).collect();
        let _ = writeln!(out, "ports = [{}]", ports.join(", "));
    }
    if !s.volumes.is_empty() {
        out.push_str("volumes = [\n");
        for (host, container, ro) in &s.volumes {
            let mut pairs = vec![
                ("host_path".to_owned(), t::string(host)),
                ("container_path".to_owned(), t::string(container)),
            ];
            if *ro {
                pairs.push(("read_only".to_owned(), "true".to_owned()));
            }
            let _ = writeln!(out, "  {},", t::inline(&pairs));
        }
        out.push_str("]\n");
    }
    if !s.tmpfs.is_empty() {
        let _ = writeln!(out, "tmpfs = {}", t::strings(&s.tmpfs));
    }
    if let Some(h) = &s.health {
        let mut pairs = vec![("cmd".to_owned(), t::strings(&h.cmd))];
        for (k, v) in [
            ("interval_ms", h.interval_ms),
            ("timeout_ms", h.timeout_ms),
            ("retries", h.retries),
        ] {
            if let Some(v) = v {
                pairs.push((k.to_owned(), v.to_string()));
            }
        }
        let _ = writeln!(out, "health_check = {}", t::inline(&pairs));
    }
    if !s.depends_on.is_empty() {
        let pairs: Vec<(String, String)> = s
            .depends_on
            .iter()
            .map(|(id, c)| (id.clone(), t::string(c)))
            .collect();
        let _ = writeln!(out, "depends_on = {}", t::inline(&pairs));
    }
    write_build(out, s);
    if !s.env.is_empty() {
        let _ = writeln!(out, "\n[service.{}.env]", t::key(&s.id));
        for (k, v) in &s.env {
            let _ = writeln!(out, "{} = {}", t::key(k), t::string(v));
        }
    }
}

/// `[service.<id>.build]` (unless the context alone, written as `build = "…"`, says
/// it all) and `[service.<id>.develop]`.
fn write_build(out: &mut String, s: &Service) {
    if let Some(b) = s.build.as_ref().filter(|b| !b.is_context_only()) {
        let _ = writeln!(out, "\n[service.{}.build]", t::key(&s.id));
        let _ = writeln!(out, "context = {}", t::string(&b.context));
        for (k, v) in [("dockerfile", &b.dockerfile), ("target", &b.target)] {
            if let Some(v) = v {
                let _ = writeln!(out, "{k} = {}", t::string(v));
            }
        }
        if !b.args.is_empty() {
            let pairs: Vec<(String, String)> = b
                .args
                .iter()
                .map(|(k, v)| (k.clone(), t::string(v)))
                .collect();
            let _ = writeln!(out, "args = {}", t::inline(&pairs));
        }
    }
    if !s.develop.is_empty() {
        let _ = writeln!(out, "\n[service.{}.develop]\nwatch = [", t::key(&s.id));
        for rule in &s.develop {
            let mut pairs = vec![
                ("path".to_owned(), t::string(&rule.path)),
                ("action".to_owned(), t::string(&rule.action)),
            ];
            if let Some(target) = &rule.target {
                pairs.push(("target".to_owned(), t::string(target)));
            }
            let _ = writeln!(out, "  {},", t::inline(&pairs));
        }
        out.push_str("]\n");
    }
}

fn write_scenario(out: &mut String, s: &Service) {
    let id = t::string(&s.id);
    let (name, step, cmd, hint) = match &s.health {
        Some(h) => (
            format!("{} is healthy", s.id),
            "health check",
            // A literal `${` in a step is written `$${` (a `${name}` there is a capture).
            h.cmd.iter().map(|a| a.replace("${", "$${")).collect(),
            "",
        ),
        None => (
            format!("{} starts", s.id),
            "running",
            vec!["true".to_owned()],
            "# Starter: replace with a check of what the service does (a `command` in it,\n\
             # or an `http` request to one of its ports).\n",
        ),
    };
    let _ = write!(
        out,
        "\n[[scenario]]\nname = {}\nservices = [{id}]\n\n{hint}[[scenario.steps]]\nname = {}\n\
         service = {id}\ncommand = {}\n",
        t::string(&name),
        t::string(step),
        t::strings(&cmd)
    );
}
