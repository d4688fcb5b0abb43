//! `clnrm serve` and `clnrm worker` end to end (SPEC §9): real processes, a real
//! SQLite database, the real container engine with `clnrm/busybox:latest`; clients
//! speak plain HTTP/1.1 to them.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/server.rs"]
mod server;

use engine::IMAGE;
use serde_json::{Value, json};
use server::{Answer, events, get, post_json, request, serve, tar_gz, token, until};
use std::time::Duration;

fn file(body: &str) -> String {
    format!("[meta]\nname = \"t\"\nversion = \"1\"\n\n[service.app]\nimage = \"{IMAGE}\"\n\n{body}")
}

fn submit(addr: &str, token: &str, files: Value, options: Value) -> Answer {
    post_json(
        addr,
        "/api/v1/runs",
        token,
        &json!({"files": files, "options": options}),
    )
}

fn status_of(addr: &str, token: &str, id: &str) -> String {
    get(addr, &format!("/api/v1/runs/{id}"), token).json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_submitted_run_streams_its_events_and_reports_like_a_local_run() {
    let dir = tempfile::tempdir().unwrap();
    submitted_run(dir.path(), &server::database(dir.path()));
}

#[test]
fn on_postgresql_a_submitted_run_streams_its_events_and_reports_like_a_local_run() {
    let dir = tempfile::tempdir().unwrap();
    submitted_run(dir.path(), &server::postgres());
}

/// Submit, follow, replay, resume, then every view of the run, on the database at `url`.
fn submitted_run(dir: &std::path::Path, url: &str) {
    let srv = server::serve_on(dir, url, &[]);
    let run_token = server::token_on(dir, url, "run");
    let files = json!({
        "tests/a.clnrm.toml": file("[[scenario]]\nname = \"ok\"\ntags = [\"smoke\"]\nrun = \"echo hello\"\n\n[[scenario]]\nname = \"bad\"\nrun = \"sh -c 'echo oops; exit 3'\"\n"),
    });
    let a = submit(&srv.addr, &run_token, files, json!({"workers": 2}));
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(a.json()["status"], "queued");
    assert_eq!(
        a.header("location"),
        Some(format!("/api/v1/runs/{id}").as_str())
    );

    // Followed from the start: every event, ending with run.finished.
    let path = format!("/api/v1/runs/{id}/events");
    let live = events(&srv.addr, &path, &run_token, None);
    let names: Vec<&str> = live.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.started"), "{names:?}");
    assert_eq!(names.last(), Some(&"run.finished"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "scenario.finished").count(),
        2
    );
    assert_eq!(names.iter().filter(|n| **n == "step.finished").count(), 2);
    // A client that connects late sees the same; Last-Event-ID resumes after it.
    let late = events(&srv.addr, &path, &run_token, None);
    assert_eq!(late, live);
    let resumed = events(&srv.addr, &path, &run_token, live[1].id.as_deref());
    assert_eq!(resumed, live[2..].to_vec());

    let run = get(&srv.addr, &format!("/api/v1/runs/{id}"), &run_token).json();
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["summary"]["passed"], 1);
    assert_eq!(run["summary"]["failed"], 1);
    assert_eq!(run["attempts"], 1);

    let report = get(&srv.addr, &format!("/api/v1/runs/{id}/report"), &run_token).json();
    let bad = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bad")
        .unwrap()
        .clone();
    assert_eq!(bad["steps"][0]["exit_code"], 3);
    assert_eq!(bad["steps"][0]["stdout"], "oops\n");
    let junit = get(
        &srv.addr,
        &format!("/api/v1/runs/{id}/report?format=junit"),
        &run_token,
    );
    assert_eq!(junit.header("content-type"), Some("application/xml"));
    assert!(
        junit
            .body
            .contains("<failure message=\"step &quot;run&quot;: exit code 3, expected 0\""),
        "{}",
        junit.body
    );
    let md = get(
        &srv.addr,
        &format!("/api/v1/runs/{id}/report?format=markdown"),
        &run_token,
    );
    assert!(md.body.contains("1 passed, 1 failed"), "{}", md.body);

    let list = get(
        &srv.addr,
        &format!("/api/v1/runs/{id}/scenarios"),
        &run_token,
    )
    .json();
    assert_eq!(list["scenarios"].as_array().unwrap().len(), 2);
    let sid = "tests%2Fa.clnrm.toml%3A%3Aok";
    let one = get(
        &srv.addr,
        &format!("/api/v1/runs/{id}/scenarios/{sid}"),
        &run_token,
    )
    .json();
    assert_eq!(one["tags"], json!(["smoke"]));
    assert_eq!(one["steps"][0]["stdout"], "hello\n");
    let history = get(
        &srv.addr,
        &format!("/api/v1/scenarios/{sid}/history"),
        &run_token,
    )
    .json();
    assert_eq!(history["runs"].as_array().unwrap().len(), 1, "{history:#}");
    assert_eq!(history["flaky_rate"], 0.0);

    // Newest first, keyset pagination.
    let second = submit(
        &srv.addr,
        &run_token,
        json!({"tests/b.clnrm.toml": file("[[scenario]]\nname = \"b\"\nrun = \"true\"\n")}),
        json!({}),
    );
    let second = second.json()["id"].as_str().unwrap().to_owned();
    let page = get(&srv.addr, "/api/v1/runs?limit=1", &run_token).json();
    assert_eq!(page["runs"][0]["id"], second.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = get(
        &srv.addr,
        &format!("/api/v1/runs?limit=1&cursor={cursor}"),
        &run_token,
    )
    .json();
    assert_eq!(next["runs"][0]["id"], id.as_str());
    until("the second run", Duration::from_secs(60), || {
        status_of(&srv.addr, &run_token, &second) == "passed"
    });
    let metrics = get(&srv.addr, "/metrics", &run_token);
    assert!(
        metrics.body.contains("clnrm_runs{status=\"passed\"} 1"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("clnrm_workers_alive 1"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("clnrm_scenario_duration_seconds_bucket{le=\"+Inf\"} 3"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("clnrm_queue_depth 0"),
        "{}",
        metrics.body
    );
}

#[test]
fn tokens_are_required_and_scoped() {
    let dir = tempfile::tempdir().unwrap();
    let srv = serve(dir.path(), &["--no-worker"]);
    let read = token(dir.path(), "read");
    let run = token(dir.path(), "run");
    let files = json!({"tests/a.clnrm.toml": file("[[scenario]]\nname = \"s\"\nrun = \"true\"\n")});
    let body = json!({"files": files});
    assert_eq!(request(&srv.addr, "GET", "/healthz", &[], b"").status, 200);
    let none = request(&srv.addr, "GET", "/api/v1/runs", &[], b"");
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(get(&srv.addr, "/api/v1/runs", "clnrm_wrong").status, 401);
    assert_eq!(request(&srv.addr, "GET", "/metrics", &[], b"").status, 401);
    assert_eq!(get(&srv.addr, "/api/v1/runs", &read).status, 200);
    let refused = post_json(&srv.addr, "/api/v1/runs", &read, &body);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("scope is read")
    );
    let made = post_json(&srv.addr, "/api/v1/runs", &run, &body);
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.json()["id"].as_str().unwrap().to_owned();
    let cancel = format!("/api/v1/runs/{id}/cancel");
    assert_eq!(post_json(&srv.addr, &cancel, &read, &json!({})).status, 403);
    // Queued (no worker): cancelled at once, and its stream ends.
    let c = post_json(&srv.addr, &cancel, &run, &json!({}));
    assert_eq!(
        (c.status, c.json()["status"].as_str()),
        (200, Some("cancelled"))
    );
    let ev = events(&srv.addr, &format!("/api/v1/runs/{id}/events"), &read, None);
    assert_eq!(ev.last().map(|e| e.event.as_str()), Some("run.finished"));
    // It ended: its (empty) report is there.
    let report = get(&srv.addr, &format!("/api/v1/runs/{id}/report"), &read);
    assert_eq!(report.status, 200, "{}", report.body);
    assert_eq!(report.json()["scenarios"], json!([]));
    assert_eq!(get(&srv.addr, "/api/v1/runs/nope", &read).status, 404);
    // Tokens over the API: admin only; a deleted token stops working at once.
    let admin = token(dir.path(), "admin");
    let new = json!({"scope": "read", "name": "ci"});
    assert_eq!(
        post_json(&srv.addr, "/api/v1/tokens", &run, &new).status,
        403
    );
    let made = post_json(&srv.addr, "/api/v1/tokens", &admin, &new);
    assert_eq!(made.status, 201, "{}", made.body);
    let fresh = made.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&srv.addr, "/api/v1/runs", &fresh).status, 200);
    let listed = get(&srv.addr, "/api/v1/tokens", &admin).json();
    let ci = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("listed")
        .clone();
    assert_eq!(ci["scope"], "read");
    assert!(
        !listed.to_string().contains(&fresh),
        "tokens are never listed"
    );
    let auth = format!("Bearer {admin}");
    let path = format!("/api/v1/tokens/{}", ci["id"]);
    let gone = request(&srv.addr, "DELETE", &path, &[("Authorization", &auth)], b"");
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(get(&srv.addr, "/api/v1/runs", &fresh).status, 401);
    let again = request(&srv.addr, "DELETE", &path, &[("Authorization", &auth)], b"");
    assert_eq!(again.status, 404);
    // The database keeps hashes only.
    let db = std::fs::read(dir.path().join("server.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("server.db-wal")).unwrap_or_default();
    for t in [&read, &run] {
        assert!(!String::from_utf8_lossy(&db).contains(t.as_str()));
        assert!(!String::from_utf8_lossy(&wal).contains(t.as_str()));
    }
}

#[test]
fn uploads_that_escape_link_out_mount_the_host_or_are_too_large_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = serve(dir.path(), &["--no-worker", "--max-upload-mb", "1"]);
    let t = token(dir.path(), "run");
    let auth = format!("Bearer {t}");
    let ok = file("[[scenario]]\nname = \"s\"\nrun = \"true\"\n");
    let detail = |a: &Answer| a.json()["detail"].as_str().unwrap_or_default().to_owned();
    for path in ["../escape.clnrm.toml", "/etc/x.clnrm.toml", "tests/../../x"] {
        let a = submit(&srv.addr, &t, json!({ path: ok }), json!({}));
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert!(detail(&a).contains("path"), "{}", a.body);
    }
    let gz = |bytes: Vec<u8>| {
        request(
            &srv.addr,
            "POST",
            "/api/v1/runs",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/gzip"),
            ],
            &bytes,
        )
    };
    let a = gz(tar_gz(&[("tests/a.clnrm.toml", ok.as_bytes())], None));
    assert_eq!(a.status, 201, "{}", a.body);
    let a = gz(tar_gz(&[("../../evil.clnrm.toml", ok.as_bytes())], None));
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(detail(&a).contains("escapes the project"), "{}", a.body);
    let a = gz(tar_gz(
        &[("tests/a.clnrm.toml", ok.as_bytes())],
        Some(("tests/b.clnrm.toml", "/etc/passwd")),
    ));
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(detail(&a).contains("link"), "{}", a.body);
    // A gzip bomb: 4 MiB of zeros in a few KiB.
    let a = gz(tar_gz(&[("tests/big.txt", &vec![0u8; 4 << 20])], None));
    assert_eq!(a.status, 413, "{}", a.body);
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/big.txt": "x".repeat(1100 << 10)}),
        json!({}),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    let mount = file("[[scenario]]\nname = \"s\"\nrun = \"true\"\n").replace(
        "image = \"clnrm/busybox:latest\"\n",
        "image = \"clnrm/busybox:latest\"\nvolumes = [{ host_path = \"/etc\", container_path = \"/x\", read_only = true }]\n",
    );
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/m.clnrm.toml": mount}),
        json!({}),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(detail(&a).contains("tests/m.clnrm.toml:7:"), "{}", a.body);
    assert!(detail(&a).contains("--allow-host-volumes"), "{}", a.body);
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/bad.clnrm.toml": "[meta]\nname = 1\n"}),
        json!({}),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(detail(&a).contains("error[E"), "{}", a.body);
    // Templates that recurse without end or nest too deep are diagnosed on the
    // server's own threads, never a crash of the server.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/broken");
    for name in [
        "macro-recursion.clnrm.toml.tera",
        "nested-too-deep.clnrm.toml.tera",
    ] {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let a = submit(
            &srv.addr,
            &t,
            json!({ format!("tests/{name}"): text }),
            json!({}),
        );
        assert_eq!(a.status, 422, "{name}: {}", a.body);
    }
    assert_eq!(request(&srv.addr, "GET", "/healthz", &[], b"").status, 200);
    // An upload cannot read the server's files or environment, nor write outside itself.
    let include = format!("{{% include \"/etc/passwd\" %}}\n{ok}");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/i.clnrm.toml.tera": include}),
        json!({}),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(!detail(&a).contains("root:"), "{}", a.body);
    let up = format!("{{% include \"../../../etc/hostname\" %}}\n{ok}");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/u.clnrm.toml.tera": up}),
        json!({}),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    let env = ok.replace("name = \"t\"", "name = \"{{ env(name='HOME') }}\"");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/e.clnrm.toml.tera": env}),
        json!({}),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(detail(&a).contains("env() is not available"), "{}", a.body);
    let report = format!("{ok}\n[report]\njson = \"../../../../tmp/clnrm-escape.json\"\n");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/r.clnrm.toml": report}),
        json!({}),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(detail(&a).contains("outside the project"), "{}", a.body);
    // A build context of the server's is refused before anything is said of it (the
    // builder would be sent its files): a directory with a Dockerfile (made here by
    // the test), and a device as the Dockerfile, which is not read.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("Dockerfile"),
        "FROM scratch AS secret\n",
    )
    .unwrap();
    for build in [
        format!("\"{}\"", outside.path().display()),
        "{ context = \"/dev\", dockerfile = \"zero\", target = \"x\" }".to_owned(),
        format!(
            "{{ context = \"{}\", target = \"secrt\" }}",
            outside.path().display()
        ),
    ] {
        let built = ok.replace(
            "[[scenario]]",
            &format!("[service.b]\nbuild = {build}\n\n[[scenario]]\nservice = \"app\""),
        );
        let a = submit(
            &srv.addr,
            &t,
            json!({"tests/b.clnrm.toml": built}),
            json!({}),
        );
        assert_eq!(a.status, 403, "{build}: {}", a.body);
        assert!(
            detail(&a).contains("service \"b\" is built from")
                && detail(&a).contains("outside the project")
                && !detail(&a).contains("secret"),
            "{}",
            a.body
        );
    }
    // A `.proto` of the server's is neither read nor compiled into an error message.
    std::fs::write(outside.path().join("secret.proto"), "secret tokens\n").unwrap();
    for proto in [
        format!("{}/secret.proto", outside.path().display()),
        "../../../../../../../../etc/passwd".to_owned(),
    ] {
        let called = ok.replace(
            "[[scenario]]",
            &format!(
                "[[scenario]]\nname = \"calls\"\nservice = \"app\"\n\n[[scenario.steps]]\nname = \"c\"\ngrpc = {{ target = \"app:50051\", method = \"p.S/M\", proto = [\"{proto}\"] }}\n\n[[scenario]]"
            ),
        );
        let a = submit(
            &srv.addr,
            &t,
            json!({"tests/g.clnrm.toml": called}),
            json!({}),
        );
        assert_eq!(a.status, 403, "{proto}: {}", a.body);
        assert!(
            detail(&a).contains("names the .proto")
                && detail(&a).contains("outside the project")
                && !detail(&a).contains("secret tokens")
                && !detail(&a).contains("root:"),
            "{}",
            a.body
        );
    }
    // A build inside the upload is refused too unless the server allows builds.
    let inside = ok.replace(
        "[[scenario]]",
        "[service.b]\nbuild = \"app\"\n\n[[scenario]]\nservice = \"app\"",
    );
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/b.clnrm.toml": inside, "tests/app/Dockerfile": "FROM scratch\n"}),
        json!({}),
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(detail(&a).contains("--allow-builds"), "{}", a.body);
    assert!(detail(&a).contains("tests/b.clnrm.toml:"), "{}", a.body);
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": ok}),
        json!({"colour": "red"}),
    );
    assert_eq!(a.status, 400, "{}", a.body);
    let a = request(
        &srv.addr,
        "POST",
        "/api/v1/runs",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(a.status, 415, "{}", a.body);
}

