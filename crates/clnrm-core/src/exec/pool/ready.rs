//! Readiness: a service's health check, retried at its interval, and its ready span,
//! through the receiver or in its output.

use super::{Member, MemberRef, Pool, PoolError, run_in};
use crate::backend::{ContainerEngine, EngineError};
use crate::model::defaults;
use crate::otel::Receiver;
use crate::plan::{HealthSpec, ServiceSpec};
use std::sync::Arc;
use std::time::Duration;

/// Probe windows kept per container, at most (its retries are bounded too).
const MAX_PROBES: usize = 10_000;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a service was doing when it died before its health check passed.
const BEFORE_HEALTHY: &str = "before it was healthy";

impl<E: ContainerEngine> Pool<E> {
    /// Waits for a span named `name` from the member: through the receiver when the
    /// file exports over OTLP, else in its main process's stdout. A member whose main
    /// process is the agent runs no service of its own, so there is nothing to wait for.
    pub(super) async fn wait_span(
        &self,
        otlp: Option<&Arc<Receiver>>,
        member: &MemberRef,
        name: &str,
        timeout: Duration,
    ) -> bool {
        if let Some(r) = otlp {
            return r.wait_span_from(&member.ips, name, timeout).await;
        }
        if member.agent {
            return true;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(log) = self.inner.engine.stdout_log(&member.container).await
                && crate::otel::spans_in_output(&String::from_utf8_lossy(&log))
                    .iter()
                    .any(|s| s.name == name)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the health check until it passes or its tries are used up.
    pub(super) async fn wait_healthy(
        &self,
        svc: &ServiceSpec,
        health: &HealthSpec,
        member: &mut Member,
    ) -> Result<(), PoolError> {
        let mut last = String::new();
        let published = health.port().map(|port| (member.address(port), port));
        if let Some((None, port)) = &published {
            return Err(PoolError::Engine(EngineError::Api(format!(
                "the engine did not publish port {port} of service \"{}\" for its health check",
                svc.id
            ))));
        }
        for _ in 0..health.retries.max(1) {
            let sent = now_ns();
            let probe = async {
                match (&published, &health.http, &health.postgres) {
                    (Some((addr, port)), Some((_, path)), _) => {
                        http_probe(*addr, &svc.id, *port, path).await
                    }
                    (Some((addr, _)), None, Some(target)) => postgres_probe(*addr, target).await,
                    _ => run_in(&*self.inner.engine, member, &health.argv, &[], None).await,
                }
            };
            let outcome = tokio::select! {
                r = tokio::time::timeout(health.timeout, probe) => r,
                () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
            };
            if member.probes.len() < MAX_PROBES {
                // A probe cut off at its deadline goes on in the container (an exec
                // cannot be killed): what it causes until as long again is its own.
                let grace = if outcome.is_err() {
                    u64::try_from(health.timeout.as_nanos()).unwrap_or(u64::MAX)
                } else {
                    0
                };
                member.probes.push((sent, now_ns().saturating_add(grace)));
            }
            match outcome {
                Ok(Ok(out)) if out.exit_code == 0 => {
                    // Ready: from now on what arrives is the scenario's, a probe that
                    // timed out before included.
                    let now = now_ns();
                    for w in &mut member.probes {
                        w.1 = w.1.min(now);
                    }
                    return Ok(());
                }
                Ok(Ok(out)) if published.is_some() => {
                    last = String::from_utf8_lossy(&out.stderr).into_owned();
                }
                Ok(Ok(out)) => {
                    last = format!(
                        "exit {}: {}{}",
                        out.exit_code,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(Err(e)) => {
                    if let Some(exited) = self
                        .exited(&svc.id, &member.container, BEFORE_HEALTHY.into())
                        .await
                    {
                        return Err(exited);
                    }
                    return Err(PoolError::Engine(EngineError::Api(e.to_string())));
                }
                Err(_) => last = format!("timed out after {} ms", health.timeout.as_millis()),
            }
            // A service that crashed will never get healthy: say so at once.
            if let Some(exited) = self
                .exited(&svc.id, &member.container, BEFORE_HEALTHY.into())
                .await
            {
                return Err(exited);
            }
            tokio::select! {
                () = tokio::time::sleep(health.interval) => {}
                () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
            }
        }
        let last = last.trim();
        let log = self.log_of(&member.container).await;
        Err(PoolError::Unhealthy {
            log,
            service: svc.id.clone(),
            command: health.describe(&svc.id),
            tries: health.retries.max(1),
            last: if last.is_empty() {
                String::new()
            } else {
                format!("; last: {last}")
            },
        })
    }

    /// The tail of a container's log, for messages; empty when it cannot be read.
    pub(crate) async fn log_of(&self, container: &str) -> String {
        self.inner
            .engine
            .log_tail(container, defaults::LOG_TAIL_LINES)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// [`PoolError::ServiceExited`] when the main process of `service`'s `container`
    /// has ended; `when` says what was going on, for the message.
    pub(crate) async fn exited(
        &self,
        service: &str,
        container: &str,
        when: String,
    ) -> Option<PoolError> {
        let state = self.inner.engine.inspect(container).await.ok()?;
        if state.running {
            return None;
        }
        Some(PoolError::ServiceExited {
            service: service.to_owned(),
            code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed,
            when,
            log: self.log_of(container).await,
        })
    }

    /// Waits for a one-shot's main process to exit 0.
    pub(super) async fn wait_completed(
        &self,
        svc: &ServiceSpec,
        container: &str,
    ) -> Result<(), PoolError> {
        let timeout = Duration::from_secs(defaults::ONE_SHOT_TIMEOUT_SECS);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.inner.engine.inspect(container).await?;
            if !state.running {
                return match state.exit_code {
                    Some(0) => Ok(()),
                    code => Err(PoolError::ServiceExited {
                        service: svc.id.clone(),
                        code: code.unwrap_or(-1),
                        oom_killed: state.oom_killed,
                        when: "(a one-shot that others depend on as \"completed\")".into(),
                        log: self.log_of(container).await,
                    }),
                };
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(PoolError::NotCompleted {
                    service: svc.id.clone(),
                    timeout,
                    log: self.log_of(container).await,
                });
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = self.inner.stop.cancelled() => return Err(PoolError::Stopped),
            }
        }
    }
}

/// An `http` health check's one probe: `GET path` to `addr`, where clnrm reaches the
/// container's `port` ([`Member::address`]); exit code 0 when the answer is 2xx or
/// 3xx, else 1 with what it was (the shape of a command's result, so both probes are
/// judged alike).
async fn http_probe(
    addr: Option<std::net::SocketAddr>,
    service: &str,
    port: u16,
    path: &str,
) -> Result<crate::backend::ExecOutput, super::StepError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(addr) = addr else {
        return Ok(probe_failed(format!("port {port} is not published")));
    };
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Ok(probe_failed(format!("GET {path}: {e}"))),
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {service}:{port}\r\nConnection: close\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Ok(probe_failed(format!("GET {path}: {e}")));
    }
    // The final status line is all that is judged (interim 1xx answers are passed
    // over): at most 4 KiB is read.
    let status_of = |line: &str| {
        line.strip_prefix("HTTP/")
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|code| code.parse::<u16>().ok())
    };
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 512];
    let mut ended = false;
    let (first, status) = loop {
        let text = String::from_utf8_lossy(&head).into_owned();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let first = complete.lines().next().unwrap_or_default().to_owned();
        let last = complete
            .lines()
            .filter_map(status_of)
            .find(|code| !(100..200).contains(code));
        if last.is_some()
            || ended
            || head.len() >= 4096
            || (!first.is_empty() && status_of(&first).is_none())
        {
            break (first, last);
        }
        match stream.read(&mut buf).await {
            Ok(0) => ended = true,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Ok(probe_failed(format!("GET {path}: {e}"))),
        }
    };
    Ok(match status {
        Some(200..=399) => crate::backend::ExecOutput::default(),
        Some(code) => probe_failed(format!("GET {path}: HTTP {code}")),
        None if first.is_empty() => probe_failed(format!(
            "GET {path}: the connection closed without an answer"
        )),
        None => probe_failed(format!("GET {path}: not an HTTP answer: {first:.80}")),
    })
}

