//! Rendering behaviour: variables, functions, macros, includes, errors, purity.

use super::*;
use crate::diag::{Code, Source};
use proptest::prelude::*;
use std::path::Path;

fn render_in(
    root: &Path,
    name: &str,
    text: &str,
    layers: &VarLayers,
) -> Result<String, Vec<crate::diag::Diagnostic>> {
    let path = root.join(name);
    let mut engine = TemplateEngine::new(root);
    engine
        .render(&Source::file(name, text), &path, layers)
        .map(|r| r.source.text().to_owned())
}

fn render(text: &str) -> Result<String, Vec<crate::diag::Diagnostic>> {
    render_in(
        Path::new("/nonexistent"),
        "t.clnrm.toml.tera",
        text,
        &VarLayers::default(),
    )
}

#[test]
fn variables_are_reachable_directly_and_under_vars() {
    let out = render("a = \"{{ svc }}\"\nb = \"{{ vars.env }}\"\n[vars]\nsvc = \"mine\"\n");
    assert_eq!(
        out.ok().as_deref(),
        Some("a = \"mine\"\nb = \"ci\"\n[vars]\nsvc = \"mine\"\n")
    );
}

#[test]
fn cli_vars_override_file_vars() {
    let layers = VarLayers {
        cli: [("svc".to_owned(), tera::Value::from("cli"))].into(),
        ..VarLayers::default()
    };
    let out = render_in(
        Path::new("/x"),
        "t.clnrm.toml.tera",
        "a = \"{{ svc }}\"\n[vars]\nsvc = \"file\"\n",
        &layers,
    );
    assert!(out.is_ok_and(|o| o.starts_with("a = \"cli\"")));
}

#[test]
fn frozen_clock_and_seed_make_output_pure() {
    let text = "[determinism]\nseed = 42\nfreeze_clock = \"2025-06-01T12:00:00Z\"\n[vars]\nt = \"{{ now_rfc3339() }}\"\nu = \"{{ uuid() }}\"\nn = \"{{ fake_name() }}\"\ni = {{ fake_int(min=1, max=6) }}\n";
    let a = render(text).unwrap_or_default();
    let b = render(text).unwrap_or_default();
    assert_eq!(a, b);
    assert!(a.contains("t = \"2025-06-01T12:00:00Z\""));
    let other_seed = render(&text.replace("seed = 42", "seed = 43")).unwrap_or_default();
    assert_ne!(a, other_seed);
}

