//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/setup.sh` installs) with the fantoccini client.
//! Each [`Browser`] is its own chromedriver with its own profile; dropping it ends
//! the driver and the browser processes of that profile.
#![allow(dead_code, reason = "each test binary uses a part")]

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A browser session.
pub struct Browser {
    driver: Child,
    /// The WebDriver client.
    pub client: Client,
    profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"))
}

fn find(names: &[&str]) -> String {
    for n in names {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return p.display().to_string();
            }
        }
    }
    panic!(
        "none of {names:?} is installed: run scripts/setup.sh (it installs Debian's chromium and chromium-driver)"
    )
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height` CSS pixels,
    /// in `scheme` (`light` or `dark`).
    pub async fn start(width: u32, height: u32, scheme: &str) -> Self {
        let driver_bin = find(&["chromedriver", "chromium-driver"]);
        let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{driver_bin}: {e}"));
        let profile = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--blink-settings=preferredColorScheme={}", if scheme == "dark" { 0 } else { 1 }),
                ],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        // The driver listens after a moment; a session is asked for once it does.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{driver_bin} did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let client = tokio::time::timeout(
            Duration::from_secs(60),
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url),
        )
        .await
        .unwrap_or_else(|_| panic!("no WebDriver session at {url} within 60 s"))
        .unwrap_or_else(|e| panic!("no WebDriver session at {url}: {e}"));
        Self {
            driver,
            client,
            profile,
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The text of the first element `selector` finds ("" when none does).
    pub async fn text(&self, selector: &str) -> String {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''",
                vec![Value::String(selector.to_owned())],
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `script` returns a truthy value; that value.
    pub async fn until(&self, what: &str, limit: Duration, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js(script, vec![]).await;
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            if started.elapsed() > limit {
                let text = self.js("return document.body.innerText", vec![]).await;
                panic!("waited {limit:?} for {what}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot as `<target>/tmp/screenshots/<name>.png` (CI keeps them).
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// Ends the session and the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser processes are the ones given this session's own profile.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = Command::new("pkill")
            .args([
                "-KILL",
                "-f",
                &format!("user-data-dir={}", self.profile.path().display()),
            ])
            .status();
    }
}
