//! `deploy/` (SPEC §16): the Kubernetes layout and the CI matrix example are valid
//! YAML of the shape their tools take, and every clnrm command line in them is one
//! this clnrm accepts (each flag is in the command's `--help`).
mod common;

use serde_yaml_ng::Value;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    // Documents are separated by `---` lines (none of these files has one inside a
    // string).
    text.split("\n---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// Checks that clnrm parses `args` (a command line of the files, its placeholders
/// given values): with `--help` after them, clap reads every argument before it
/// (an unknown flag, a value it refuses, a stray word are errors) and then exits 0.
fn accepted(args: &[String]) {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("$(DATABASE_URL)", "postgres://clnrm@db:5432/clnrm")
                .replace("${{ matrix.shard }}", "1")
                .replace("${CI_NODE_INDEX}", "1")
                .replace("${CI_NODE_TOTAL}", "4")
        })
        .collect();
    let out = common::clnrm(root())
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clnrm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    // And a flag that is not there is refused the same way: the check can fail.
    let mut wrong = args.clone();
    wrong.insert(1, "--no-such-flag".into());
    let out = common::clnrm(root())
        .args(&wrong)
        .arg("--help")
        .output()
        .unwrap();
    assert!(!out.status.success(), "clnrm {}: accepted", wrong.join(" "));
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_kubernetes_layout_holds_together_and_its_clnrm_commands_are_accepted() {
    let docs = documents("deploy/kubernetes/clnrm.yaml");
    let kind = |d: &Value| d["kind"].as_str().unwrap_or_default().to_owned();
    let kinds: Vec<String> = docs.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["Namespace", "Secret", "Deployment", "Service", "Deployment"]
    );
    for d in &docs {
        assert!(d["apiVersion"].as_str().is_some(), "{d:?}");
        assert!(d["metadata"]["name"].as_str().is_some(), "{d:?}");
    }
    let deployments: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    let mut commands = Vec::new();
    for d in &deployments {
        let spec = &d["spec"];
        assert_eq!(
            spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"],
            "a Deployment selects its own pods"
        );
        for c in spec["template"]["spec"]["containers"]
            .as_sequence()
            .unwrap()
        {
            if c["image"].as_str().unwrap_or_default().contains("clnrm") {
                commands.push(strings(&c["args"]));
                // The database URL comes from the Secret.
                let env = c["env"].as_sequence().unwrap();
                assert!(
                    env.iter()
                        .any(|e| e["valueFrom"]["secretKeyRef"]["name"] == "clnrm-database")
                );
            }
        }
    }
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[0][0], "serve");
    assert_eq!(commands[1][0], "worker");
    // The worker's engine: a native sidecar (it outlives the worker's SIGTERM) on
    // the address the worker's DOCKER_HOST names.
    let pod = &deployments[1]["spec"]["template"]["spec"];
    let engine = &pod["initContainers"][0];
    assert_eq!(engine["restartPolicy"], "Always");
    let host = strings(&engine["command"])
        .iter()
        .find_map(|a| a.strip_prefix("--host=").map(str::to_owned))
        .expect("the engine's --host");
    let worker_env = pod["containers"][0]["env"].as_sequence().unwrap();
    assert!(
        worker_env
            .iter()
            .any(|e| e["name"] == "DOCKER_HOST" && e["value"].as_str() == Some(host.as_str())),
        "DOCKER_HOST is not {host}"
    );
    assert!(
        host.contains("127.0.0.1"),
        "the engine listens beyond the pod: {host}"
    );
    for args in &commands {
        accepted(args);
    }
    // The Service reaches the API's pods and port.
    let service = docs.iter().find(|d| kind(d) == "Service").unwrap();
    assert_eq!(
        service["spec"]["selector"],
        deployments[0]["spec"]["template"]["metadata"]["labels"]
    );
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
}

#[test]
fn the_ci_matrix_example_shards_by_duration_and_merges_with_commands_clnrm_accepts() {
    let docs = documents("deploy/ci/github-actions.yml");
    let jobs = &docs[0]["jobs"];
    let shards = jobs["shard"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .unwrap()
        .len();
    let mut lines = Vec::new();
    for job in ["shard", "merge"] {
        for step in jobs[job]["steps"].as_sequence().unwrap() {
            if let Some(run) = step["run"].as_str()
                && let Some(cmd) = run.strip_prefix("clnrm ")
            {
                lines.push(cmd.to_owned());
            }
        }
    }
    shard_then_merge(
        &lines,
        &format!("--partition duration:${{{{ matrix.shard }}}}/{shards}"),
    );
}

/// Checks that `lines` are a shard's run with `partition` and a `report merge`, each
/// a command line clnrm accepts.
fn shard_then_merge(lines: &[String], partition: &str) {
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains(partition), "{}", lines[0]);
    assert!(lines[1].starts_with("report merge"), "{}", lines[1]);
    for line in lines {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        accepted(&args);
    }
}

#[test]
fn the_gitlab_example_runs_clnrm_in_its_image_with_shards_and_a_merge_clnrm_accepts() {
    let docs = documents("deploy/ci/gitlab-ci.yml");
    let doc = &docs[0];
    let mut lines = Vec::new();
    for job in ["clnrm", "merge"] {
        // In clnrm's image, with a shell for the script (its entrypoint is clnrm).
        assert_eq!(
            doc[job]["image"]["name"].as_str(),
            Some("registry.example.com/clnrm:latest"),
            "{job}"
        );
        assert_eq!(
            strings(&doc[job]["image"]["entrypoint"]),
            vec![String::new()]
        );
        for line in strings(&doc[job]["script"]) {
            let cmd = line
                .strip_prefix("clnrm ")
                .unwrap_or_else(|| panic!("{line}"));
            lines.push(cmd.to_owned());
        }
    }
    assert_eq!(doc["clnrm"]["parallel"].as_u64(), Some(4));
    shard_then_merge(
        &lines,
        "--partition duration:${CI_NODE_INDEX}/${CI_NODE_TOTAL}",
    );
}