#[test]
fn sha256_uuid_and_toml_encode_functions() {
    let out = render("h = \"{{ sha256(s=\"abc\") }}\"\nu = \"{{ uuid(seed=\"x\") }}\"\nl = {{ toml_encode(value=[\"a\", 1]) }}\n").unwrap_or_default();
    assert!(out.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert!(out.contains("l = [\"a\", 1]"));
    let again = render("u = \"{{ uuid(seed=\"x\") }}\"").unwrap_or_default();
    assert!(out.contains(&again[4..40]));
}

#[test]
fn env_function_uses_default_and_reports_unset_variable() {
    let out = render("a = \"{{ env(name=\"CLNRM_SURELY_UNSET_VAR\", default=\"d\") }}\"")
        .unwrap_or_default();
    assert_eq!(out, "a = \"d\"");
    let err = render("\n\na = \"{{ env(name=\"CLNRM_SURELY_UNSET_VAR\") }}\"")
        .err()
        .unwrap_or_default();
    assert_eq!(err.len(), 1);
    assert!(
        err[0].message.contains("CLNRM_SURELY_UNSET_VAR"),
        "{}",
        err[0].message
    );
    let label = err[0]
        .primary
        .as_ref()
        .map(|l| l.source.line_col(l.span.start).line);
    assert_eq!(label, Some(3));
}

#[test]
fn undefined_variable_points_at_its_use() {
    let err = render("[meta]\nname = \"{{ nope }}\"\n")
        .err()
        .unwrap_or_default();
    assert_eq!(err[0].code, Code::TemplateRender);
    let l = err[0]
        .primary
        .as_ref()
        .map(|l| l.source.line_col(l.span.start));
    assert_eq!(l.map(|p| (p.line, p.col)), Some((2, 12)));
}

#[test]
fn syntax_error_keeps_teras_position() {
    let err = render("a = 1\nb = \"{{ x \"\n").err().unwrap_or_default();
    assert_eq!(err[0].code, Code::TemplateSyntax);
    let l = err[0]
        .primary
        .as_ref()
        .map(|l| l.source.line_col(l.span.start).line);
    assert_eq!(l, Some(2));
}

#[test]
fn shipped_macros_render_valid_toml() {
    let text = r#"{% import "_macros.toml.tera" as m %}
[meta]
name = "m"
version = "1"
{{ m::service(id="api", image="img", args=["sleep", "infinity"], env=["A=1"], ports=[8080]) }}
{{ m::scenario(name="s", service="api", run="echo hi", priority=2, timeout_ms=500) }}
{{ m::span(name="a", parent="root", kind="server", attrs=["http.status_code=200"], events=["e"]) }}
{{ m::edges(pairs=["root>a"]) }}
{{ m::window(outer="root", contains=["a"]) }}
{{ m::lifecycle(spans=["x", "y", "z"]) }}
"#;
    let out = render(text).unwrap_or_else(|e| panic!("{:?}", e[0].message));
    let src = Source::file("r", out.clone());
    let (file, diags) = crate::model::parse_test_file(&src);
    assert!(
        diags.is_empty(),
        "{out}\n{:?}",
        diags
            .into_sorted()
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
    );
    let file = file.unwrap_or_else(|| panic!("no model"));
    assert_eq!(
        file.scenarios[0].priority.as_ref().map(|p| p.value),
        Some(2)
    );
    let order = file.expect.order.unwrap_or_default();
    assert_eq!(order.must_precede.len(), 2);
    assert_eq!(order.must_precede[1].b().to_string(), "\"z\"");
}

#[test]
fn includes_resolve_next_to_the_template_then_in_project_templates() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::create_dir_all(root.join(".clnrm/templates"))?;
    std::fs::create_dir_all(root.join("tests"))?;
    std::fs::write(root.join(".clnrm/templates/shared.tera"), "shared = true\n")?;
    std::fs::write(root.join("tests/local.tera"), "local = \"{{ svc }}\"\n")?;
    let mut engine = TemplateEngine::new(root);
    let path = root.join("tests/a.clnrm.toml.tera");
    let src = Source::file(
        "tests/a.clnrm.toml.tera",
        "{% include \"local.tera\" %}{% include \"shared.tera\" %}",
    );
    let out = engine
        .render(&src, &path, &VarLayers::default())
        .map_err(|e| std::io::Error::other(e[0].message.clone()))?;
    assert_eq!(out.source.text(), "local = \"clnrm\"\nshared = true\n");
    assert_eq!(out.dependencies.len(), 2);
    let missing = Source::file("tests/a.clnrm.toml.tera", "{% include \"nope.tera\" %}");
    let err = engine
        .render(&missing, &path, &VarLayers::default())
        .err()
        .unwrap_or_default();
    assert_eq!(err[0].code, Code::TemplateNotFound);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn rendering_never_panics(text in "(\\{\\{|\\}\\}|\\{%|%\\}|[a-z =\"\\[\\]\n]|import|include){0,40}") {
        let _ = render(&text);
    }

    #[test]
    fn rendering_is_deterministic(seed in 0u64..1000, n in 1usize..5) {
        let body: String = (0..n).map(|i| format!("k{i} = \"{{{{ fake_name() }}}} {{{{ uuid() }}}} {{{{ fake_int(min=0, max=9) }}}}\"\n")).collect();
        let text = format!("[determinism]\nseed = {seed}\n[vars]\n{body}");
        prop_assert_eq!(render(&text).ok(), render(&text).ok());
    }
}