#[test]
fn a_running_run_is_cancelled_and_its_containers_removed() {
    let dir = tempfile::tempdir().unwrap();
    let srv = serve(dir.path(), &["--lease-secs", "2"]);
    let t = token(dir.path(), "run");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file("[[scenario]]\nname = \"slow\"\nrun = \"sleep 60\"\n")}),
        json!({}),
    );
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/runs/{id}/events");
    until("a worker to take it", Duration::from_secs(60), || {
        status_of(&srv.addr, &t, &id) == "running"
    });
    // Its step is under way (a cancel before it starts is a cancel too, but this is
    // the case to test).
    std::thread::sleep(Duration::from_millis(1500));
    let c = post_json(
        &srv.addr,
        &format!("/api/v1/runs/{id}/cancel"),
        &t,
        &json!({}),
    );
    assert_eq!(c.status, 202, "{}", c.body);
    let ev = events(&srv.addr, &path, &t, None);
    assert_eq!(ev.last().map(|e| e.event.as_str()), Some("run.finished"));
    assert_eq!(ev.last().unwrap().data["interrupted"], true);
    let done = ev
        .iter()
        .find(|e| e.event == "scenario.finished")
        .expect("its scenario ended");
    assert_eq!(done.data["status"], "skipped", "{:#}", done.data);
    assert_eq!(done.data["reason"], "interrupted");
    until("cancelled", Duration::from_secs(30), || {
        status_of(&srv.addr, &t, &id) == "cancelled"
    });
    let run_id = ev[0].data["run_id"].as_str().unwrap().to_owned();
    until("its containers removed", Duration::from_secs(30), || {
        engine::containers(&format!("clnrm.run={run_id}")).is_empty()
    });
}

