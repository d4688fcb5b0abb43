//! `report.html` budgets (SPEC §10): for a run of 1,000 scenarios × 50 spans the file
//! is ≤ 5 MB and interactive in Chromium ≤ 1 s; a scenario of 10,000 spans draws its
//! waterfall without putting every row in the page.
//!
//! The report is made in memory (a real run of 1,000 scenarios would measure the
//! engine, not the report): each scenario has 3 steps with a line of output, 50 spans
//! of a web request (route, method, status, a SQL statement, a user id that differs
//! per scenario; random span and trace ids and durations, as real ones are, so that
//! the data compresses no better than a run's), every 20th one failed with a
//! baseline diff. Each scenario's spans are saved as its artifact, then the page is
//! written as `clnrm run --report-dir` writes it (`to_html` reading the artifacts;
//! that is the time printed), and loaded from a file in headless Chromium (Debian's
//! `chromium` and `chromedriver`) over WebDriver, five times each:
//! - interactive: the page's own clock (`performance.now()`, from navigation start)
//!   when its script has drawn the scenario list and attached its handlers;
//! - load: the WebDriver navigation's wall time as the client sees it.
//!
//! Run with `cargo bench -p clnrm-cli --bench report_html` (under a minute).

#[path = "../tests/common/browser.rs"]
mod browser;

use clnrm_core::diff::{AttrChange, Counts, DiffNode, Mark, TreeDiff};
use clnrm_core::exec::{ScenarioDiff, ScenarioResult, Status, StepResult};
use clnrm_core::model::{SpanKind, StatusCode};
use clnrm_core::otel::{AttrValue, SpanRecord};
use clnrm_core::plan::ScenarioId;
use clnrm_core::report::html::artifact_spans;
use clnrm_core::report::{RunReport, to_html};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const SCENARIOS: usize = 1000;
const SPANS: usize = 50;

