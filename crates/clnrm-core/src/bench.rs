//! `clnrm bench` (SPEC §8): the statistics of repeated runs of scenarios, per
//! scenario and per step; saved results (`.clnrm/bench/NAME.json`) and the comparison
//! of two. The runs themselves go through the pipeline like any other.

use crate::exec::Status;
use crate::report::RunReport;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::path::Path;

/// The format name written in a saved file.
pub const FORMAT: &str = "clnrm.bench.v1";

/// The most a saved bench file may hold, in bytes (it is read whole).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Summary statistics of samples in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min: f64,
    /// Middle value (the mean of the two middle ones for an even count).
    pub median: f64,
    /// 95th percentile, linearly interpolated between the closest ranks (as
    /// NumPy's default and R's type 7).
    pub p95: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator; 0 for one sample).
    pub stddev: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// The statistics of `samples` (all zero when there are none).
    pub fn of(samples: &[f64]) -> Self {
        let n = samples.len();
        if n == 0 {
            return Self::default();
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let mean = s.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Self {
            n,
            min: s[0],
            median: quantile(&s, 0.5),
            p95: quantile(&s, 0.95),
            mean,
            stddev: var.sqrt(),
            max: s[n - 1],
        }
    }
}

/// The `q` quantile of sorted `s`, interpolated between the closest ranks.
fn quantile(s: &[f64], q: f64) -> f64 {
    let h = (s.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

/// One step's timings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepBench {
    /// Step name.
    pub name: String,
    /// Its durations.
    pub stats: Stats,
}

/// One scenario's timings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioBench {
    /// Scenario id.
    pub id: String,
    /// Its durations (steps and checks, the critical path a run reports).
    pub stats: Stats,
    /// Measured rounds in which it did not pass (left out of the statistics).
    pub failed: usize,
    /// What went wrong the last time it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Each step, in order.
    pub steps: Vec<StepBench>,
}

/// The result of a bench: what `--save` keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// [`FORMAT`].
    pub format: String,
    /// Rounds run first and not measured.
    pub warmup: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Each selected scenario, in plan order.
    pub scenarios: Vec<ScenarioBench>,
}

impl BenchResult {
    /// The statistics of the measured `rounds` (each a run of the same plan).
    pub fn of(rounds: &[RunReport], warmup: usize) -> Self {
        let mut scenarios: Vec<ScenarioBench> = Vec::new();
        let Some(first) = rounds.first() else {
            return Self {
                format: FORMAT.into(),
                warmup,
                rounds: 0,
                scenarios,
            };
        };
        for (i, r) in first.results.iter().enumerate() {
            if r.is_unselected() {
                continue;
            }
            let runs: Vec<_> = rounds.iter().filter_map(|rep| rep.results.get(i)).collect();
            let passed: Vec<_> = runs.iter().filter(|x| x.status == Status::Passed).collect();
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            let durations: Vec<f64> = passed.iter().map(|x| ms(x.duration)).collect();
            let steps = r
                .steps
                .iter()
                .enumerate()
                .map(|(k, st)| StepBench {
                    name: st.name.clone(),
                    stats: Stats::of(
                        &passed
                            .iter()
                            .filter_map(|x| x.steps.get(k).map(|s| ms(s.duration)))
                            .collect::<Vec<_>>(),
                    ),
                })
                .collect();
            scenarios.push(ScenarioBench {
                id: r.id.0.clone(),
                stats: Stats::of(&durations),
                failed: runs.len() - passed.len(),
                failure: runs
                    .iter()
                    .rev()
                    .find(|x| x.status != Status::Passed)
                    .map(|x| {
                        x.message
                            .clone()
                            .unwrap_or_else(|| x.status.as_str().into())
                    }),
                steps,
            });
        }
        Self {
            format: FORMAT.into(),
            warmup,
            rounds: rounds.len(),
            scenarios,
        }
    }

    /// Whether a measured round of some scenario did not pass.
    pub fn has_failures(&self) -> bool {
        self.scenarios.iter().any(|s| s.failed > 0)
    }

    /// Reads a saved result; the error says why it cannot be used.
    pub fn load(path: &Path) -> Result<Self, crate::jsonfile::ReadError> {
        const WHAT: &str = "clnrm bench result";
        crate::jsonfile::read(path, MAX_BYTES, WHAT, FORMAT, |r: &Self| &r.format)?.ok_or_else(
            || crate::jsonfile::ReadError::Missing {
                path: path.display().to_string(),
                what: "saved result",
            },
        )
    }

    /// Writes it atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::jsonfile::write(path, self)
    }
}

