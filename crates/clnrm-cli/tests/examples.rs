//! The examples whose apps clnrm builds from source, end to end, as a user runs them
//! (each copied into a project of its own with the directories it builds from; base
//! images and wheels from `scripts/example-images.sh`, which the set-up command runs):
//! - the app-plus-database example (`examples/orders-postgres.clnrm.toml`): the real
//!   PostgreSQL image, the Python app (built from `images/orders-app`) traced by the
//!   official OpenTelemetry SDK with its default batch settings, the migration
//!   one-shot, the fixture snapshot of the seeded database, HTTP steps (create → the
//!   id captured by JSONPath → fetch by id → `${order_id}` in a query in the database
//!   container), the app's spans joined to clnrm's by `traceparent` (its expectations
//!   say `parent = "clnrm.http create"`), and the baseline committed in
//!   `.clnrm/trace.json`;
//! - the trace-assertions example (`examples/orders-traces.clnrm.toml`): selectors,
//!   `[[expect.per_span]]`, links and events on the same app's spans, from the real
//!   SDK, each both ways: the N+1 route is caught, a wrong link attribute and a wrong
//!   exception type are reported with the closest spans;
//! - the develop example (`examples/web-develop.clnrm.toml`): a Python app behind
//!   nginx, both built from source, reached through the proxy; in `clnrm watch`, a
//!   one-line change of the app's code is synced into its image, not built.
mod common;

#[path = "common/engine.rs"]
mod engine;
#[path = "common/run.rs"]
mod runs;
#[path = "common/watching.rs"]
mod watching;

use common::{RemoveBuilt, clnrm, copy_context, project, repo_root};
use runs::{run_json, scenario};
use watching::Watching;