#[test]
fn a_run_whose_worker_is_killed_is_finished_by_another_once() {
    let dir = tempfile::tempdir().unwrap();
    killed_worker(dir.path(), &server::database(dir.path()));
}

#[test]
fn on_postgresql_a_run_whose_worker_is_killed_is_finished_by_another_once() {
    let dir = tempfile::tempdir().unwrap();
    killed_worker(dir.path(), &server::postgres());
}

/// The API and two worker processes on one database; the first worker is killed with
/// -9 while it runs the run.
fn killed_worker(dir: &std::path::Path, url: &str) {
    let srv = server::serve_on(dir, url, &["--no-worker", "--lease-secs", "2"]);
    let t = server::token_on(dir, url, "run");
    let mut first = server::worker_on(dir, url, &["--lease-secs", "2"]);
    let scenario = "[[scenario]]\nname = \"steady\"\n\n[[scenario.steps]]\nname = \"wait\"\ncommand = [\"sleep\", \"3\"]\n";
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file(scenario)}),
        json!({}),
    );
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let run = |k: &str| get(&srv.addr, &format!("/api/v1/runs/{id}"), &t).json()[k].clone();
    until(
        "the first worker to take it",
        Duration::from_secs(60),
        || run("status") == "running",
    );
    let holder = run("worker");
    std::thread::sleep(Duration::from_millis(500));
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let _second = server::worker_on(dir, url, &["--lease-secs", "2"]);
    until(
        "another worker to finish it",
        Duration::from_secs(90),
        || run("status") == "passed",
    );
    assert_eq!(run("attempts"), 2);
    assert_ne!(run("worker"), holder);
    let sid = "tests%2Fa.clnrm.toml%3A%3Asteady";
    let history = get(&srv.addr, &format!("/api/v1/scenarios/{sid}/history"), &t).json();
    assert_eq!(
        history["runs"].as_array().unwrap().len(),
        1,
        "run to completion once: {history:#}"
    );
}

