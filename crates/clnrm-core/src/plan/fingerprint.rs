//! Scenario fingerprints: a hash of everything in the files and options that decides
//! a scenario's outcome, and of nothing else (the cache key adds image ids and the
//! baseline).

use super::encoding::encode;
use super::options::PlanOptions;
use super::scenario::PlannedScenario;
use crate::model::Content;

/// What every scenario of a file shares in its fingerprint: the file's services,
/// limits, otel and expectations as rendered, the outside variables and the clnrm
/// version. Computed once per file.
pub(super) fn file_fingerprint(content: &Content, opts: &PlanOptions) -> String {
    let parts = [crate::cache::VERSION]
        .into_iter()
        .chain(content.shared.iter().map(String::as_str))
        .chain([opts.context.as_str()]);
    crate::digest::key(parts)
}

/// Everything that decides scenario `index`'s outcome: the file's shared part, its own
/// table as rendered, and its resolved environment and steps. Other scenarios' tables,
/// comments and formatting do not count.
pub(super) fn fingerprint(shared: &str, own: &str, sc: &PlannedScenario) -> String {
    let steps = encode(&sc.steps);
    let env = encode(&(&*sc.env, sc.timeout.map(|t| t.as_millis() as u64)));
    crate::digest::key([shared, own, steps.as_str(), env.as_str()])
}

#[cfg(test)]
mod tests {
    use crate::plan::tests_support::planned;

    const FILE: &str = "[meta]\nname = \"k\"\nversion = \"1\"\n\n[service.app]\nimage = \"img\"\nenv = { A = \"1\" }\nhealth_check = { cmd = [\"true\"] }\n\n[[scenario]]\nname = \"s\"\ntimeout_ms = 1000\n\n[[scenario.steps]]\nname = \"x\"\ncommand = [\"echo\", \"hi\"]\nexpected_output_regex = \"^hi$\"\n";

    #[test]
    fn a_scenario_key_is_a_pinned_encoding_not_debug_output() {
        // Pinned: this changes only when the key encoding or the clnrm version does
        // (both documented in `cache`), which makes every cache entry miss once.
        let p = planned(FILE);
        assert_eq!(
            p.scenarios[0].fingerprint,
            "c664695890a71653545a20a05505bbac8017baa8d5d97770c56486f13c08583c"
        );
        assert_eq!(p.scenarios[0].env.key, "2d247aa40eb200d4");
    }

    #[test]
    fn only_what_decides_the_outcome_changes_a_key() {
        let base = planned(FILE).scenarios[0].fingerprint.clone();
        let comment = FILE.replace("[[scenario]]", "# a comment\n[[scenario]]");
        assert_eq!(planned(&comment).scenarios[0].fingerprint, base);
        for changed in [
            FILE.replace("\"hi\"]", "\"ho\"]"),
            FILE.replace("^hi$", "^h"),
            FILE.replace("1000", "1001"),
            FILE.replace("A = \"1\"", "A = \"2\""),
        ] {
            assert_ne!(
                planned(&changed).scenarios[0].fingerprint,
                base,
                "{changed}"
            );
        }
    }
}
