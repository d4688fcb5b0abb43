//! `report.html` and the web UI of `clnrm serve` (SPEC §10) in real headless Chromium
//! over WebDriver: reports of real runs (the real engine, spans printed by a step),
//! and a real server whose run the page follows live. Screenshots of every page go
//! to `target/tmp/screenshots/` (CI keeps them).
mod common;

#[path = "common/browser.rs"]
mod browser;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/server.rs"]
mod server;

use browser::Browser;
use common::{clnrm, project};
use engine::IMAGE;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const ARROW_DOWN: &str = "\u{E015}";

/// A step that prints a trace: a root `checkout` (500 ms, attribute `version`) and
/// children `step-01`…`step-NN` (`step-13` an error), then `extra` lines as given.
fn spans_step(version: &str, children: u32, extra: &str) -> String {
    format!(
        r#"[[scenario.steps]]
name = "emit"
command = ["sh", "-c", '''
t=0af7651916cd43dd8448eb211c80319c
printf '{{"name":"checkout","trace_id":"%s","span_id":"a000000000000000","kind":"server","start_time_unix_nano":1000000000,"end_time_unix_nano":1500000000,"attributes":{{"version":"{version}"}},"status":"OK"}}\n' $t
i=1
while [ $i -le {children} ]; do
  s=$((1000000000 + i * 9000000)); d=$(( (i % 7 + 1) * 5000000 ))
  st=OK; [ $i -eq 13 ] && st=ERROR
  printf '{{"name":"step-%02d","trace_id":"%s","span_id":"b%015d","parent_span_id":"a000000000000000","kind":"client","start_time_unix_nano":%d,"end_time_unix_nano":%d,"attributes":{{"i":%d}},"status":"%s"}}\n' $i $t $i $s $((s + d)) $i $st
  i=$((i + 1))
done
{extra}
''']
"#
    )
}

fn shop(version: &str, children: u32, extra: &str) -> String {
    format!(
        r#"[meta]
name = "shop"
version = "1"

[service.app]
image = "{IMAGE}"
args = ["sh", "-c", "echo 'app: listening on :8080'; echo '<b>not bold</b>'; sleep 3600"]

[[scenario]]
name = "checkout"
service = "app"

{}
[[scenario]]
name = "<img src=x onerror=window.__pwned=1> refunds"
service = "app"

[[scenario.steps]]
name = "refund"
command = ["sh", "-c", "echo '<script>window.__pwned=2</script>'; echo 'refund failed' >&2; exit 3"]

[[scenario]]
name = "ping"
service = "app"
run = "echo pong"
"#,
        spans_step(version, children, extra)
    )
}