/// Output with timings and run ids made the same.
fn normalised(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut l = String::new();
        let mut rest = line;
        // "[  0.012s]" → "[T]"
        while let Some(start) = rest.find('[') {
            let (head, tail) = rest.split_at(start);
            l.push_str(head);
            match tail.find("s]") {
                Some(end) if tail[1..end].trim().parse::<f64>().is_ok() => {
                    l.push_str("[T]");
                    rest = &tail[end + 2..];
                }
                _ => {
                    l.push('[');
                    rest = &tail[1..];
                }
            }
        }
        l.push_str(rest);
        if let Some(i) = l.find("(run ") {
            l.truncate(i);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn run_with_server_prints_the_run_as_a_local_run_does_and_exits_the_same() {
    let db = tempfile::tempdir().unwrap();
    let srv = serve(db.path(), &[]);
    let t = token(db.path(), "run");
    let suite = file(
        "[[scenario]]\nname = \"ok\"\nrun = \"echo hello\"\n\n[[scenario]]\nname = \"bad\"\nrun = \"sh -c 'echo oops; exit 3'\"\n",
    );
    let project = common::project(&[
        ("tests/a.clnrm.toml", &suite),
        (".gitignore", "scratch/\n"),
        ("scratch/huge.bin", "not sent"),
    ]);
    let url = format!("http://{}", srv.addr);
    let remote = common::clnrm(project.path())
        .args(["run", "--workers", "1", "--server", &url, "--token", &t])
        .output()
        .unwrap();
    let local = common::clnrm(project.path())
        .args(["run", "--workers", "1", "--force"])
        .output()
        .unwrap();
    assert_eq!(
        remote.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    assert_eq!(remote.status.code(), local.status.code());
    let (r, l) = (
        String::from_utf8_lossy(&remote.stdout),
        String::from_utf8_lossy(&local.stdout),
    );
    assert!(r.contains("--- tests/a.clnrm.toml::bad ---"), "{r}");
    assert_eq!(normalised(&r), normalised(&l), "remote:\n{r}\nlocal:\n{l}");

    // JSON as a local run gives it; the .gitignored file was not sent.
    let out = common::clnrm(project.path())
        .args([
            "run", "--format", "json", "--filter", "*::ok", "--server", &url,
        ])
        .env("CLNRM_TOKEN", &t)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["passed"], 1);
    assert_eq!(v["summary"]["skipped"], 1);
    let runs = get(&srv.addr, "/api/v1/runs?limit=1", &t).json();
    assert_eq!(runs["runs"][0]["options"]["filter"], "*::ok");

    let out = common::clnrm(project.path())
        .args(["run", "--server", &url])
        .env_remove("CLNRM_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = common::clnrm(project.path())
        .args(["run", "--server", &url, "--token", "clnrm_wrong"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown token"));
}

#[test]
fn the_openapi_document_holds_under_schemathesis() {
    let dir = tempfile::tempdir().unwrap();
    let srv = serve(dir.path(), &["--no-worker"]);
    let t = token(dir.path(), "admin");
    let doc = request(&srv.addr, "GET", "/api/v1/openapi.json", &[], b"").json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/runs",
        "/api/v1/runs/{id}/events",
        "/api/v1/scenarios/{sid}/history",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} is not in the document"
        );
    }
    // A tool nobody here wrote generates requests from the document (a bounded number,
    // a fixed seed) and checks the answers: no 5xx, and status codes, content types,
    // headers and bodies as documented.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let st = std::env::var("CLNRM_SCHEMATHESIS").map_or_else(
        |_| root.join("target/tools/schemathesis/bin/schemathesis"),
        std::path::PathBuf::from,
    );
    assert!(
        st.exists(),
        "{} is missing: run scripts/setup.sh",
        st.display()
    );
    let out = std::process::Command::new(&st)
        .args([
            "run",
            &format!("http://{}/api/v1/openapi.json", srv.addr),
            "-H",
            &format!("Authorization: Bearer {t}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--max-examples",
            "25",
            "--seed",
            "7878",
            "--phases",
            "examples,coverage,fuzzing",
            // One worker: the tool's own parallel mode trips over a thread-safety
            // bug of Hypothesis (an AST recursion-depth mismatch), not over clnrm.
            "--workers",
            "1",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}

/// What a webhook receiver got: headers (lower-cased names) and body.
type Delivery = (Vec<(String, String)>, String);

/// A webhook receiver: records each request (headers, body); answers 500 to the first
/// and 200 to the rest.
fn receiver() -> (String, std::sync::mpsc::Receiver<Delivery>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let status = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tx.send((headers, String::from_utf8(body).unwrap()));
        }
    });
    (addr, rx)
}

#[test]
fn a_finished_run_is_posted_to_its_webhook_signed_and_retried() {
    let (hook, received) = receiver();
    let dir = common::project(&[(
        ".clnrm/config.toml",
        &format!(
            "[server]\nwebhooks = [{{ url = \"http://{hook}/clnrm\", events = [\"run.finished\"], secret = \"s3cret\" }}]\n"
        ),
    )]);
    let srv = serve(dir.path(), &[]);
    let t = token(dir.path(), "run");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file("[[scenario]]\nname = \"s\"\nrun = \"true\"\n")}),
        json!({}),
    );
    let id = a.json()["id"].as_str().unwrap().to_owned();
    let wait = Duration::from_secs(60);
    let (_, first) = received.recv_timeout(wait).expect("a first delivery");
    let (headers, body) = received.recv_timeout(wait).expect("a retry after the 500");
    assert_eq!(first, body, "the retry sends the same body");
    let header = |k: &str| {
        headers
            .iter()
            .find(|(h, _)| h == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("x-clnrm-event"), "run.finished");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"], "run.finished");
    assert_eq!(v["run"]["id"], id.as_str());
    assert_eq!(v["run"]["status"], "passed");
    assert_eq!(v["run"]["summary"]["passed"], 1);
    // The signature, checked by Python's own HMAC.
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib, hmac, sys; print('sha256=' + hmac.new(b's3cret', sys.stdin.buffer.read(), hashlib.sha256).hexdigest())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        header("x-clnrm-signature"),
        String::from_utf8_lossy(&py.stdout).trim()
    );
    // Delivered: no third try.
    assert!(received.recv_timeout(Duration::from_millis(1500)).is_err());
}

