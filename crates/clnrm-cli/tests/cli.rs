//! The `clnrm` binary end to end: commands, formats, exit codes, bad input.

mod common;

use common::{clnrm, project};

use std::path::{Path, PathBuf};

const VALID: &str = r#"[meta]
name = "ok"
version = "1"

[service.app]
image = "clnrm/busybox:latest"

[[scenario]]
name = "hello"
service = "app"
run = "echo hi"
"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|e| panic!("repo root: {e}"))
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn validate_accepts_the_shipped_examples() {
    let out = clnrm(&repo_root())
        .args(["validate", "--deny-warnings", "examples"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let count = std::fs::read_dir(repo_root().join("examples"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(count >= 6, "at least six examples");
}

#[test]
fn validate_defaults_to_tests_dir_and_exits_zero_when_valid() {
    let dir = project(&[("tests/a.clnrm.toml", VALID)]);
    let out = clnrm(dir.path())
        .arg("validate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).contains("validated 1 file (1 scenario), 0 warnings"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn validate_reports_every_problem_in_every_file() {
    let bad1 = VALID.replace("service = \"app\"", "service = \"db\"");
    let bad2 = VALID
        .replace("version = \"1\"", "version = 1")
        .replace("run = \"echo hi\"", "run = \"echo 'hi\"");
    let dir = project(&[("tests/a.clnrm.toml", &bad1), ("tests/b.clnrm.toml", &bad2)]);
    let out = clnrm(dir.path())
        .args(["validate", "tests"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("error[E0102]") && err.contains("--> tests/a.clnrm.toml:10:11"),
        "{err}"
    );
    assert!(
        err.contains("error[E0103]") && err.contains("--> tests/b.clnrm.toml:3:11"),
        "{err}"
    );
    assert!(err.contains("error[E0111]"), "{err}");
    assert!(err.contains("2 files of 2 invalid: 3 errors"), "{err}");
}

#[test]
fn json_format_is_one_document_with_positions() {
    let dir = project(&[(
        "tests/a.clnrm.toml",
        &VALID.replace("service = \"app\"", "service = \"db\""),
    )]);
    let out = clnrm(dir.path())
        .args(["validate", "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json: {e}: {}", stdout_of(&out)));
    assert_eq!(doc["errors"], 1);
    let d = &doc["diagnostics"][0];
    assert_eq!(
        (d["code"].as_str(), d["line"].as_u64(), d["column"].as_u64()),
        (Some("E0102"), Some(10), Some(11))
    );
    assert_eq!(d["file"], "tests/a.clnrm.toml");
}

#[test]
fn github_format_emits_annotations() {
    let dir = project(&[(
        "tests/a.clnrm.toml",
        &VALID.replace("image =", "imgae = \"x\"\nimage ="),
    )]);
    let out = clnrm(dir.path())
        .args(["validate", "--format", "github"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout_of(&out).starts_with("::warning file=tests/a.clnrm.toml,line=6,col=1,"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn deny_warnings_turns_a_typo_into_a_failure() {
    let dir = project(&[(
        "tests/a.clnrm.toml",
        &VALID.replace("image =", "imgae = \"x\"\nimage ="),
    )]);
    let out = clnrm(dir.path())
        .args(["validate", "--deny-warnings"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("error[W0001]: unknown key `service.app.imgae`"),
        "{}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains("did you mean `image`?"));
}

#[test]
fn missing_path_and_non_test_file_exit_2() {
    let dir = project(&[("Cargo.toml", "[package]\n")]);
    let out = clnrm(dir.path())
        .args(["validate", "nope"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("cannot read nope: no such file or directory"),
        "{}",
        stderr_of(&out)
    );
    let out = clnrm(dir.path())
        .args(["validate", "Cargo.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    // Named explicitly, it is read as a test definition whatever its name.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("missing required table [meta]"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_file_named_explicitly_is_read_whatever_its_name_but_directories_keep_the_rule() {
    let dir = project(&[
        ("validation_tests/minimal.toml", VALID),
        ("validation_tests/a.clnrm.toml", VALID),
    ]);
    let out = clnrm(dir.path())
        .args(["validate", "validation_tests/minimal.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = clnrm(dir.path())
        .args(["list", "validation_tests"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = stdout_of(&out);
    assert!(listed.contains("a.clnrm.toml"), "{listed}");
    assert!(!listed.contains("minimal.toml"), "{listed}");
}

#[test]
fn hostile_files_get_diagnostics_not_panics() {
    let dir = project(&[("tests/empty.clnrm.toml", "")]);
    let root = dir.path();
    std::fs::write(
        root.join("tests/latin1.clnrm.toml"),
        b"[meta]\nname = \"caf\xe9\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join("tests/dir.clnrm.toml")).unwrap_or_else(|e| panic!("{e}"));
    let big =
        std::fs::File::create(root.join("tests/big.clnrm.toml")).unwrap_or_else(|e| panic!("{e}"));
    big.set_len(50 * 1024 * 1024)
        .unwrap_or_else(|e| panic!("{e}"));
    let fifo = root.join("tests/fifo.clnrm.toml");
    let made_fifo = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let out = clnrm(root)
        .args(["validate", "tests"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("error[E0003]: test definition is empty"),
        "{err}"
    );
    assert!(
        err.contains("error[E0002]: tests/latin1.clnrm.toml is not valid UTF-8"),
        "{err}"
    );
    assert!(err.contains("--> tests/latin1.clnrm.toml:2:12"), "{err}");
    assert!(
        err.contains("cannot read tests/dir.clnrm.toml: it is a directory"),
        "{err}"
    );
    assert!(
        err.contains("error[E0004]: tests/big.clnrm.toml is 50.0 MiB"),
        "{err}"
    );
    if made_fifo {
        assert!(
            err.contains("cannot read tests/fifo.clnrm.toml: not a regular file"),
            "{err}"
        );
    }
}

#[test]
fn render_prints_rendered_toml_and_honours_var_precedence() {
    let tpl =
        "[meta]\nname = \"{{ svc }}-{{ region }}\"\nversion = \"1\"\n[vars]\nregion = \"file\"\n";
    let dir = project(&[
        ("t.clnrm.toml.tera", tpl),
        (
            ".clnrm/config.toml",
            "[vars]\nregion = \"config\"\nsvc = \"cfg\"\n",
        ),
    ]);
    let out = clnrm(dir.path())
        .args(["render", "t.clnrm.toml.tera"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("name = \"cfg-file\""),
        "{}",
        stdout_of(&out)
    );
    let out = clnrm(dir.path())
        .env("CLNRM_VAR_region", "env")
        .args(["render", "t.clnrm.toml.tera"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stdout_of(&out).contains("name = \"cfg-env\""),
        "{}",
        stdout_of(&out)
    );
    let out = clnrm(dir.path())
        .env("CLNRM_VAR_region", "env")
        .args([
            "render",
            "t.clnrm.toml.tera",
            "--var",
            "region=cli",
            "-o",
            "out.toml",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(dir.path().join("out.toml")).unwrap_or_default();
    assert!(written.contains("name = \"cfg-cli\""), "{written}");
}

#[test]
fn render_reports_template_errors_with_position() {
    let dir = project(&[("t.clnrm.toml.tera", "[meta]\nname = \"{{ missing }}\"\n")]);
    let out = clnrm(dir.path())
        .args(["render", "t.clnrm.toml.tera"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("--> t.clnrm.toml.tera:2:12"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bad_var_assignment_is_a_usage_error() {
    let dir = project(&[("tests/a.clnrm.toml", VALID)]);
    let out = clnrm(dir.path())
        .args(["validate", "--var", "novalue"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("invalid --var \"novalue\""));
}

#[test]
fn list_prints_scenario_ids() {
    let two =
        format!("{VALID}\n[[scenario]]\nname = \"second\"\nservice = \"app\"\nrun = \"true\"\n");
    let dir = project(&[("tests/sub/a.clnrm.toml", &two)]);
    let out = clnrm(dir.path())
        .arg("list")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout_of(&out),
        "tests/sub/a.clnrm.toml::hello\ntests/sub/a.clnrm.toml::second\n"
    );
    let bad = project(&[("tests/a.clnrm.toml", "[meta]\n")]);
    let out = clnrm(bad.path())
        .arg("list")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn init_scaffolds_a_project_that_validates() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = clnrm(dir.path())
        .arg("init")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.path().join(".clnrm/config.toml").is_file());
    let out = clnrm(dir.path())
        .args(["validate", "--deny-warnings"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let again = clnrm(dir.path())
        .arg("init")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(stdout_of(&again).contains("exists"));
    let elsewhere = clnrm(dir.path())
        .args(["init", "my project"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        stdout_of(&elsewhere).contains("next: cd 'my project' && clnrm validate tests/"),
        "{}",
        stdout_of(&elsewhere)
    );
}

#[test]
fn invalid_config_is_diagnosed_like_a_test_file() {
    let dir = project(&[
        ("tests/a.clnrm.toml", VALID),
        (".clnrm/config.toml", "[cache]\nenabled = \"yes\"\n"),
    ]);
    let out = clnrm(dir.path())
        .arg("validate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("--> .clnrm/config.toml:2:11"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn help_exists_for_every_command() {
    for cmd in [
        vec!["--help"],
        vec!["validate", "--help"],
        vec!["render", "--help"],
        vec!["list", "--help"],
        vec!["init", "--help"],
    ] {
        let out = clnrm(&repo_root())
            .args(&cmd)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
    }
    let out = clnrm(&repo_root())
        .arg("frobnicate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn template_error_in_rendered_toml_points_at_template_line_too() {
    let tpl = "{% set x = 1 %}\n[meta]\nname = \"t\"\nversion = \"1\"\n[service.app]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\nservice = \"db\"\nrun = \"true\"\n";
    let dir = project(&[("tests/t.clnrm.toml.tera", tpl)]);
    let out = clnrm(dir.path())
        .arg("validate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = stderr_of(&out);
    assert!(
        err.contains("--> tests/t.clnrm.toml.tera (rendered):9:11"),
        "{err}"
    );
    assert!(err.contains("::: tests/t.clnrm.toml.tera:9:11"), "{err}");
}

#[test]
fn completions_load_in_bash_and_name_every_command() {
    let dir = project(&[]);
    for (shell, marker) in [
        ("bash", "_clnrm()"),
        ("zsh", "#compdef clnrm"),
        ("fish", "complete -c clnrm"),
        ("elvish", "edit:completion:arg-completer[clnrm]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = clnrm(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {text}");
        for cmd in ["run", "validate", "serve", "report", "snapshots"] {
            assert!(text.contains(cmd), "{shell} completes {cmd}");
        }
    }
    // Bash reads the script and registers it.
    let script = dir.path().join("clnrm.bash");
    let out = clnrm(dir.path())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    std::fs::write(&script, &out.stdout).unwrap();
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p clnrm", script.display()))
        .output()
        .unwrap();
    assert!(
        loaded.status.success() && String::from_utf8_lossy(&loaded.stdout).contains("clnrm"),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let bad = clnrm(dir.path())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_writes_a_page_per_command() {
    let dir = project(&[]);
    let out = clnrm(dir.path()).args(["man", "man1"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (page, says) in [
        ("clnrm.1", "clnrm"),
        ("clnrm-run.1", "workers"),
        ("clnrm-serve-token-create.1", "scope"),
        ("clnrm-report-merge.1", "shards"),
    ] {
        let text = std::fs::read_to_string(dir.path().join("man1").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
        assert!(text.contains(says), "{page} mentions {says}");
    }
    // groff renders each page without a warning, where it is installed.
    if std::process::Command::new("groff")
        .arg("-v")
        .output()
        .is_ok()
    {
        let r = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.path().join("man1/clnrm-run.1"))
            .output()
            .unwrap();
        assert!(
            r.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
}

#[test]
fn a_warning_repeated_in_many_files_is_printed_once_naming_the_others() {
    let legacy = std::fs::read_to_string(repo_root().join("tests/broken/legacy-format.clnrm.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<(String, String)> = (0..8)
        .map(|i| (format!("tests/l{i}.clnrm.toml"), legacy.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let dir = project(&refs);
    let out = clnrm(dir.path())
        .arg("validate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("warning[W0002]").count(), 1, "{err}");
    assert!(
        err.contains("= note: the same warning in 7 more files: tests/l1.clnrm.toml")
            && err.contains("and 2 more"),
        "{err}"
    );
    assert!(err.contains("8 warnings"), "{err}");
    // Machine formats keep every one.
    let out = clnrm(dir.path())
        .args(["validate", "--format", "json"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(doc["diagnostics"].as_array().map(Vec::len), Some(8));
}

#[test]
fn an_undefined_service_suggests_the_one_its_name_is_part_of() {
    let text = VALID
        .replace("[service.app]", "[service.flask-app]")
        .replace("service = \"app\"", "service = \"flask\"");
    let dir = project(&[("tests/a.clnrm.toml", &text)]);
    let out = clnrm(dir.path())
        .arg("validate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error[E0102]") && err.contains("did you mean \"flask-app\"?"),
        "{err}"
    );
}