/// A `postgres` health check's one probe, as `pg_isready` (libpq's `PQping`) judges:
/// a start-up message (protocol 3.0) naming the user and database to `addr`; the
/// server accepts connections when its first answer asks for authentication or is an
/// error with a SQLSTATE other than `57P03` (starting up, shutting down, in
/// recovery). Any other answer, or none, is not healthy. It never logs in: after
/// `AuthenticationOk` (trust) it says goodbye (`Terminate`); asked for a password, it
/// reads the whole request and closes, as libpq does, so that the server ends the
/// connection without logging an error. At most 30,000 bytes of an answer are read.
async fn postgres_probe(
    addr: Option<std::net::SocketAddr>,
    target: &crate::model::PgTarget,
) -> Result<crate::backend::ExecOutput, super::StepError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(addr) = addr else {
        return Ok(probe_failed(format!(
            "port {} is not published",
            target.port
        )));
    };
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Ok(probe_failed(e.to_string())),
    };
    if let Err(e) = stream.write_all(&startup_message(target)).await {
        return Ok(probe_failed(e.to_string()));
    }
    // A message: its type, its length (itself included), its body. libpq's bounds:
    // an authentication request of at most 2000 bytes, an error of at most 30,000,
    // and an error shorter than 8 is not a protocol-3.0 one.
    let mut head = [0u8; 5];
    if let Err(e) = stream.read_exact(&mut head).await {
        return Ok(probe_failed(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the connection closed without an answer".to_owned()
            }
            _ => e.to_string(),
        }));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let bounds = match head[0] {
        b'R' => Some(8..=2000),
        b'E' => Some(8..=30_000),
        _ => None,
    };
    if !bounds.is_some_and(|b| b.contains(&len)) {
        return Ok(probe_failed(format!(
            "not a PostgreSQL answer: {:?}",
            String::from_utf8_lossy(&head)
        )));
    }
    let mut body = vec![0u8; len - 4];
    if let Err(e) = stream.read_exact(&mut body).await {
        return Ok(probe_failed(e.to_string()));
    }
    if head[0] == b'R' {
        if body[..4] == [0, 0, 0, 0] {
            let _ = stream.write_all(&[b'X', 0, 0, 0, 4]).await;
        }
        let _ = stream.shutdown().await;
        return Ok(crate::backend::ExecOutput::default());
    }
    let (code, message) = error_fields(&body);
    Ok(match code.as_deref() {
        Some("57P03") => probe_failed(format!("{message} (57P03)")),
        // Up, and answering: a wrong database or user is the server's answer too
        // (`pg_isready` says so as well).
        Some(_) => crate::backend::ExecOutput::default(),
        None => probe_failed(format!("an error without a SQLSTATE: {message}")),
    })
}

