//! A running `clnrm watch` whose output goes to a file, for the tests that drive it by
//! saving files: the watch tests and the develop example's. Each uses a part.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// A running `clnrm watch` whose stdout goes to a file.
pub struct Watching {
    pub child: Child,
    log: PathBuf,
}

/// A test that fails midway still stops its watch (Ctrl-C, so that it removes its
/// containers), instead of leaving it running after the test process.
impl Drop for Watching {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Not `signal`: nothing here may panic while a failed test unwinds.
            let _ = std::process::Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None)) {
                if start.elapsed() > Duration::from_secs(15) {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Watching {
    /// `clnrm watch --debounce 100 ARGS` in `dir`, stdout and stderr to one log.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let log = dir.join("watch.log");
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("clnrm"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .args(["watch", "--debounce", "100"])
            .args(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        Self { child, log }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `n` occurrences of `needle`.
    pub fn wait_for(&self, needle: &str, n: usize) {
        let start = Instant::now();
        while self.text().matches(needle).count() < n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {n}× {needle:?} in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The cycle the log ends with.
    pub fn last_cycle(&self) -> String {
        self.text()
            .rsplit("Running")
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}