#[test]
fn the_server_exports_its_runs_spans_like_clnrm_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receiver = rt
        .block_on(clnrm_core::otel::Receiver::start(
            clnrm_core::otel::ReceiverConfig::loopback(),
        ))
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", receiver.http_port());
    let dir = tempfile::tempdir().unwrap();
    let url = server::database(dir.path());
    let srv = server::serve_with(
        dir.path(),
        &url,
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)],
    );
    let t = token(dir.path(), "run");
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file("[[scenario]]\nname = \"one\"\nrun = \"true\"\n")}),
        json!({}),
    );
    let id = a.json()["id"].as_str().unwrap().to_owned();
    until("the run", Duration::from_secs(60), || {
        status_of(&srv.addr, &t, &id) == "passed"
    });
    let local: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
    let mut spans = Vec::new();
    until("its spans", Duration::from_secs(30), || {
        spans.extend(receiver.take_from(local));
        spans.iter().any(|s| s.name == "clnrm.run")
    });
    let scenario = spans
        .iter()
        .find(|s| s.name == "clnrm.scenario")
        .expect("a scenario span");
    assert_eq!(
        scenario
            .attributes
            .get("clnrm.scenario.id")
            .map(ToString::to_string)
            .as_deref(),
        Some("\"tests/a.clnrm.toml::one\"")
    );
    assert!(spans.iter().any(|s| s.name == "clnrm.step"));
}