/// A probe's "not healthy" with why (the shape of a command's result, so that every
/// probe is judged alike).
fn probe_failed(why: String) -> crate::backend::ExecOutput {
    crate::backend::ExecOutput {
        exit_code: 1,
        stdout: Vec::new(),
        stderr: why.into_bytes(),
    }
}

/// The start-up message of protocol 3.0 for `target`'s user and database.
fn startup_message(target: &crate::model::PgTarget) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (key, value) in [("user", &target.user), ("database", &target.database)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = u32::try_from(body.len() + 4)
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    message.extend_from_slice(&body);
    message
}

/// The SQLSTATE (`C`: five ASCII letters or digits, else none) and the message (`M`)
/// of an `ErrorResponse` body.
fn error_fields(body: &[u8]) -> (Option<String>, String) {
    let (mut code, mut message) = (None, String::new());
    for field in body.split(|b| *b == 0) {
        match field.split_first() {
            Some((b'C', v)) if v.len() == 5 && v.iter().all(u8::is_ascii_alphanumeric) => {
                code = Some(String::from_utf8_lossy(v).into_owned());
            }
            Some((b'M', v)) => message = String::from_utf8_lossy(v).chars().take(200).collect(),
            _ => {}
        }
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::{http_probe, postgres_probe};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection server on loopback that answers `answer` to whatever comes.
    async fn answering(answer: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn.write_all(answer.as_bytes()).await;
        });
        port
    }

    /// A one-connection server that reads a start-up message, checks it, answers
    /// `answer` and then reads what else comes (a goodbye).
    async fn postgres_answering(answer: Vec<u8>) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut len = [0u8; 4];
            conn.read_exact(&mut len).await.unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
            conn.read_exact(&mut body).await.unwrap();
            conn.write_all(&answer).await.unwrap();
            if answer.is_empty() {
                return body;
            }
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest).await;
            body.extend_from_slice(b"|");
            body.extend_from_slice(&rest);
            body
        });
        (port, seen)
    }

    fn error_response(code: &str, message: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in [(b'S', "FATAL"), (b'C', code), (b'M', message)] {
            body.push(t);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut out = vec![b'E'];
        out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    async fn pg(answer: Vec<u8>) -> (i64, String, Vec<u8>) {
        let (port, seen) = postgres_answering(answer).await;
        let target = crate::model::postgres_target("postgres://app@db/orders").unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let out = postgres_probe(Some(addr), &target).await.unwrap();
        (
            out.exit_code,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            seen.await.unwrap(),
        )
    }

    #[tokio::test]
    async fn a_postgres_probe_judges_as_pg_isready_does() {
        // Trusted: accepting; the probe says goodbye.
        let (code, _, seen) = pg(vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0]).await;
        assert_eq!(code, 0);
        let mut want = 196_608u32.to_be_bytes().to_vec();
        want.extend_from_slice(b"user\0app\0database\0orders\0\0|X\0\0\0\x04");
        assert_eq!(seen, want);
        // Asked for a password (MD5, with its salt): accepting; the probe sends
        // nothing more and closes, as libpq does without a password.
        let (code, _, seen) = pg(vec![b'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4]).await;
        assert_eq!(code, 0);
        assert!(seen.ends_with(b"\0\0|"), "{seen:?}");
        // An authentication request longer than libpq reads: not PostgreSQL.
        let (code, why, _) = pg(vec![b'R', 0, 0, 0x10, 0, 0, 0, 0, 5]).await;
        assert_eq!(code, 1);
        assert!(why.starts_with("not a PostgreSQL answer"), "{why}");
        // Starting up: not yet.
        let (code, why, _) = pg(error_response(
            "57P03",
            "the database system is starting up",
        ))
        .await;
        assert_eq!(
            (code, why.as_str()),
            (1, "the database system is starting up (57P03)")
        );
        // Up, but no such database: the server answers, so it accepts connections.
        let (code, _, _) = pg(error_response(
            "3D000",
            "database \"orders\" does not exist",
        ))
        .await;
        assert_eq!(code, 0);
        // Not PostgreSQL, a lying length, nothing at all.
        let (code, why, _) = pg(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
        assert_eq!(code, 1);
        assert!(why.starts_with("not a PostgreSQL answer"), "{why}");
        let (code, _, _) = pg(vec![b'E', 0xff, 0xff, 0xff, 0xff]).await;
        assert_eq!(code, 1);
        // Another type with a zero length: refused, not read.
        let (code, why, _) = pg(vec![b'N', 0, 0, 0, 0]).await;
        assert_eq!(code, 1);
        assert!(why.starts_with("not a PostgreSQL answer"), "{why}");
        // An error too short for protocol 3.0, or without a SQLSTATE: not healthy.
        let (code, _, _) = pg(vec![b'E', 0, 0, 0, 6, b'x', 0]).await;
        assert_eq!(code, 1);
        let mut no_code = error_response("XXXXX", "odd");
        no_code[12] = b'V';
        let (code, why, _) = pg(no_code).await;
        assert_eq!(
            (code, why.as_str()),
            (1, "an error without a SQLSTATE: odd")
        );
        let (code, why, _) = pg(Vec::new()).await;
        assert_eq!(
            (code, why.as_str()),
            (1, "the connection closed without an answer")
        );
        let target = crate::model::postgres_target("postgres://db").unwrap();
        let out = postgres_probe(None, &target).await.unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("port 5432 is not published"));
    }

    async fn probe(answer: &'static str) -> (i64, String) {
        let port = answering(answer).await;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let out = http_probe(Some(addr), "app", 8080, "/healthz")
            .await
            .unwrap();
        (
            out.exit_code,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[tokio::test]
    async fn the_final_status_decides_and_interim_answers_are_passed_over() {
        assert_eq!(
            probe("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .0,
            0
        );
        assert_eq!(probe("HTTP/1.0 302 Found\r\n\r\n").await.0, 0);
        let early = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(probe(early).await.0, 0);
        assert_eq!(
            probe("HTTP/1.1 503 Service Unavailable\r\n\r\n").await,
            (1, "GET /healthz: HTTP 503".to_owned())
        );
        let (code, why) = probe("SSH-2.0-OpenSSH\r\n").await;
        assert_eq!(code, 1);
        assert!(why.contains("not an HTTP answer: SSH-2.0"), "{why}");
        let (code, why) = probe("").await;
        assert_eq!(code, 1);
        assert!(why.contains("closed without an answer"), "{why}");
        let out = http_probe(None, "app", 8080, "/").await.unwrap();
        assert!(String::from_utf8_lossy(&out.stderr).contains("not published"));
    }
}
