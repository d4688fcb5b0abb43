//! How long after a change to a 300-line template its diagnostics arrive (the
//! language server on an in-memory connection, as an editor sees it over stdio minus
//! the pipe): 5 warm-up changes, then 50 measured, each alternating a valid text with
//! one holding an error, so every change is rendered, parsed and validated anew.
//! Prints the median and p95; the budget is a 50 ms median.
#[path = "../tests/common/mod.rs"]
mod common;

use common::Client;
use std::time::Instant;

/// A 300-line template of the usual shape: [vars], services, a loop of steps, twenty
/// scenarios written out with steps and span expectations, file-level expectations.
fn template() -> String {
    let mut t = String::from(
        "{% set versions = [\"v1\", \"v2\", \"v3\"] %}\n[vars]\nsvc = \"orders\"\nport = 8080\n\n\
         [meta]\nname = \"{{ svc }}-feedback\"\nversion = \"1.0.0\"\ndescription = \"A 300-line template\"\n\n\
         [otel]\nexporter = \"otlp\"\n\n",
    );
    for s in ["db", "cache", "app", "worker"] {
        t.push_str(&format!(
            "[service.{s}]\nimage = \"clnrm/busybox:latest\"\nenv = {{ NAME = \"{s}\" }}\n\
             health_check = {{ cmd = [\"true\"], interval_ms = 100, retries = 20 }}\n\n"
        ));
    }
    t.push_str("[[scenario]]\nname = \"looped\"\nservice = \"app\"\n{% for v in versions %}\n[[scenario.steps]]\nname = \"step {{ v }}\"\ncommand = [\"echo\", \"{{ v }}\"]\n{% endfor %}\n\n");
    let mut i = 0;
    while t.lines().count() < 280 {
        t.push_str(&format!(
            "[[scenario]]\nname = \"scenario {i}\"\nservice = \"app\"\ntags = [\"smoke\"]\n\n\
             [[scenario.steps]]\nname = \"first {i}\"\ncommand = [\"echo\", \"{i}\"]\nexpected_output_regex = \"^{i}$\"\n\n\
             [[scenario.expect.span]]\nname = \"GET /items/{{id}}\"\nkind = \"server\"\n\n"
        ));
        i += 1;
    }
    while t.lines().count() < 300 {
        t.push_str("[[expect.log]]\nservice = \"app\"\nregex = \"ERROR\"\nabsent = true\n\n");
    }
    t
}

fn main() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join(".clnrm")).unwrap_or_else(|e| panic!("{e}"));
    let text = template();
    let lines = text.lines().count();
    let broken = text.replacen("kind = \"server\"", "kind = \"servr\"", 1);
    let uri = format!(
        "file://{}/tests/feedback.clnrm.toml.tera",
        dir.path().display()
    );
    let c = Client::start();
    c.open(&uri, &text);
    let first = c.diagnostics(&uri, 1);
    assert!(first.is_empty(), "the template is valid: {first:?}");
    let mut times = Vec::new();
    for v in 2..57 {
        let (body, errors) = if v % 2 == 0 { (&broken, 1) } else { (&text, 0) };
        let started = Instant::now();
        c.change(&uri, v, body);
        let diags = c.diagnostics(&uri, v);
        let took = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(diags.len(), errors, "version {v}: {diags:?}");
        if v >= 7 {
            times.push(took);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95).div_ceil(100) - 1];
    println!(
        "lsp_feedback: diagnostics after a change to a {lines}-line template: median {median:.1} ms, \
         p95 {p95:.1} ms, min {:.1} ms over {} changes (budget: 50 ms median)",
        times[0],
        times.len()
    );
    let _ = c.stop();
}