const EXAMPLE: &str = "examples/orders-postgres.clnrm.toml";
const DEVELOP: &str = "examples/web-develop.clnrm.toml";
const TRACES: &str = "examples/orders-traces.clnrm.toml";

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_orders_example_passes_against_postgres_and_the_sdk_and_its_baseline() {
    let baseline = read(".clnrm/trace.json");
    let dir = project(&[(EXAMPLE, &read(EXAMPLE)), (".clnrm/trace.json", &baseline)]);
    copy_context("images/orders-app", dir.path());
    let _clean = RemoveBuilt::of(dir.path());
    let run = run_json(dir.path(), &["--workers", "2", EXAMPLE]);
    run.assert_passed();
    for name in [
        "create then fetch an order",
        "an unknown order is not found",
    ] {
        let sc = scenario(&run, name);
        assert_eq!(sc["status"], "passed", "{sc:#}");
        assert!(
            sc["spans"].as_u64().unwrap_or(0) >= 3,
            "the SDK's spans arrived: {sc:#}"
        );
    }
    // One snapshot of the seeded database served both scenarios.
    let stats = clnrm(dir.path()).args(["cache", "stats"]).output().unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    assert!(
        stats.contains("snapshots:  1") && stats.contains("service \"db\" from clnrm/postgres:15"),
        "{stats}"
    );

    // The baseline is compared: one that remembers another status code fails the run.
    let changed = baseline.replacen(
        "\"http.response.status_code\": 201",
        "\"http.response.status_code\": 200",
        1,
    );
    assert_ne!(changed, baseline, "the baseline holds the create span");
    std::fs::write(dir.path().join(".clnrm/trace.json"), changed).unwrap();
    let run = run_json(dir.path(), &["--workers", "2", "--force", EXAMPLE]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let sc = scenario(&run, "create then fetch an order");
    assert_eq!(sc["reason"], "diff", "{sc:#}");
    assert_eq!(
        scenario(&run, "an unknown order is not found")["status"],
        "passed"
    );

    let cleared = clnrm(dir.path()).args(["cache", "clear"]).output().unwrap();
    assert_eq!(cleared.status.code(), Some(0));
}

#[test]
fn the_develop_example_passes_through_its_proxy_and_a_change_of_its_code_is_synced_in_watch() {
    let dir = project(&[(DEVELOP, &read(DEVELOP))]);
    copy_context("examples/web-develop/app", dir.path());
    copy_context("examples/web-develop/proxy", dir.path());
    let _clean = RemoveBuilt::of(dir.path());
    let run = run_json(dir.path(), &["--workers", "2", DEVELOP]);
    run.assert_passed();
    for name in ["greets through the proxy", "a missing name is refused"] {
        let sc = scenario(&run, name);
        assert_eq!(sc["status"], "passed", "{sc:#}");
        assert!(
            sc["spans"].as_u64().unwrap_or(0) >= 2,
            "the app's spans arrived: {sc:#}"
        );
    }

    // The first cycle runs what the run left cached, so that the first change has an
    // image of a cycle to go into: a change of the cache's key.
    let w = Watching::start(dir.path(), &["--force", DEVELOP]);
    w.wait_for("watching for changes", 1);
    assert_eq!(w.text().matches("   PASS [").count(), 2, "{}", w.text());
    // One line of the app's code: copied into the last image, no build; the greeting
    // the scenario expects is no longer the one it gets.
    let code = dir.path().join("examples/web-develop/app/src/app.py");
    let text = std::fs::read_to_string(&code).unwrap_or_else(|e| panic!("{e}"));
    let changed = text.replacen("GREETING = \"Hello\"", "GREETING = \"Howdy\"", 1);
    assert_ne!(changed, text, "the app sets its greeting in one line");
    std::fs::write(&code, changed).unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 2);
    let cycle = w.last_cycle();
    assert!(cycle.contains("Synced 1 file into clnrm-build/"), "{cycle}");
    assert!(!cycle.contains("Built "), "{cycle}");
    assert!(cycle.contains("\"Howdy, clnrm!\""), "{cycle}");
    assert_eq!(cycle.matches("   FAIL [").count(), 1, "{cycle}");
    // Mended: it passes again.
    std::fs::write(&code, text).unwrap_or_else(|e| panic!("{e}"));
    w.wait_for("watching for changes", 3);
    let cycle = w.last_cycle();
    assert_eq!(cycle.matches("   PASS [").count(), 2, "{cycle}");
    // Stopped right after a cycle (while it makes networks for the next one), it
    // leaves neither containers nor networks.
    let mut w = w;
    let label = format!("label=clnrm.pid={}", w.child.id());
    engine::signal(w.child.id(), "-INT");
    assert_eq!(
        engine::wait_exit(&mut w.child, std::time::Duration::from_secs(60)),
        Some(130)
    );
    assert_eq!(engine::docker(&["ps", "-aq", "--filter", &label]), "");
    assert_eq!(
        engine::docker(&["network", "ls", "-q", "--filter", &label]),
        ""
    );
}