/// Renders `text` with folding and as written, in engines that have already rendered
/// `warm` (so a shape compiled for another file is reused).
fn folded_and_reference(
    warm: &str,
    text: &str,
) -> (Result<String, String>, Result<String, String>) {
    let root = Path::new("/nonexistent");
    let path = root.join("t.clnrm.toml.tera");
    let layers = VarLayers::default();
    let run = |mut engine: TemplateEngine| {
        let _ = engine.render(&Source::file("w.clnrm.toml.tera", warm), &path, &layers);
        engine
            .render(&Source::file("t.clnrm.toml.tera", text), &path, &layers)
            .map(|r| r.source.text().to_owned())
            .map_err(|d| {
                d.iter()
                    .map(|d| crate::diag::render_human(d, crate::diag::Style::Plain))
                    .collect()
            })
    };
    (
        run(TemplateEngine::new(root)),
        run(TemplateEngine::new(root).without_folding()),
    )
}

#[test]
fn templates_that_differ_only_in_literal_text_compile_once() {
    let root = Path::new("/nonexistent");
    let path = root.join("t.clnrm.toml.tera");
    let mut engine = TemplateEngine::new(root);
    for i in 0..5 {
        let text = format!("name = \"n{i}\" # {i}\nsvc = \"{{{{ svc }}}}-{i}\"\n");
        let out = engine
            .render(
                &Source::file("t.clnrm.toml.tera", &text),
                &path,
                &VarLayers::default(),
            )
            .map(|r| r.source.text().to_owned());
        assert_eq!(
            out.ok(),
            Some(format!("name = \"n{i}\" # {i}\nsvc = \"clnrm-{i}\"\n"))
        );
    }
    assert_eq!(engine.shapes_compiled(), 1);
}

#[test]
fn folding_keeps_whitespace_control_imports_and_errors_exact() {
    for text in [
        "{% import \"_macros.toml.tera\" as m %}\n\n  a = 1\n",
        "a = 1  \n  {%- if true -%}  \n b \n {%- endif %}\n c",
        "{% for i in [1, 2] -%}\n  x{{ i }} \n{%- endfor %}\nend",
        "{% filter upper %}abc {{ svc }} def{% endfilter %}",
        "a {#- note -#} b {# keep #} c",
        "x {{- svc -}} y",
        " \u{a0}nbsp\u{a0} {%- set q = 1 -%} \u{a0}z",
        "bad {{ nope }} here",
        "a\nb {% if %} c",
        "{{ \"}}\" }} {{ '%}' }}",
    ] {
        let (folded, reference) = folded_and_reference("", text);
        assert_eq!(folded, reference, "{text:?}");
    }
}

