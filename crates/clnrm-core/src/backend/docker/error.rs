//! What the engine's errors mean: bollard's errors as [`EngineError`]s (a 404 is
//! `Gone`), the root cause of an error chain, and Podman's answers that bollard's model
//! cannot read, in Docker's words.

use crate::backend::EngineError;

/// The innermost message of an error chain ("Connection refused", not "error trying to connect").
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// An answer about containers (one inspected, or a list) in Docker's words: Podman's
/// API says "stopped" where Docker says "exited", a word bollard's model does not know.
/// `None` when there is no such word to change (the error stands).
pub(super) fn docker_words(contents: &str) -> Option<serde_json::Value> {
    let mut v: serde_json::Value = serde_json::from_str(contents).ok()?;
    let mut changed = false;
    let mut fix = |slot: Option<&mut serde_json::Value>| {
        if let Some(s) = slot.filter(|s| *s == "stopped") {
            *s = "exited".into();
            changed = true;
        }
    };
    match &mut v {
        serde_json::Value::Array(items) => {
            for item in items {
                fix(item.get_mut("State"));
            }
        }
        other => fix(other.pointer_mut("/State/Status")),
    }
    changed.then_some(v)
}

/// An engine error from bollard's.
pub(in crate::backend) fn api(e: bollard::errors::Error) -> EngineError {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        } => EngineError::Gone(message),
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            EngineError::Api(message)
        }
        other => EngineError::Api(root_cause(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::docker_words;

    #[test]
    fn podman_stopped_is_read_as_exited() {
        let podman = r#"{"Id":"x","State":{"Status":"stopped","Running":false,"ExitCode":3}}"#;
        let v = docker_words(podman).unwrap_or_default();
        assert_eq!(v["State"]["Status"], "exited");
        assert_eq!(v["State"]["ExitCode"], 3);
        let parsed: bollard::models::ContainerInspectResponse =
            serde_json::from_value(v).unwrap_or_default();
        assert_eq!(parsed.state.and_then(|s| s.exit_code), Some(3));
        let list = r#"[{"Id":"a","State":"stopped"},{"Id":"b","State":"running"}]"#;
        let v = docker_words(list).unwrap_or_default();
        assert_eq!(
            (v[0]["State"].as_str(), v[1]["State"].as_str()),
            (Some("exited"), Some("running"))
        );
        let parsed: Vec<bollard::models::ContainerSummary> =
            serde_json::from_value(v).unwrap_or_default();
        assert_eq!(parsed.len(), 2);
        // Anything else is not rewritten: the error stands.
        assert_eq!(docker_words(r#"{"State":{"Status":"weird"}}"#), None);
        assert_eq!(docker_words("not json"), None);
    }
}
