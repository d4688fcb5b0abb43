//! A PostgreSQL cluster of a test's or a bench's own (Debian's binaries, run as the
//! `postgres` user: needs root), in a directory of the caller's, listening on one
//! address: loopback, or a network namespace's (`hosts.rs`). Trusts every
//! connection from that address's /24. Stopped when dropped. `restart` is a fault.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    /// The network namespace it runs in, if any.
    netns: Option<String>,
    ip: String,
    port: u16,
}

impl PgCluster {
    /// Makes and starts a cluster in `dir/pg` listening on `ip:port` (in `netns`).
    /// `dir` and the directories above it must be searchable by `postgres`.
    pub fn start(dir: &Path, netns: Option<&str>, ip: &str, port: u16) -> Self {
        // The newest major version (numerically: 16 is newer than 9.6).
        let version = |p: &PathBuf| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .max_by_key(version)
            })
            .map(|v| v.join("bin"))
            .expect("PostgreSQL's binaries (scripts/setup.sh installs Debian's postgresql)");
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).unwrap();
        let owned = Command::new("chown")
            .args(["postgres:", &data.display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(owned, "chown postgres: {} (run as root)", data.display());
        let pg = Self {
            bin,
            data,
            netns: netns.map(str::to_owned),
            ip: ip.to_owned(),
            port,
        };
        let data = pg.data.display().to_string();
        pg.as_postgres("initdb", &["-D", &data, "-U", "postgres", "--auth=trust"]);
        let hba = pg.data.join("pg_hba.conf");
        let mut text = std::fs::read_to_string(&hba).unwrap();
        text.push_str(&format!("host all all {ip}/24 trust\n"));
        std::fs::write(&hba, text).unwrap();
        pg.ctl("start");
        pg
    }

    /// `pg_ctl restart -m fast`: every connection is cut, and the server is back when
    /// it returns.
    pub fn restart(&self) {
        self.ctl("restart");
    }

    /// `pg_ctl stop -m fast`: every connection is cut and none is taken until
    /// [`PgCluster::start_again`].
    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// Starts it again after [`PgCluster::stop`].
    pub fn start_again(&self) {
        self.ctl("start");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@{}:{}/postgres", self.ip, self.port)
    }

    fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    fn as_postgres(&self, program: &str, args: &[&str]) {
        let tool = self.bin.join(program).display().to_string();
        let out = self
            .command("runuser")
            .args(["-u", "postgres", "--", &tool])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        // Its socket directory is its data directory: nothing in /tmp to collide.
        let options = format!(
            "-p {} -k {} -c listen_addresses={} -c fsync=off -c synchronous_commit=off -c max_connections=200",
            self.port,
            self.data.display(),
            self.ip
        );
        let data = self.data.display().to_string();
        let log = self.data.join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w", "-o", &options];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.as_postgres("pg_ctl", &args);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let tool = self.bin.join("pg_ctl").display().to_string();
        let data = self.data.display().to_string();
        let _ = self
            .command("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &tool,
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}