#[test]
fn sigterm_stops_taking_runs_and_lets_the_running_one_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = serve(dir.path(), &[]);
    let t = token(dir.path(), "run");
    let step = "[[scenario]]\nname = \"s\"\n\n[[scenario.steps]]\nname = \"w\"\ncommand = [\"sleep\", \"2\"]\n";
    let first = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file(step)}),
        json!({}),
    );
    let first = first.json()["id"].as_str().unwrap().to_owned();
    until("the run to start", Duration::from_secs(60), || {
        status_of(&srv.addr, &t, &first) == "running"
    });
    let second = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file(step)}),
        json!({}),
    );
    let second = second.json()["id"].as_str().unwrap().to_owned();
    engine::signal(srv.child.id(), "-TERM");
    let code = engine::wait_exit(&mut srv.child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "serve ends once its run finished");
    // The database says what happened: the running run finished, the queued one waits.
    let again = serve(dir.path(), &["--no-worker"]);
    assert_eq!(status_of(&again.addr, &t, &first), "passed");
    assert_eq!(status_of(&again.addr, &t, &second), "queued");
}

#[test]
fn a_scenarios_detail_holds_the_spans_it_collected() {
    let dir = tempfile::tempdir().unwrap();
    let srv = serve(dir.path(), &[]);
    let t = token(dir.path(), "run");
    let span = r#"{"name":"db.query","trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"00f067aa0ba902b7","kind":"client","start_time_unix_nano":1010000000,"end_time_unix_nano":1050000000,"attributes":{"db.system":"postgresql"},"status":"OK"}"#;
    let body = format!(
        "[[scenario]]\nname = \"emit\"\n\n[[scenario.steps]]\nname = \"print\"\ncommand = [\"sh\", \"-c\", \"printf '%s\\\\n' '{}'\"]\n",
        span.replace('"', "\\\"")
    );
    let a = submit(
        &srv.addr,
        &t,
        json!({"tests/s.clnrm.toml": file(&body)}),
        json!({}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    until("the run", Duration::from_secs(60), || {
        status_of(&srv.addr, &t, &id) == "passed"
    });
    let sid = "tests%2Fs.clnrm.toml%3A%3Aemit";
    let one = get(&srv.addr, &format!("/api/v1/runs/{id}/scenarios/{sid}"), &t).json();
    assert_eq!(one["spans"], 1, "{one:#}");
    assert_eq!(one["span_list"][0]["name"], "db.query", "{one:#}");
    assert_eq!(
        one["span_list"][0]["attributes"]["db.system"], "postgresql",
        "{one:#}"
    );
    // A run without update_baseline recorded none; one with it, the tree to commit.
    let none = get(&srv.addr, &format!("/api/v1/runs/{id}/baseline"), &t);
    assert_eq!(none.status, 404, "{}", none.body);
    let b = submit(
        &srv.addr,
        &t,
        json!({"tests/s.clnrm.toml": file(&body)}),
        json!({"update_baseline": true}),
    );
    let bid = b.json()["id"].as_str().unwrap().to_owned();
    until("the recording run", Duration::from_secs(60), || {
        status_of(&srv.addr, &t, &bid) == "passed"
    });
    let baseline = get(&srv.addr, &format!("/api/v1/runs/{bid}/baseline"), &t);
    assert_eq!(baseline.status, 200, "{}", baseline.body);
    let text = baseline.json().to_string();
    assert!(text.contains("tests/s.clnrm.toml::emit"), "{text}");
    assert!(text.contains("db.query"), "{text}");
}

/// A submission with `Idempotency-Key` as a client retrying sends it.
fn submit_keyed(addr: &str, token: &str, key: &str, body: &Value) -> Answer {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        "/api/v1/runs",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", key),
        ],
        body.to_string().as_bytes(),
    )
}