/// One piece of a generated template: nested well-formed blocks, with every
/// whitespace-control variant, literal text full of braces and whitespace, and errors.
fn template_piece() -> impl Strategy<Value = String> {
    let dash = || prop_oneof![Just(""), Just("-")];
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "a = 1\n",
            "  ",
            "\n",
            "t = { x = 1 }",
            "}}",
            "%}",
            "#}",
            "{",
            " \u{a0}x\u{a0} ",
            "\t\n  b \n",
            "name = \"q\"",
            "é",
        ])
        .prop_map(str::to_owned),
        (
            dash(),
            dash(),
            prop::sample::select(vec![
                "svc",
                "vars.env",
                "svc | upper",
                "\"}}\"",
                "nope",
                "1 +"
            ])
        )
            .prop_map(|(l, r, e)| format!("{{{{{l} {e} {r}}}}}")),
        (
            dash(),
            dash(),
            prop::sample::select(vec![" c ", "", "-", "x#"])
        )
            .prop_map(|(l, r, t)| format!("{{#{l}{t}{r}#}}")),
        (dash(), dash()).prop_map(|(l, r)| format!("{{%{l} set q = \"v\" {r}%}}")),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        let body = prop::collection::vec(inner, 0..4).prop_map(|v| v.concat());
        let ws = || {
            (
                prop_oneof![Just(""), Just("-")],
                prop_oneof![Just(""), Just("-")],
            )
        };
        prop_oneof![
            (ws(), body.clone(), ws(), body.clone(), ws()).prop_map(
                |((a, b), x, (c, d), y, (e, f))| {
                    format!("{{%{a} if svc {b}%}}{x}{{%{c} else {d}%}}{y}{{%{e} endif {f}%}}")
                }
            ),
            (ws(), body.clone(), ws()).prop_map(|((a, b), x, (c, d))| {
                format!("{{%{a} for i in [1, 2] {b}%}}{x}{{{{ i }}}}{{%{c} endfor {d}%}}")
            }),
            (ws(), body.clone(), ws()).prop_map(|((a, b), x, (c, d))| {
                format!("{{%{a} filter upper {b}%}}{x}{{%{c} endfilter {d}%}}")
            }),
            (ws(), body, ws()).prop_map(|((a, b), x, (c, d))| {
                format!("{{%{a} raw {b}%}}{x}{{%{c} endraw {d}%}}")
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn folded_rendering_equals_rendering_as_written(
        pieces in prop::collection::vec(template_piece(), 0..8),
        import in any::<bool>(),
    ) {
        let head = if import { "{% import \"_macros.toml.tera\" as m %}\n" } else { "" };
        let text = format!("{head}{}", pieces.concat());
        // The warm-up file has the same shape with other literal text.
        let warm = text.replace("a = 1", "zz = 22").replace("name", "other");
        let (folded, reference) = folded_and_reference(&warm, &text);
        prop_assert_eq!(folded, reference, "{:?}", text);
    }
}

#[test]
fn syntax_error_after_multibyte_text_points_at_the_right_character() {
    let errs = render("a = \"é\u{a0}\" {% if %}\n")
        .err()
        .unwrap_or_default();
    let shown = crate::diag::render_human(&errs[0], crate::diag::Style::Plain);
    assert!(shown.contains("t.clnrm.toml.tera:1:16"), "{shown}");
}

#[test]
fn a_compiled_shape_outlives_many_shapes_seen_once() {
    let root = Path::new("/nonexistent");
    let path = root.join("t.clnrm.toml.tera");
    let mut engine = TemplateEngine::new(root);
    let mut render = |text: String| {
        engine
            .render(
                &Source::file("t.clnrm.toml.tera", &text),
                &path,
                &VarLayers::default(),
            )
            .map(|r| r.source.text().to_owned())
            .ok()
    };
    for i in 0..2 {
        assert_eq!(
            render(format!("a{i} {{{{ svc }}}}")),
            Some(format!("a{i} clnrm"))
        );
    }
    for i in 0..300 {
        assert_eq!(render(format!("{{{{ \"u{i}\" }}}}")), Some(format!("u{i}")));
    }
    // Had the compiled shape been dropped, these two would compile it again.
    assert_eq!(render("y {{ svc }}".into()), Some("y clnrm".into()));
    assert_eq!(render("z {{ svc }}".into()), Some("z clnrm".into()));
    assert_eq!(engine.shapes_compiled(), 1);
}

/// Renders `files` (name, text) written into a temporary project; the first is rendered.
fn render_files(files: &[(&str, &str)]) -> Result<String, Vec<crate::diag::Diagnostic>> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
    }
    let (name, text) = files[0];
    render_in(dir.path(), name, text, &VarLayers::default())
}

fn first_error(result: Result<String, Vec<crate::diag::Diagnostic>>) -> crate::diag::Diagnostic {
    match result {
        Ok(out) => panic!("rendered: {out:?}"),
        Err(mut d) => d.remove(0),
    }
}

#[test]
fn a_template_that_includes_itself_is_e0021_not_a_stack_overflow() {
    let d = first_error(render_files(&[(
        "self.clnrm.toml.tera",
        "x = 1\n{% include \"self.clnrm.toml.tera\" %}",
    )]));
    assert_eq!(d.code, Code::TemplateRender, "{d:?}");
    assert!(d.message.contains("nests deeper than 64 levels"), "{d:?}");
    assert!(d.message.contains("includes itself"), "{d:?}");
}

#[test]
fn a_macro_that_calls_itself_without_end_is_e0021_at_the_macro() {
    let text = "{% macro m(n) %}{{ self::m(n=n+1) }}{% endmacro m %}\n{{ self::m(n=0) }}";
    let d = first_error(render_files(&[("m.clnrm.toml.tera", text)]));
    assert_eq!(d.code, Code::TemplateRender, "{d:?}");
    assert!(d.message.contains("macro \"m\""), "{d:?}");
    let label = d.primary.as_ref().map(|l| l.span.start);
    assert_eq!(label, Some(text.find("m(n)").unwrap_or(0)), "{d:?}");
}