/// A report of a run with a failure, a baseline diff and 50 spans: the baseline from
/// a first run (50 spans, `version` v1), then a run in which `version` is v2, `step-49`
/// is gone and `audit` is new.
fn report_with_a_diff(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("tests/shop.clnrm.toml");
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(&file, shop("v1", 49, "")).unwrap();
    let first = clnrm(dir)
        .args(["run", "--update-baseline", "tests/"])
        .output()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(1),
        "the refund fails: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let audit = r#"printf '{"name":"audit","trace_id":"%s","span_id":"c000000000000000","parent_span_id":"a000000000000000","kind":"internal","start_time_unix_nano":1480000000,"end_time_unix_nano":1490000000}\n' $t"#;
    std::fs::write(&file, shop("v2", 48, audit)).unwrap();
    let out = clnrm(dir)
        .args(["run", "--force", "--report-dir", "out", "tests/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap())
            .unwrap();
    let checkout = &report["scenarios"][0];
    assert_eq!(checkout["spans"], 50, "{checkout:#}");
    assert!(checkout["diff"].is_object(), "{checkout:#}");
    dir.join("out/report.html")
}

fn url_of(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_shows_the_run_its_steps_logs_waterfall_and_diff_in_chromium() {
    let dir = project(&[]);
    let html = report_with_a_diff(dir.path());
    let b = Browser::start(1280, 900, "light").await;
    b.client.goto(&url_of(&html)).await.unwrap();
    b.until(
        "the report",
        Duration::from_secs(10),
        "return document.documentElement.dataset.ready",
    )
    .await;

    // The run: both scenarios, the failure counted; the injected name is text.
    let rows = b.js("return [...document.querySelectorAll('table.scenarios tbody tr')].map(r => [r.dataset.status, r.cells[1].textContent])", vec![]).await;
    // (checkout differs from its baseline, which fails it.)
    assert_eq!(
        rows,
        json!([
            ["failed", "checkout"],
            ["failed", "<img src=x onerror=window.__pwned=1> refunds"],
            ["passed", "ping"]
        ])
    );
    let summary = b.text(".summary").await;
    assert!(summary.starts_with("1 passed0 flaky2 failed"), "{summary}");
    b.screenshot("report-run").await;

    // Filters: by status, and by text.
    b.js(
        "document.querySelector('input[name=status][value=passed]').click()",
        vec![],
    )
    .await;
    let shown = b.js("return [...document.querySelectorAll('table.scenarios tbody tr')].filter(r => !r.hidden).map(r => r.dataset.status)", vec![]).await;
    assert_eq!(shown, json!(["passed"]));
    b.js(
        "document.querySelector('input[name=status][value=passed]').click()",
        vec![],
    )
    .await;
    let search = b
        .client
        .find(fantoccini::Locator::Css("input[name=q]"))
        .await
        .unwrap();
    search.send_keys("check").await.unwrap();
    let shown = b.js("return [...document.querySelectorAll('table.scenarios tbody tr')].filter(r => !r.hidden).length", vec![]).await;
    assert_eq!(shown, 1);

    // The failed scenario: its step's command, output and log tail, all as text.
    b.client
        .goto(&format!("{}#/s/1", url_of(&html)))
        .await
        .unwrap();
    b.until(
        "the scenario page",
        Duration::from_secs(5),
        "return document.querySelector('.step')",
    )
    .await;
    let out = b.text(".step .stdout pre").await;
    assert_eq!(out, "<script>window.__pwned=2</script>\n");
    let err = b.text(".step .stderr pre").await;
    assert_eq!(err, "refund failed\n");
    let log = b.text("pre.log").await;
    assert!(
        log.contains("app: listening on :8080") && log.contains("<b>not bold</b>"),
        "{log}"
    );
    let title = b.text("h1").await;
    assert_eq!(title, "failed <img src=x onerror=window.__pwned=1> refunds");
    // No markup from the report was parsed: no image, no script ran.
    let injected = b.js("return [window.__pwned === undefined, document.querySelectorAll('#app img, #app script, #app b').length]", vec![]).await;
    assert_eq!(injected, json!([true, 0]));
    b.screenshot("report-scenario-failed").await;

    // The one with spans: the waterfall in tree order, bars to scale, the error marked.
    b.client
        .goto(&format!("{}#/s/0", url_of(&html)))
        .await
        .unwrap();
    b.until(
        "the waterfall",
        Duration::from_secs(5),
        "return document.querySelectorAll('.wf-row').length > 20",
    )
    .await;
    let total = b
        .js(
            "return Number(document.querySelector('.waterfall').dataset.total)",
            vec![],
        )
        .await;
    assert_eq!(total, 500_000, "µs from the first start to the last end");
    let drawn = b.js(
        "return [...document.querySelectorAll('.wf-row')].sort((a, b) => a.dataset.row - b.dataset.row).map(r => {
           const bar = r.querySelector('.wf-bar').getBoundingClientRect();
           const track = r.querySelector('.wf-track').getBoundingClientRect();
           return [Number(r.dataset.row), r.dataset.name, Number(r.dataset.depth), Number(r.dataset.dur), bar.width, track.width, bar.left - track.left, r.classList.contains('err')];
         })",
        vec![],
    )
    .await;
    let drawn = drawn.as_array().unwrap();
    let rows_total = b
        .js(
            "return Number(document.querySelector('.waterfall').dataset.rows)",
            vec![],
        )
        .await;
    assert_eq!(rows_total, 50);
    assert!(
        drawn.len() < 50,
        "only the rows in view are drawn: {}",
        drawn.len()
    );
    for (k, r) in drawn.iter().enumerate() {
        let (row, name, depth, dur) = (
            r[0].as_u64().unwrap(),
            r[1].as_str().unwrap(),
            r[2].as_u64().unwrap(),
            r[3].as_f64().unwrap(),
        );
        let (bar, track, left, err) = (
            r[4].as_f64().unwrap(),
            r[5].as_f64().unwrap(),
            r[6].as_f64().unwrap(),
            r[7].as_bool().unwrap(),
        );
        assert_eq!(row, k as u64);
        if k == 0 {
            assert_eq!((name, depth), ("checkout", 0));
            assert!(
                (bar - track).abs() < 1.0,
                "the root spans the whole track: {bar} of {track}"
            );
        } else {
            let i = k as u64;
            assert_eq!(
                (name, depth),
                (format!("step-{i:02}").as_str(), 1),
                "row {k}"
            );
            let want_dur = ((i % 7 + 1) * 5000) as f64;
            assert_eq!(dur, want_dur, "row {k}");
            let want_width = track * want_dur / 500_000.0;
            assert!(
                (bar - want_width).abs() < 1.0,
                "row {k}: bar {bar} px, {want_width} px to scale"
            );
            let want_left = track * (i * 9000) as f64 / 500_000.0;
            assert!(
                (left - want_left).abs() < 1.0,
                "row {k}: at {left} px, {want_left} px to scale"
            );
            assert_eq!(err, i == 13, "row {k}: only step-13 is an error");
        }
    }
    let mark = b.text(".wf-row[data-name=\"step-13\"] .err-mark").await;
    assert_eq!(mark, "!");

    // Selection: a click shows the attributes; the keyboard moves it.
    b.js(
        "document.querySelector('.wf-row[data-name=\"step-13\"]').click()",
        vec![],
    )
    .await;
    let detail = b.text(".span-detail").await;
    assert!(
        detail.contains("step-13") && detail.contains("ERROR") && detail.contains("i13"),
        "{detail}"
    );
    let scroller = b
        .client
        .find(fantoccini::Locator::Css(".wf-scroll"))
        .await
        .unwrap();
    scroller.send_keys(ARROW_DOWN).await.unwrap();
    let now = b.text(".span-detail h3").await;
    assert_eq!(now, "step-14");
    b.screenshot("report-scenario-waterfall").await;

    // Scrolled to the end, the last rows are drawn (and the first are not).
    b.js(
        "const s = document.querySelector('.wf-scroll'); s.scrollTop = s.scrollHeight",
        vec![],
    )
    .await;
    b.until(
        "the last row",
        Duration::from_secs(5),
        "return document.querySelector('.wf-row[data-name=audit]')",
    )
    .await;
    let first_gone = b
        .js(
            "return !document.querySelector('.wf-row[data-row=\"0\"]')",
            vec![],
        )
        .await;
    assert_eq!(first_gone, true);

    // The diff tree: ~ on the root with old → new, + audit, - step-49, = the rest
    // (ASCII marks drawn as badges: no emoji font needed).
    let marks = b.js(
        "return [...document.querySelectorAll('.diff-tree li[data-mark]')].map(li => [li.dataset.mark, li.dataset.name, li.querySelector('.mark').textContent])",
        vec![],
    )
    .await;
    let marks = marks.as_array().unwrap();
    assert_eq!(marks[0], json!(["changed", "checkout", "~"]));
    let of = |name: &str| marks.iter().find(|m| m[1] == name).cloned();
    assert_eq!(of("audit"), Some(json!(["extra", "audit", "+"])));
    assert_eq!(of("step-49"), Some(json!(["missing", "step-49", "-"])));
    assert_eq!(of("step-01"), Some(json!(["same", "step-01", "="])));
    let change = b.text(".diff-tree .change").await;
    assert_eq!(change, "version: \"v1\" → \"v2\"");
    b.screenshot("report-scenario-diff").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_is_dark_in_dark_mode_and_fits_a_phone() {
    let dir = project(&[]);
    let html = report_with_a_diff(dir.path());
    let dark = Browser::start(1280, 900, "dark").await;
    dark.client.goto(&url_of(&html)).await.unwrap();
    dark.until(
        "the report",
        Duration::from_secs(10),
        "return document.documentElement.dataset.ready",
    )
    .await;
    let bg = dark
        .js("return [matchMedia('(prefers-color-scheme: dark)').matches, getComputedStyle(document.body).backgroundColor]", vec![])
        .await;
    assert_eq!(bg, json!([true, "rgb(13, 17, 23)"]));
    dark.screenshot("report-run-dark").await;
    dark.close().await;

    let phone = Browser::start(390, 844, "light").await;
    for (page, name, shown) in [
        ("", "report-run-phone", "table.scenarios"),
        ("#/s/0", "report-scenario-phone", ".waterfall"),
    ] {
        phone
            .client
            .goto(&format!("{}{page}", url_of(&html)))
            .await
            .unwrap();
        let drawn = format!("return document.querySelector('{shown}')");
        phone
            .until("the page", Duration::from_secs(10), &drawn)
            .await;
        // Nothing wider than the screen: no sideways scrolling of the page.
        let widths = phone
            .js(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await;
        assert!(widths[0].as_u64() <= widths[1].as_u64(), "{page}: {widths}");
        phone.screenshot(name).await;
    }
    phone.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_span_waterfall_draws_only_the_rows_in_view() {
    let body = format!(
        r#"[meta]
name = "big"
version = "1"

[service.app]
image = "{IMAGE}"

[[scenario]]
name = "many spans"

[[scenario.steps]]
name = "emit"
command = ["sh", "-c", '''
i=0
while [ $i -lt 10000 ]; do
  printf '{{"name":"op-%05d","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"%016x","start_time_unix_nano":%d,"end_time_unix_nano":%d}}\n' $i $((i + 1)) $((1000000000 + i * 1000)) $((1000001000 + i * 1000))
  i=$((i + 1))
done
''']
"#
    );
    let dir = project(&[("tests/big.clnrm.toml", &body)]);
    let out = clnrm(dir.path())
        .args(["run", "--report-dir", "out", "tests/"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = Browser::start(1280, 900, "light").await;
    b.client
        .goto(&format!(
            "{}#/s/0",
            url_of(&dir.path().join("out/report.html"))
        ))
        .await
        .unwrap();
    b.until(
        "the waterfall",
        Duration::from_secs(10),
        "return document.querySelector('.wf-row')",
    )
    .await;
    let (rows, drawn) = (
        b.js(
            "return Number(document.querySelector('.waterfall').dataset.rows)",
            vec![],
        )
        .await,
        b.js("return document.querySelectorAll('.wf-row').length", vec![])
            .await,
    );
    assert_eq!(rows, 10_000);
    assert!(
        drawn.as_u64().unwrap() < 100,
        "{drawn} rows drawn of 10,000"
    );
    // Scrolling to the middle draws the rows there, and still only a few.
    b.js(
        "const s = document.querySelector('.wf-scroll'); s.scrollTop = 5000 * 24",
        vec![],
    )
    .await;
    b.until(
        "row 5000",
        Duration::from_secs(5),
        "return document.querySelector('.wf-row[data-name=\"op-05000\"]')",
    )
    .await;
    let drawn = b
        .js("return document.querySelectorAll('.wf-row').length", vec![])
        .await;
    assert!(
        drawn.as_u64().unwrap() < 100,
        "{drawn} rows drawn of 10,000"
    );
    b.screenshot("report-waterfall-10000").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_a_run_started_while_it_is_open_progressing_live() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server::serve(dir.path(), &[]);
    let read = server::token(dir.path(), "read");
    let run = server::token(dir.path(), "run");
    let b = Browser::start(1280, 900, "light").await;
    let base = format!("http://{}", srv.addr);
    b.client.goto(&format!("{base}/")).await.unwrap();
    // Signing in with a token; the list is empty.
    let input = b
        .client
        .wait()
        .for_element(fantoccini::Locator::Css("input[name=token]"))
        .await
        .unwrap();
    input.send_keys(&read).await.unwrap();
    b.client
        .find(fantoccini::Locator::Css("form.token button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.until(
        "the runs list",
        Duration::from_secs(10),
        "return document.querySelector('table.runs')",
    )
    .await;
    b.screenshot("ui-runs-empty").await;

    // A run submitted now appears in the open list.
    // s1 prints a span too (the service keeps it for the scenario's page and report.html).
    let span = r#"{"name":"ui.span","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"00f067aa0ba902b7","start_time_unix_nano":1000000,"end_time_unix_nano":3000000}"#;
    let step = |n: u32| {
        let print = if n == 1 {
            format!("echo '{span}'; ")
        } else {
            String::new()
        };
        format!(
            "[[scenario]]\nname = \"s{n}\"\n\n[[scenario.steps]]\nname = \"wait\"\ncommand = ['sh', '-c', '''{print}sleep 1''']\n"
        )
    };
    let body = format!(
        "[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n{}{}{}",
        step(1),
        step(2),
        step(3)
    );
    let a = server::post_json(
        &srv.addr,
        "/api/v1/runs",
        &run,
        &json!({"files": {"tests/a.clnrm.toml": body}, "options": {"workers": 1}}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let row = format!("return document.querySelector('tr[data-run=\"{id}\"] a')");
    b.until("the new run in the list", Duration::from_secs(10), &row)
        .await;
    b.screenshot("ui-runs").await;
    b.js(
        &format!("document.querySelector('tr[data-run=\"{id}\"] a').click()"),
        vec![],
    )
    .await;

    // Its page follows the events: the count of finished scenarios goes up, live.
    let mut seen = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let state = b
            .js("const p = document.querySelector('.progress-text'); return [p ? p.textContent : null, !!document.querySelector('.summary')]", vec![])
            .await;
        if let Some(text) = state[0].as_str()
            && seen.last().map(String::as_str) != Some(text)
        {
            seen.push(text.to_owned());
            if text.starts_with("1 of 3") {
                b.screenshot("ui-run-live").await;
            }
        }
        if state[1] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run did not end: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.iter().any(|t| t.starts_with("1 of 3")), "{seen:?}");
    assert!(seen.iter().any(|t| t.starts_with("2 of 3")), "{seen:?}");
    // Once it ended, the page is the run's report.
    let summary = b.text(".summary").await;
    assert!(summary.starts_with("3 passed"), "{summary}");
    let rows = b
        .js(
            "return document.querySelectorAll('table.scenarios tbody tr').length",
            vec![],
        )
        .await;
    assert_eq!(rows, 3);
    b.screenshot("ui-run").await;

    // A scenario's page, and its history with the flaky rate.
    b.js(
        "document.querySelector('table.scenarios tbody tr a').click()",
        vec![],
    )
    .await;
    b.until(
        "the scenario page",
        Duration::from_secs(10),
        "return document.querySelector('.step')",
    )
    .await;
    let cmd = b.text(".step .command").await;
    assert!(cmd.ends_with("sleep 1'"), "{cmd}");
    let span_row = b
        .until(
            "the span",
            Duration::from_secs(10),
            "const r = document.querySelector('.wf-row'); return r && r.dataset.name",
        )
        .await;
    assert_eq!(span_row, "ui.span");
    b.screenshot("ui-scenario").await;
    b.js(
        "[...document.querySelectorAll('a')].find(a => a.textContent === 'history').click()",
        vec![],
    )
    .await;
    let rate = b
        .until(
            "the history",
            Duration::from_secs(10),
            "const e = document.querySelector('[data-flaky-rate]'); return e && e.textContent",
        )
        .await;
    assert_eq!(rate, "flaky rate 0.0%");
    b.screenshot("ui-history").await;

    // The report of the run as one page, from the service.
    let page = server::get(
        &srv.addr,
        &format!("/api/v1/runs/{id}/report?format=html"),
        &read,
    );
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("id=\"clnrm-data\""));

    // `run --server … --format html` prints it, and `--report-dir` keeps it.
    let proj = project(&[("tests/a.clnrm.toml", &body)]);
    let out = clnrm(proj.path())
        .args([
            "run",
            "--format",
            "html",
            "--report-dir",
            "out",
            "--filter",
            "*::s1",
        ])
        .args(["--server", &base, "--token", &run, "tests/"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.starts_with("<!doctype html>"), "{printed}");
    let kept = std::fs::read_to_string(proj.path().join("out/report.html")).unwrap();
    assert_eq!(kept, printed);
    b.client
        .goto(&url_of(&proj.path().join("out/report.html")))
        .await
        .unwrap();
    let rows = b
        .until("the report", Duration::from_secs(10), "return document.querySelectorAll('table.scenarios tbody tr[data-status=passed]').length")
        .await;
    assert_eq!(rows, 1);
    // The service's page holds the spans it kept.
    b.js(
        "document.querySelector('table.scenarios tbody tr[data-status=passed] a').click()",
        vec![],
    )
    .await;
    let row = b
        .until(
            "the waterfall",
            Duration::from_secs(10),
            "const r = document.querySelector('.wf-row'); return r && r.dataset.name",
        )
        .await;
    assert_eq!(row, "ui.span");
    b.close().await;
}