#[test]
fn a_submission_sent_again_with_its_key_answers_the_first_run_and_a_full_queue_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let srv = serve(dir.path(), &["--no-worker", "--max-queued", "2"]);
    let (t, other) = (token(dir.path(), "run"), token(dir.path(), "run"));
    let body = |run: &str| json!({"files": {"tests/a.clnrm.toml": file(&format!("[[scenario]]\nname = \"s\"\nrun = \"{run}\"\n"))}});
    let a = submit_keyed(&srv.addr, &t, "order-42", &body("echo a"));
    assert_eq!(a.status, 201, "{}", a.body);
    let id = a.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(a.header("idempotent-replayed"), None);
    // The same request again (its answer lost): the same run, no second one.
    let again = submit_keyed(&srv.addr, &t, "order-42", &body("echo a"));
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.header("location"),
        Some(format!("/api/v1/runs/{id}").as_str())
    );
    // Quoted as a structured-field string, it is the same key.
    let quoted = submit_keyed(&srv.addr, &t, "\"order-42\"", &body("echo a"));
    assert_eq!(quoted.json()["id"], id.as_str());
    let runs = get(&srv.addr, "/api/v1/runs", &t).json();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");

    // The key for another request is refused; another token's key is its own.
    let reused = submit_keyed(&srv.addr, &t, "order-42", &body("echo b"));
    assert_eq!(reused.status, 422, "{}", reused.body);
    assert!(
        reused.json()["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("this key made run {id} from another request")),
        "{}",
        reused.body
    );
    let theirs = submit_keyed(&srv.addr, &other, "order-42", &body("echo a"));
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert_ne!(theirs.json()["id"], id.as_str());
    for bad in ["", "has space", &"k".repeat(256)] {
        let a = submit_keyed(&srv.addr, &t, bad, &body("echo a"));
        assert_eq!(a.status, 400, "{bad:?}: {}", a.body);
    }

    // Two runs wait (--max-queued 2): a third is 503 with Retry-After, and nothing
    // is stored; a repeated submission still answers its run.
    let full = submit(
        &srv.addr,
        &t,
        json!({"tests/a.clnrm.toml": file("[[scenario]]\nname = \"s\"\nrun = \"echo c\"\n")}),
        json!({}),
    );
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(full.header("retry-after"), Some("2"));
    assert_eq!(
        full.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        full.json()["detail"]
            .as_str()
            .unwrap()
            .contains("2 runs wait in the queue (--max-queued 2)"),
        "{}",
        full.body
    );
    let runs = get(&srv.addr, "/api/v1/runs", &t).json();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");
    let again = submit_keyed(&srv.addr, &t, "order-42", &body("echo a"));
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.json()["id"], id.as_str());
}

