//! Hosts for multi-host tests (SPEC §16): Linux network namespaces joined by veth pairs
//! to a bridge of the test's own, each with an address of a private /24; the test
//! process is on the bridge too. A host's link is cut and healed from the bridge's
//! side. Everything is named after the test process and removed when dropped.
//! Needs root and iproute2 (`scripts/setup.sh` installs it).
#![allow(dead_code, reason = "each test binary uses a part")]

use std::process::{Command, Stdio};

/// Runs a command that must succeed; says what it printed when it does not.
pub fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (iproute2 is installed by scripts/setup.sh)"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The firewall tools that may hold the engine's FORWARD policy (Docker sets it to
/// DROP, and bridged frames pass through it).
const FIREWALLS: [&str; 2] = ["iptables", "iptables-legacy"];

/// A private network of namespaces.
pub struct Net {
    tag: String,
    bridge: String,
    /// The /24's first three octets.
    prefix: String,
    hosts: Vec<String>,
    /// The firewall rules added, to remove (tool, rule).
    rules: Vec<(String, Vec<String>)>,
}

/// One host: its namespace, address and link.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    pub ip: String,
    /// The link's end on the bridge (cut and healed there).
    link: String,
}

impl Net {
    /// A bridge with the test process at `.1`.
    pub fn new() -> Self {
        assert!(
            nix_is_root(),
            "multi-host tests make network namespaces: run them as root (CI does)"
        );
        // A tag and a /24 no other network here uses: another test process's, or
        // the engine's address pools (tried in turn from this process's id).
        let pid = std::process::id();
        let (routes, links) = (ip(&["-4", "route"]), ip(&["-o", "link"]));
        let (tag, prefix) = (0..12_500u32)
            .map(|k| {
                let n = (pid + k * 7919) % 12_500;
                (format!("{n:05}"), format!("10.{}.{}", 200 + n % 50, n / 50))
            })
            .find(|(tag, prefix)| {
                !routes.contains(&format!("{prefix}.")) && !links.contains(&format!("clb{tag}"))
            })
            .expect("a free /24 in 10.200.0.0-10.249.255.0");
        let bridge = format!("clb{tag}");
        sh("ip", &["link", "add", &bridge, "type", "bridge"]);
        // From here on, dropping it removes what was made.
        let mut net = Self {
            tag,
            bridge: bridge.clone(),
            prefix: prefix.clone(),
            hosts: Vec::new(),
            rules: Vec::new(),
        };
        sh(
            "ip",
            &["addr", "add", &format!("{prefix}.1/24"), "dev", &bridge],
        );
        sh("ip", &["link", "set", &bridge, "up"]);
        for tool in FIREWALLS {
            let rule: Vec<String> = ["FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let mut insert = vec!["-I".to_owned()];
            insert.extend(rule.iter().cloned());
            let added = Command::new(tool)
                .args(&insert)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if added {
                net.rules.push((tool.to_owned(), rule));
            }
        }
        assert!(
            !net.rules.is_empty(),
            "neither iptables nor iptables-legacy could let the bridge forward (the engine's FORWARD policy drops bridged frames); scripts/setup.sh installs iptables"
        );
        net
    }

    /// A new host `name` (the `n`-th: its address is `.10 + n`).
    pub fn host(&mut self, name: &str) -> Host {
        let n = self.hosts.len();
        let ns = format!("cl{}{name}", self.tag);
        let link = format!("clv{}{n}", self.tag);
        let inner = format!("cli{}{n}", self.tag);
        let ip = format!("{}.{}", self.prefix, 10 + n);
        sh("ip", &["netns", "add", &ns]);
        self.hosts.push(ns.clone());
        sh(
            "ip",
            &["link", "add", &link, "type", "veth", "peer", "name", &inner],
        );
        sh("ip", &["link", "set", &inner, "netns", &ns]);
        sh("ip", &["link", "set", &link, "master", &self.bridge]);
        sh("ip", &["link", "set", &link, "up"]);
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns, "ip"];
            all.extend_from_slice(args);
            sh("ip", &all);
        };
        in_ns(&["link", "set", "lo", "up"]);
        in_ns(&["addr", "add", &format!("{ip}/24"), "dev", &inner]);
        in_ns(&["link", "set", &inner, "up"]);
        Host { ns, ip, link }
    }

    /// The test process's address on the network.
    pub fn own_ip(&self) -> String {
        format!("{}.1", self.prefix)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        for (tool, rule) in &self.rules {
            let mut delete = vec!["-D".to_owned()];
            delete.extend(rule.iter().cloned());
            let _ = Command::new(tool).args(&delete).output();
        }
    }
}

impl Host {
    /// `program` run in this host's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Cuts its link: nothing reaches it or leaves it (packets are dropped, as by a
    /// failed switch port, so connections hang rather than fail).
    pub fn cut(&self) {
        sh("ip", &["link", "set", &self.link, "down"]);
    }

    /// Heals its link.
    pub fn heal(&self) {
        sh("ip", &["link", "set", &self.link, "up"]);
    }
}

/// What `ip ARGS` prints.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip: {e} (iproute2 is installed by scripts/setup.sh)"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