/// A saved result's name as a file name: letters, digits, `.`, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// One median beside its saved counterpart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Scenario id.
    pub id: String,
    /// Step name, for a step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Saved median, ms.
    pub old: f64,
    /// Current median, ms.
    pub new: f64,
    /// Change in percent of the saved one.
    pub percent: f64,
    /// A scenario's median got slower by more than the threshold.
    pub regressed: bool,
}

/// The medians of `new` beside those of `old` (scenarios and steps present in both,
/// with samples in both); a scenario whose median grew by more than `threshold`
/// percent is a regression (steps are shown, not judged: a step of a millisecond
/// moves by more than any threshold from noise alone).
pub fn compare(new: &BenchResult, old: &BenchResult, threshold: f64) -> Vec<Change> {
    let mut out = Vec::new();
    let pct = |o: f64, n: f64| if o > 0.0 { (n - o) / o * 100.0 } else { 0.0 };
    for s in &new.scenarios {
        let Some(o) = old.scenarios.iter().find(|o| o.id == s.id) else {
            continue;
        };
        if s.stats.n == 0 || o.stats.n == 0 {
            continue;
        }
        let p = pct(o.stats.median, s.stats.median);
        out.push(Change {
            id: s.id.clone(),
            step: None,
            old: o.stats.median,
            new: s.stats.median,
            percent: p,
            regressed: p > threshold,
        });
        for st in &s.steps {
            if let Some(os) = o.steps.iter().find(|x| x.name == st.name)
                && st.stats.n > 0
                && os.stats.n > 0
            {
                out.push(Change {
                    id: s.id.clone(),
                    step: Some(st.name.clone()),
                    old: os.stats.median,
                    new: st.stats.median,
                    percent: pct(os.stats.median, st.stats.median),
                    regressed: false,
                });
            }
        }
    }
    out
}

fn row(name: &str, width: usize, s: &Stats) -> String {
    format!(
        "{name:<width$} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>8.1}",
        s.min, s.median, s.p95, s.mean, s.stddev
    )
}

/// The width of the name column: the longest name (in characters), at least 40.
fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0).max(40)
}

/// The human table (and the comparison, when there is one), its columns as wide as
/// the longest scenario id or step name.
pub fn to_human(r: &BenchResult, changes: Option<&[Change]>) -> String {
    let width = name_width(r.scenarios.iter().flat_map(|s| {
        std::iter::once(s.id.as_str()).chain(s.steps.iter().map(|st| st.name.as_str()))
    }))
    .saturating_add(2);
    let mut out = format!(
        "{} rounds after {} warm-up (ms)\n{:<width$} {:>9} {:>9} {:>9} {:>9} {:>8}\n",
        r.rounds, r.warmup, "scenario / step", "min", "median", "p95", "mean", "stddev"
    );
    for s in &r.scenarios {
        let _ = writeln!(out, "{}", row(&s.id, width, &s.stats));
        for st in &s.steps {
            let _ = writeln!(out, "{}", row(&format!("  {}", st.name), width, &st.stats));
        }
        if s.failed > 0 {
            let _ = writeln!(
                out,
                "  FAILED in {} of {} rounds: {}",
                s.failed,
                r.rounds,
                s.failure.as_deref().unwrap_or("")
            );
        }
    }
    if let Some(changes) = changes {
        let _ = writeln!(out, "\nmedian, saved → now:");
        for c in changes {
            let name = match &c.step {
                Some(st) => format!("  {st}"),
                None => c.id.clone(),
            };
            let mark = if c.regressed { "  REGRESSION" } else { "" };
            let _ = writeln!(
                out,
                "{name:<width$} {:>9.1} → {:>9.1} {:>+7.1}%{mark}",
                c.old, c.new, c.percent
            );
        }
    }
    out
}