/// `clnrm serve --listen 127.0.0.1:PORT` on `dir`'s database, once it listens.
fn serve_at(dir: &std::path::Path, port: u16, args: &[&str]) -> server::Proc {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", &server::database(dir)])
        .args(args)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("clnrm serve");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stderr.take().expect("stderr"),
    ));
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("http://"), "clnrm serve: {first}");
    std::thread::spawn(move || for _ in lines {});
    server::Proc {
        child,
        addr: format!("127.0.0.1:{port}"),
    }
}

#[test]
fn run_with_server_sends_its_submission_again_until_the_service_takes_it() {
    let db = tempfile::tempdir().unwrap();
    let t = token(db.path(), "run");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // One run waits, and the queue takes one.
    let first = serve_at(db.path(), port, &["--no-worker", "--max-queued", "1"]);
    let a = submit(
        &first.addr,
        &t,
        json!({"tests/a.clnrm.toml": file("[[scenario]]\nname = \"s\"\nrun = \"echo waiting\"\n")}),
        json!({}),
    );
    assert_eq!(a.status, 201, "{}", a.body);
    drop(first);

    // The client starts while nothing listens, then meets a full queue, then a
    // worker drains it: its one submission is taken and run.
    let project = common::project(&[(
        "tests/a.clnrm.toml",
        &file("[[scenario]]\nname = \"ok\"\nrun = \"echo hello\"\n"),
    )]);
    let mut client = std::process::Command::new(env!("CARGO_BIN_EXE_clnrm"))
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .args(["run", "--server", &format!("http://127.0.0.1:{port}")])
        .args(["--token", &t])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = client.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut err = String::new();
    let mut wait_for = |what: &str| {
        while !err.contains(what) {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the client never said {what:?}: {err}"));
            err.push_str(&line);
            err.push('\n');
        }
    };
    wait_for("cannot reach");
    let srv = serve_at(db.path(), port, &["--no-worker", "--max-queued", "1"]);
    wait_for("503: 1 runs wait in the queue (--max-queued 1)");
    let _worker = server::worker(db.path(), &[]);
    wait_for("submitted run ");
    let out = client.wait_with_output().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        err.push_str(&line);
        err.push('\n');
    }
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the same Idempotency-Key"), "{err}");
    assert_eq!(err.matches("submitted run ").count(), 1, "{err}");
    let runs = get(&srv.addr, "/api/v1/runs", &t).json();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "passed"), "{runs:?}");
}