/// A fixed pseudo-random number of `seed` (ids and durations as random as real ones,
/// so that the data compresses no better than a real run's).
fn noise(seed: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x2545_f491_4f6c_dd1d;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

fn span(
    i: usize,
    n: usize,
    parent: Option<usize>,
    name: &str,
    attrs: &[(&str, AttrValue)],
) -> SpanRecord {
    let seed = (i * 64 + n) as u64;
    let start = 1_700_000_000_000_000_000
        + (i as u64) * 1_000_000_000
        + (n as u64) * 3_000_000
        + noise(seed) % 1_000_000;
    let id = |n: usize| format!("{:016x}", noise((i * 64 + n) as u64 + (1 << 40)));
    SpanRecord {
        trace_id: format!(
            "{:016x}{:016x}",
            noise(i as u64),
            noise(i as u64 + (1 << 50))
        ),
        span_id: id(n),
        parent_span_id: parent.map(id),
        name: name.into(),
        kind: if n == 0 {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        start_time_unix_nano: start,
        end_time_unix_nano: start
            + if n == 0 {
                200_000_000
            } else {
                200_000 + noise(seed + 7) % 2_000_000
            },
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        events: Vec::new(),
        links: Vec::new(),
        status: if n == 17 && i.is_multiple_of(20) {
            StatusCode::Error
        } else {
            StatusCode::Ok
        },
        status_message: String::new(),
        resource: [("service.name".to_owned(), AttrValue::Str("orders".into()))].into(),
        scope: "orders".into(),
    }
}

fn spans_of(i: usize, count: usize) -> Vec<SpanRecord> {
    (0..count)
        .map(|n| {
            if n == 0 {
                span(
                    i,
                    0,
                    None,
                    "POST /orders",
                    &[
                        ("http.method", AttrValue::Str("POST".into())),
                        ("http.route", AttrValue::Str("/orders".into())),
                        ("http.status_code", AttrValue::Int(201)),
                        ("user.id", AttrValue::Int(i as i64)),
                    ],
                )
            } else {
                span(
                    i,
                    n,
                    Some(0),
                    &format!("SELECT orders.q{}", n % 10),
                    &[
                        ("db.system", AttrValue::Str("postgresql".into())),
                        (
                            "db.statement",
                            AttrValue::Str(format!(
                                "SELECT * FROM orders WHERE id = $1 -- q{}",
                                n % 10
                            )),
                        ),
                        ("db.rows", AttrValue::Int((n % 5) as i64)),
                    ],
                )
            }
        })
        .collect()
}

fn step(n: usize, failed: bool) -> StepResult {
    StepResult {
        name: format!("step-{n}"),
        service: "app".into(),
        command: format!("curl -fsS http://orders:8080/orders/{n}"),
        exit_code: Some(if failed { 22 } else { 0 }),
        status: if failed {
            Status::Failed
        } else {
            Status::Passed
        },
        reason: None,
        message: failed.then(|| "exit code 22, expected 0".into()),
        duration: Duration::from_millis(12 + n as u64),
        stdout: format!("{{\"id\": {n}, \"status\": \"created\"}}\n"),
        stderr: String::new(),
        tolerated: false,
        container: "4f2a9c1b7d3e".into(),
        attempts: 1,
        http_status: None,
        snapshot: None,
        at: None,
    }
}

fn diff() -> ScenarioDiff {
    let node = |name: &str, mark, attrs| DiffNode {
        name: name.into(),
        kind: SpanKind::Client,
        mark,
        attrs,
        kind_change: None,
        status_change: None,
        events_change: None,
        duration_change: None,
        children: Vec::new(),
    };
    let mut root = node(
        "POST /orders",
        Mark::Changed,
        vec![AttrChange {
            key: "http.status_code".into(),
            old: Some(AttrValue::Int(201)),
            new: Some(AttrValue::Int(500)),
        }],
    );
    root.children = vec![
        node("SELECT orders.q1", Mark::Same, vec![]),
        node("INSERT audit", Mark::Missing, vec![]),
    ];
    ScenarioDiff {
        counts: Counts {
            changed: 1,
            missing: 1,
            extra: 0,
        },
        tree: TreeDiff { roots: vec![root] },
        max_depth: 10,
    }
}

fn report(scenarios: usize, spans: usize) -> RunReport {
    let results = (0..scenarios)
        .map(|i| {
            let failed = i.is_multiple_of(20);
            ScenarioResult {
                id: ScenarioId(format!("tests/orders-{}.clnrm.toml::order {i}", i / 50)),
                file_index: i / 50,
                file: format!("tests/orders-{}.clnrm.toml", i / 50),
                name: format!("order {i}"),
                tags: vec![if i.is_multiple_of(2) { "smoke" } else { "api" }.into()],
                status: if failed {
                    Status::Failed
                } else {
                    Status::Passed
                },
                reason: None,
                message: failed.then(|| "step \"step-2\": exit code 22, expected 0".into()),
                start: Duration::from_millis(i as u64 * 10),
                duration: Duration::from_millis(180 + (i % 40) as u64),
                setup: Duration::from_millis(3),
                steps: (0..3).map(|n| step(n, failed && n == 2)).collect(),
                spans,
                unmet: Vec::new(),
                diff: failed.then(diff),
                services: Vec::new(),
                earlier: Vec::new(),
            }
        })
        .collect();
    RunReport {
        run_id: "bench0000001".into(),
        results,
        duration: Duration::from_secs(95),
        interrupted: false,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Renders `report` as `clnrm run` does: each scenario's `spans` saved as its
/// artifact under `dir` first (not timed), then read back by `artifact_spans` while
/// the page is written (timed, median of 5).
fn render(report: &RunReport, spans: usize, dir: &Path) -> (String, f64) {
    let artifacts = dir.join("artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    for (i, r) in report.results.iter().enumerate() {
        clnrm_core::otel::artifacts::save(&artifacts, &r.id.0, &report.run_id, &spans_of(i, spans))
            .expect("save spans");
    }
    let runs = [report.run_id.clone()];
    let mut times = Vec::new();
    let mut html = String::new();
    for _ in 0..5 {
        let t = Instant::now();
        html = to_html(report, &artifact_spans(&artifacts, &runs));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (html, median(times))
}

async fn load(b: &browser::Browser, url: &str) -> (f64, f64) {
    // A blank page between loads, so each is a whole navigation.
    b.client.goto("about:blank").await.expect("blank");
    let t = Instant::now();
    b.client.goto(url).await.expect("goto");
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    let ready = b
        .until(
            "the page",
            Duration::from_secs(30),
            "return document.documentElement.dataset.ready",
        )
        .await;
    let ready: f64 = ready.as_str().and_then(|s| s.parse().ok()).expect("a time");
    (ready, wall)
}

#[tokio::main]
async fn main() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-bench");
    std::fs::create_dir_all(&dir).expect("dir");

    let big = report(SCENARIOS, SPANS);
    let (html, render_ms) = render(&big, SPANS, &dir);
    let path = dir.join("report-1000x50.html");
    std::fs::write(&path, &html).expect("write");
    let mb = html.len() as f64 / 1e6;
    println!(
        "report.html, {SCENARIOS} scenarios x {SPANS} spans: {:.2} MB (budget 5 MB), rendered in {render_ms:.0} ms (median of 5)",
        mb
    );

    let wide = report(1, 10_000);
    let (html10k, _) = render(&wide, 10_000, &dir);
    let path10k = dir.join("report-10000-spans.html");
    std::fs::write(&path10k, &html10k).expect("write");

    let b = browser::Browser::start(1280, 900, "light").await;
    let url = format!("file://{}", path.display());
    let mut ready = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..5 {
        let (r, w) = load(&b, &url).await;
        ready.push(r);
        wall.push(w);
    }
    let rows = b
        .js(
            "return document.querySelectorAll('table.scenarios tbody tr').length",
            vec![],
        )
        .await;
    println!(
        "  interactive in Chromium: {:.0} ms median (budget 1000 ms; runs {:?}), navigation wall {:.0} ms median; {rows} rows listed",
        median(ready.clone()),
        ready.iter().map(|x| x.round()).collect::<Vec<_>>(),
        median(wall)
    );
    // A scenario page of the big report.
    let mut page = Vec::new();
    for _ in 0..5 {
        page.push(load(&b, &format!("{url}#/s/20")).await.0);
    }
    println!(
        "  a failed scenario's page (steps, 50-span waterfall, diff), opened directly: {:.0} ms median",
        median(page)
    );

    let url10k = format!("file://{}#/s/0", path10k.display());
    let mut ready10k = Vec::new();
    for _ in 0..5 {
        ready10k.push(load(&b, &url10k).await.0);
    }
    let drawn = b.js("return [document.querySelectorAll('.wf-row').length, Number(document.querySelector('.waterfall').dataset.rows)]", vec![]).await;
    // Scrolling to the middle: the time until the rows there are drawn.
    let scroll = b
        .js(
            "const s = document.querySelector('.wf-scroll'); const t = performance.now(); s.scrollTop = 5000 * 24;
             return new Promise(done => { const check = () => document.querySelector('.wf-row[data-row=\"5000\"]') ? done(performance.now() - t) : requestAnimationFrame(check); check(); });",
            vec![],
        )
        .await;
    println!(
        "report.html with one scenario of 10,000 spans: {:.2} MB; its page interactive in {:.0} ms median; {} of {} rows in the page; scrolled to row 5,000 and drawn in {:.1} ms",
        html10k.len() as f64 / 1e6,
        median(ready10k),
        drawn[0],
        drawn[1],
        scroll.as_f64().unwrap_or(f64::NAN)
    );
    b.close().await;
}