#[test]
fn import_cycles_are_e0021_naming_the_cycle() {
    let d = first_error(render_files(&[
        ("t.clnrm.toml.tera", "{% import \"a.tera\" as a %}\nx = 1\n"),
        (
            "a.tera",
            "{% import \"b.tera\" as b %}{% macro fa() %}a{% endmacro fa %}",
        ),
        (
            "b.tera",
            "{% import \"a.tera\" as a %}{% macro fb() %}b{% endmacro fb %}",
        ),
    ]));
    assert_eq!(d.code, Code::TemplateRender, "{d:?}");
    assert!(d.message.contains("imported in a cycle"), "{d:?}");
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.contains("a.tera → ") && h.contains("b.tera")),
        "{d:?}"
    );
    let own = first_error(render_files(&[(
        "me.clnrm.toml.tera",
        "{% import \"me.clnrm.toml.tera\" as me %}\nx = 1\n",
    )]));
    assert!(own.message.contains("imported in a cycle"), "{own:?}");
}

/// Runs `f` on a thread with the stack validation gives a render.
fn on_render_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(crate::validate::RENDER_STACK)
        .spawn(f)
        .unwrap_or_else(|e| panic!("{e}"))
        .join()
        .unwrap_or_else(|_| panic!("the render panicked"))
}

#[test]
fn recursion_that_ends_within_the_bound_renders() {
    on_render_stack(recursion_within_the_bound);
}

fn recursion_within_the_bound() {
    let depth = MAX_DEPTH - 1;
    let text = format!(
        "{{% macro m(n) %}}{{% if n > 0 %}}x{{{{ self::m(n=n-1) }}}}{{% endif %}}{{% endmacro m %}}\nx = \"{{{{ self::m(n={}) }}}}\"\n",
        depth - 1
    );
    let out = render_files(&[("deep.clnrm.toml.tera", &text)]).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(out, format!("\nx = \"{}\"\n", "x".repeat(depth - 1)));
    // An include that counts its own depth ends, and is allowed.
    let out = render_files(&[
        (
            "inc.clnrm.toml.tera",
            "{% set d = 0 %}{% include \"x.tera\" %}",
        ),
        (
            "x.tera",
            "{% set d = d + 1 %}{% if d < 4 %}{{ d }}{% include \"x.tera\" %}{% endif %}",
        ),
    ]);
    assert_eq!(out.ok().as_deref(), Some("123"));
}

#[test]
fn unbounded_recursion_on_a_small_stack_fails_cleanly() {
    // A thread of Rust's default size, far smaller than a validation thread's.
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let text = "{% macro m(n) %}{% for i in [1] %}{% if n > 0 %}{% filter upper %}{{ self::m(n=n-1) }}{% endfilter %}{% endif %}{% endfor %}{% endmacro m %}\n{{ self::m(n=200) }}";
            render_files(&[("s.clnrm.toml.tera", text)]).map_err(|d| d[0].message.clone())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let result = handle
        .join()
        .unwrap_or_else(|_| panic!("the render panicked"));
    assert!(
        result
            .as_ref()
            .is_err_and(|m| m.contains("too deep for the stack")),
        "{result:?}"
    );
}

#[test]
fn the_recursion_bound_leaves_output_byte_for_byte() {
    for text in [
        "{% macro m(n) -%}\n  a {{ n }}\n{%- endmacro m %}\n[{{ self::m(n=1) }}]\n",
        "{% macro m() %}  a  {% endmacro m %}\n<{{ self::m() }}>\n  {%- if true -%} y {% endif %}",
        "{% macro m(n) -%} {% if n > 0 %}{{ n }},{{ self::m(n=n-1) }}{% endif %} {%- endmacro m %}{{ self::m(n=3) }}",
        "{%- macro m() %}\n\n{% endmacro m -%}\n\n{{ self::m() }} end",
    ] {
        let plain = tera::Tera::one_off(text, &tera::Context::new(), false)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(render(text).ok(), Some(plain), "{text:?}");
    }
}