/// The Markdown tables.
pub fn to_markdown(r: &BenchResult, changes: Option<&[Change]>) -> String {
    let cell = |t: &str| t.replace('|', "\\|");
    let mut md = format!(
        "## clnrm bench\n\n{} rounds after {} warm-up, in ms.\n\n| scenario / step | min | median | p95 | mean | stddev | failed |\n|---|---:|---:|---:|---:|---:|---:|\n",
        r.rounds, r.warmup
    );
    let line = |md: &mut String, name: &str, s: &Stats, failed: &str| {
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {failed} |",
            cell(name),
            s.min,
            s.median,
            s.p95,
            s.mean,
            s.stddev
        );
    };
    for s in &r.scenarios {
        line(
            &mut md,
            &format!("`{}`", s.id),
            &s.stats,
            &s.failed.to_string(),
        );
        for st in &s.steps {
            line(&mut md, &format!("↳ {}", st.name), &st.stats, "");
        }
    }
    if let Some(changes) = changes {
        md.push_str("\n| median | saved | now | change |\n|---|---:|---:|---:|\n");
        for c in changes {
            let name = match &c.step {
                Some(st) => format!("↳ {}", cell(st)),
                None => format!("`{}`", cell(&c.id)),
            };
            let mark = if c.regressed { " ❌" } else { "" };
            let _ = writeln!(
                md,
                "| {name} | {:.1} | {:.1} | {:+.1}%{mark} |",
                c.old, c.new, c.percent
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn statistics_of_known_samples() {
        // Checked against NumPy: np.percentile(x, 95), np.std(x, ddof=1).
        let s = Stats::of(&[15.0, 20.0, 35.0, 40.0, 50.0]);
        assert_eq!((s.n, s.min, s.max), (5, 15.0, 50.0));
        assert!(close(s.median, 35.0));
        assert!(close(s.mean, 32.0));
        assert!(close(s.p95, 48.0), "{}", s.p95);
        assert!(close(s.stddev, 14.404_860_290_887_9), "{}", s.stddev);
        // Even count: the median is the mean of the two middle values; order does
        // not matter.
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0]);
        assert!(close(s.median, 2.5));
        assert!(close(s.p95, 3.85), "{}", s.p95);
        assert!(close(s.stddev, 1.290_994_448_735_805_6), "{}", s.stddev);
        // One sample: no spread.
        let s = Stats::of(&[7.0]);
        assert_eq!((s.median, s.p95, s.stddev, s.mean), (7.0, 7.0, 0.0, 7.0));
        assert_eq!(Stats::of(&[]), Stats::default());
        // 1..=100: p95 is 95.05.
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&xs);
        assert!(close(s.p95, 95.05), "{}", s.p95);
        assert!(close(s.median, 50.5));
        assert!(close(s.stddev, 29.011_491_975_882_016), "{}", s.stddev);
    }

    fn result(median_a: f64, step: f64) -> BenchResult {
        let stats = |m: f64| Stats {
            n: 3,
            median: m,
            ..Stats::default()
        };
        BenchResult {
            format: FORMAT.into(),
            warmup: 1,
            rounds: 3,
            scenarios: vec![ScenarioBench {
                id: "a::s".into(),
                stats: stats(median_a),
                failed: 0,
                failure: None,
                steps: vec![StepBench {
                    name: "x".into(),
                    stats: stats(step),
                }],
            }],
        }
    }

    #[test]
    fn a_scenario_median_beyond_the_threshold_is_a_regression() {
        let old = result(100.0, 10.0);
        let c = compare(&result(109.0, 20.0), &old, 10.0);
        assert_eq!(c.len(), 2);
        assert!(!c[0].regressed && close(c[0].percent, 9.0));
        assert!(!c[1].regressed, "steps are not judged");
        let c = compare(&result(111.0, 10.0), &old, 10.0);
        assert!(c[0].regressed);
        assert!(to_human(&result(111.0, 10.0), Some(&c)).contains("REGRESSION"));
        assert!(to_markdown(&result(111.0, 10.0), Some(&c)).contains("❌"));
        let c = compare(&result(50.0, 10.0), &old, 10.0);
        assert!(!c[0].regressed && close(c[0].percent, -50.0));
    }

    #[test]
    fn saved_results_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b/x.json");
        let r = result(1.5, 0.5);
        r.save(&p).unwrap();
        assert_eq!(BenchResult::load(&p).unwrap(), r);
        std::fs::write(&p, "{}").unwrap();
        assert!(
            BenchResult::load(&p)
                .unwrap_err()
                .to_string()
                .contains("not a clnrm bench result")
        );
        assert!(valid_name("main-2026.11"));
        assert!(!valid_name("../x") && !valid_name("") && !valid_name(".hidden"));
    }

    #[test]
    fn the_table_is_as_wide_as_its_longest_id() {
        let mut r = result(10.0, 1.0);
        let long = format!(
            "tests/{}.clnrm.toml::a scenario with a long name",
            "x".repeat(50)
        );
        r.scenarios[0].id.clone_from(&long);
        let text = to_human(&r, None);
        // Every row's columns start at the same place: the header's `min` column.
        let lines: Vec<&str> = text.lines().skip(1).collect();
        let end = |l: &str| l.len();
        assert!(lines.iter().all(|l| end(l) == end(lines[0])), "{text}");
        assert!(lines[1].starts_with(&long), "{text}");
    }
}