#[test]
fn the_trace_assertions_example_passes_and_catches_an_n_plus_one_a_wrong_link_and_a_wrong_exception()
 {
    let text = read(TRACES);
    let dir = project(&[(TRACES, &text)]);
    copy_context("images/orders-app", dir.path());
    let _clean = RemoveBuilt::of(dir.path());
    let run = run_json(dir.path(), &["--workers", "2", TRACES]);
    run.assert_passed();
    let quote = "a quote reads its products in one query";
    let refused = "a quote of an unknown product records the exception";
    for name in [quote, refused] {
        assert_eq!(scenario(&run, name)["status"], "passed", "{:#}", run.json);
    }

    // `clnrm expect` makes a starter block from the last run's spans; pasted under
    // the scenario (the file's last), it passes on the next run.
    let id = format!("{TRACES}::{refused}");
    let out = clnrm(dir.path()).args(["expect", &id]).output().unwrap();
    let block = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{block}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "[[scenario.expect.span]]\nname = \"POST /quotes\"\nkind = \"server\"\nparent = \"clnrm.http unknown product\"\n",
        "\"http.response.status_code\" = 404",
        "events = [{ name = \"exception\", attrs = {",
        "\"exception.type\" = \"__main__.NotFound\"",
        "name = \"SELECT products\"\nkind = \"client\"\nparent = \"POST /quotes\"\n",
    ] {
        assert!(block.contains(part), "{part}\n{block}");
    }
    std::fs::write(dir.path().join(TRACES), format!("{text}\n{block}")).unwrap();
    let run = run_json(dir.path(), &["--workers", "2", TRACES]);
    run.assert_passed();
    assert_eq!(
        scenario(&run, refused)["status"],
        "passed",
        "{:#}",
        run.json
    );
    // A scenario that never ran has nothing to start from.
    let out = clnrm(dir.path())
        .args(["expect", &format!("{TRACES}::no such scenario")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // The same checks on the route that queries once per item, with the link's
    // attribute and the exception's type the SDK did not write.
    let swap = |text: &str, from: &str, to: &str| {
        let out = text.replacen(from, to, 1);
        assert_ne!(out, text, "{from}");
        out
    };
    let broken = swap(
        &text,
        "http://app:8080/quotes\", json = { items = [{ product_id = 7, quantity = 1 }, { product_id = 8",
        "http://app:8080/quotes/naive\", json = { items = [{ product_id = 7, quantity = 1 }, { product_id = 8",
    );
    let broken = swap(
        &broken,
        "\"messaging.operation\" = \"process\"",
        "\"messaging.operation\" = \"publish\"",
    );
    let broken = swap(
        &broken,
        "regex = \"\\\\.NotFound$\"",
        "regex = \"\\\\.KeyError$\"",
    );
    std::fs::write(dir.path().join(TRACES), broken).unwrap();
    let run = run_json(dir.path(), &["--workers", "2", TRACES]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let unmet = |name: &str| {
        scenario(&run, name)["unmet"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let quote_unmet = unmet(quote);
    assert_eq!(quote_unmet.len(), 2, "{quote_unmet:#?}");
    // The N+1: the request span, its id, how many and which.
    let n1 = &quote_unmet[1];
    assert_eq!(n1["kind"], "per_span", "{n1:#}");
    assert_eq!(n1["matched"], 1, "{n1:#}");
    let found = n1["found"].as_str().unwrap_or_default();
    assert!(
        found.starts_with("1 of 1 spans do not: \"POST /quotes/naive\" (span ")
            && found.ends_with(") has 3 (SELECT products)"),
        "{found}"
    );
    assert!(n1["line"].as_u64().is_some(), "{n1:#}");
    // The link: the consumer's span is the closest, its link's attribute the miss.
    let link = &quote_unmet[0];
    assert_eq!(link["kind"], "span", "{link:#}");
    assert_eq!(link["matched"], 0, "{link:#}");
    let near = &link["near"][0];
    assert!(
        near["span"]
            .as_str()
            .unwrap_or_default()
            .starts_with("span \"quote.created process\" (kind consumer"),
        "{link:#}"
    );
    assert_eq!(near["misses"][0]["what"], "links", "{link:#}");
    assert!(
        near["misses"][0]["found"]
            .as_str()
            .unwrap_or_default()
            .contains("a link to \"quote.created publish\""),
        "{link:#}"
    );
    // The exception event: found, with the type the SDK wrote.
    let refused_unmet = unmet(refused);
    assert_eq!(refused_unmet.len(), 1, "{refused_unmet:#?}");
    let found = refused_unmet[0]["found"].as_str().unwrap_or_default();
    assert!(
        found.contains("found event \"exception\" with exception.type \"__main__.NotFound\""),
        "{found}"
    );
}

const GRPC: &str = "examples/grpc-greeter.clnrm.toml";

/// The gRPC example, end to end (SPEC §17): the Python greeter built from source,
/// called with its `.proto` and through reflection; then the same file broken three
/// ways: a response that is not the one expected, a status that is not, a method the
/// `.proto` does not have (refused by `validate`, at its position).
#[test]
fn the_grpc_example_calls_the_python_server_with_its_proto_and_by_reflection_under_its_spans() {
    let text = read(GRPC);
    let dir = project(&[(GRPC, &text)]);
    copy_context("examples/grpc-greeter/app", dir.path());
    let _clean = RemoveBuilt::of(dir.path());
    let run = run_json(dir.path(), &["--workers", "2", GRPC]);
    run.assert_passed();
    for name in ["greets with its proto file", "greets through reflection"] {
        let sc = scenario(&run, name);
        assert_eq!(sc["status"], "passed", "{sc:#}");
        // clnrm's own span of each step, and at least as many of the server's (the
        // example's span expectations say whose children they are).
        let steps = sc["steps"].as_array().map_or(0, Vec::len) as u64;
        assert!(
            sc["spans"].as_u64().unwrap_or(0) >= 2 * steps,
            "the server's spans arrived: {sc:#}"
        );
    }
    let sc = scenario(&run, "greets with its proto file");
    let stream = sc["steps"][1]["stdout"].as_str().unwrap_or_default();
    let messages: serde_json::Value =
        serde_json::from_str(stream).unwrap_or_else(|e| panic!("{e}: {stream}"));
    assert_eq!(
        messages[2]["message"], "Hello #3, Hello, ada!!",
        "the captured greeting was sent in the next call: {sc:#}"
    );

    // A response and a status that are not the ones expected.
    let swap = |text: &str, from: &str, to: &str| {
        let out = text.replacen(from, to, 1);
        assert_ne!(out, text, "{from}");
        out
    };
    let broken = swap(
        &text,
        "\"$.message\" = \"Hello, ada!\"",
        "\"$.message\" = \"Hi, ada!\"",
    );
    let broken = swap(
        &broken,
        "expected_grpc_status = 11",
        "expected_grpc_status = \"NOT_FOUND\"",
    );
    std::fs::write(dir.path().join(GRPC), &broken).unwrap_or_else(|e| panic!("{e}"));
    let run = run_json(dir.path(), &["--workers", "2", GRPC]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    let sc = scenario(&run, "greets with its proto file");
    let step = &sc["steps"][0];
    assert_eq!(step["status"], "failed", "{sc:#}");
    assert_eq!(
        step["message"], "$.message is \"Hello, ada!\", expected \"Hi, ada!\"",
        "{sc:#}"
    );
    let sc = scenario(&run, "greets through reflection");
    let message = sc["steps"][2]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "status OUT_OF_RANGE (11): times is 0, not 1 to 100, expected NOT_FOUND (5)"
        ),
        "{sc:#}"
    );

    // A method the .proto does not have: refused before anything runs, where it is
    // written, with the method it most likely is.
    let broken = swap(
        &text,
        "Greeter/SayHellos\", json = { name = \"${greeting}\"",
        "Greeter/SayHelos\", json = { name = \"${greeting}\"",
    );
    std::fs::write(dir.path().join(GRPC), &broken).unwrap_or_else(|e| panic!("{e}"));
    let out = clnrm(dir.path()).args(["validate", GRPC]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{said}");
    let line = broken
        .lines()
        .position(|l| l.contains("SayHelos"))
        .map_or(0, |i| i + 1);
    assert!(
        said.contains("service \"demo.greeter.v1.Greeter\" has no method \"SayHelos\"; did you mean \"SayHellos\"?")
            && said.contains(&format!("{GRPC}:{line}:")),
        "{said}"
    );
}

/// `health_check.postgres`: clnrm asks the real PostgreSQL whether it accepts
/// connections (no `pg_isready` exec'd: the only exec in the database is the step's),
/// and a server that is not PostgreSQL (busybox's `nc` answering a banner) is
/// unhealthy with what it answered.
#[test]
fn a_postgres_health_check_asks_the_server_itself_and_names_what_answered_otherwise() {
    let db = r#"[meta]
name = "pg"
version = "1"

[service.db]
image = "clnrm/postgres:15"
env = { POSTGRES_DB = "orders" }
health_check = { postgres = "postgres://postgres@db:5432/orders", interval_ms = 100, retries = 300 }

[[scenario]]
name = "ready when asked"

[[scenario.steps]]
name = "query"
service = "db"
command = ["psql", "-U", "postgres", "-d", "orders", "-tAc", "SELECT 40 + 2"]
expected_output_regex = '^42$'
"#;
    let web = format!(
        r#"[meta]
name = "not-pg"
version = "1"

[service.web]
image = "{}"
args = ["nc", "-ll", "-p", "5432", "-e", "echo", "SSH-2.0-not-postgres"]
health_check = {{ postgres = "postgres://web", interval_ms = 50, retries = 3 }}

[[scenario]]
name = "not postgres"

[[scenario.steps]]
name = "never"
service = "web"
command = ["true"]
"#,
        engine::IMAGE
    );
    // The same server asking for a password (SCRAM; the user has none, so the
    // server pretends): healthy, and its log does not complain of the probe.
    let scram = db
        .replace("name = \"pg\"", "name = \"pg-scram\"")
        .replace("name = \"ready when asked\"", "name = \"ready when asked for a password\"")
        .replace(
            "env = { POSTGRES_DB = \"orders\" }",
            "env = { POSTGRES_DB = \"orders\" }\nargs = [\"pg-start\", \"-c\", \"hba_file=/etc/clnrm-hba.conf\", \"-c\", \"log_connections=on\"]\nvolumes = [{ host_path = \"hba.conf\", container_path = \"/etc/clnrm-hba.conf\", read_only = true }]",
        );
    let dir = project(&[
        ("tests/pg.clnrm.toml", db),
        ("tests/web.clnrm.toml", &web),
        ("tests/scram.clnrm.toml", &scram),
        (
            "tests/hba.conf",
            "local all all trust\nhost all all all scram-sha-256\n",
        ),
    ]);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let run = run_json(dir.path(), &["--workers", "2"]);
    assert_eq!(run.code, Some(1), "{:#}", run.json);
    assert_eq!(
        scenario(&run, "ready when asked")["status"],
        "passed",
        "{:#}",
        run.json
    );
    let sc = scenario(&run, "ready when asked for a password");
    assert_eq!(sc["status"], "passed", "{sc:#}");
    let log = sc["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "db"))
        .and_then(|s| s["log_tail"].as_str())
        .unwrap_or_default();
    // A probe while it starts is refused (`57P03`), as `pg_isready`'s would be; no
    // other complaint.
    let complaints = log
        .lines()
        .filter(|l| l.contains("FATAL") || l.contains("ERROR"))
        .all(|l| l.contains("the database system is starting up"));
    assert!(log.contains("connection received") && complaints, "{log}");
    let sc = scenario(&run, "not postgres");
    let message = sc["message"].as_str().unwrap_or_default();
    assert!(
        sc["reason"] == "unhealthy"
            && message.contains(
                "not healthy after 3 tries of `postgres://postgres@web:5432/postgres accepting connections`"
            )
            && message.contains("not a PostgreSQL answer"),
        "{sc:#}"
    );
    // The databases' only execs were their steps'.
    let run_id = run.json["run_id"].as_str().expect("run id").to_owned();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let events = engine::docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "event=exec_create",
        "--filter",
        &format!("label=clnrm.run={run_id}"),
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let on_db: Vec<&str> = events.lines().filter(|l| l.ends_with("-db")).collect();
    assert!(
        on_db.len() == 2 && on_db.iter().all(|l| l.contains("SELECT 40 + 2")),
        "{events}"
    );

    // A password, or another service, is refused with its place.
    for (bad, says) in [
        (
            db.replace("postgres://postgres@db", "postgres://postgres:secret@db"),
            "no password",
        ),
        (
            db.replace("postgres@db:5432", "postgres@app:5432"),
            "asks service \"app\"",
        ),
        (
            db.replace(
                "health_check = { postgres",
                "health_check = { cmd = [\"true\"], postgres",
            ),
            "both `cmd` and `postgres`",
        ),
    ] {
        common::assert_refused(dir.path(), "tests/pg.clnrm.toml", &bad, says, 8);
    }
}
