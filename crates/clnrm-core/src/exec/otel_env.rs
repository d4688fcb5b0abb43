//! The `OTEL_*` variables clnrm gives a container of a scenario that exports over
//! OTLP: where the receiver is, the protocol, the resource attributes that name the
//! scenario and service, the file's `[otel]` settings, short batch delays, and the
//! run's token in `OTEL_EXPORTER_OTLP_HEADERS` (which the official SDKs send as
//! headers). What the user sets wins where it can (SPEC §7.5); see [`merged`].

use crate::otel::Receiver;
use crate::otel::receiver::{SCENARIO_ATTR, TOKEN_HEADER};
use crate::plan::{OtlpSettings, resource_attributes};

/// The variables that carry OTLP headers: the generic one and the traces one (which
/// the SDKs prefer when both are set).
const HEADER_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
];

/// The batch delays clnrm shortens unless the user sets them: spans and logs.
const BATCH_DELAY_VARS: [&str; 2] = ["OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"];
/// Their value, in milliseconds.
const BATCH_DELAY_MS: &str = "100";

/// What a service's own `env` cannot replace: without them its spans miss the
/// receiver.
const CLNRM_WINS: [&str; 2] = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"];

const RESOURCE_VAR: &str = "OTEL_RESOURCE_ATTRIBUTES";
const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";

/// `own` (what the user set: a service's `env`, then a step's) with clnrm's `vars`
/// from [`otel_env`], each name once. The user's `OTEL_SERVICE_NAME`, batch delays
/// and headers win (the token is added to headers later, see [`with_token`]); its
/// `OTEL_RESOURCE_ATTRIBUTES` wins with clnrm's attributes put before it (so its
/// own entries override equal keys); a `service.name` there also drops clnrm's
/// `OTEL_SERVICE_NAME`. For a service (`step` false) clnrm's endpoint and protocol
/// win; a step's own `env` wins over everything.
pub fn merged(
    own: &[(String, String)],
    vars: Vec<(String, String)>,
    step: bool,
) -> Vec<(String, String)> {
    let mine = |key: &str| own.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
    let names_service = mine(RESOURCE_VAR).is_some_and(|v| {
        v.split(',').any(|p| {
            p.split_once('=')
                .is_some_and(|(k, _)| k.trim() == "service.name")
        })
    });
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in vars {
        let value = match mine(&k) {
            None if k == SERVICE_NAME_VAR && names_service => continue,
            None => v,
            Some(m) if k == RESOURCE_VAR => format!("{v},{m}"),
            Some(_) if !step && CLNRM_WINS.contains(&k.as_str()) => v,
            Some(m) => m.clone(),
        };
        out.push((k, value));
    }
    for (k, v) in own {
        if !out.iter().any(|(o, _)| o == k) {
            let last = mine(k).unwrap_or(v).clone();
            out.push((k.clone(), last));
        }
    }
    out
}

/// The `OTEL_*` variables of a container of an environment that exports over OTLP;
/// `scenario` is added to the resource attributes of a step's commands.
pub fn otel_env(
    settings: &OtlpSettings,
    receiver: &Receiver,
    service: &str,
    scenario: Option<&str>,
) -> Vec<(String, String)> {
    let port = if settings.grpc() {
        receiver.grpc_port()
    } else {
        receiver.http_port()
    };
    let mut resources = Vec::new();
    if let Some(id) = scenario {
        resources.push((SCENARIO_ATTR.to_owned(), id.to_owned()));
    }
    resources.push(("clnrm.service".to_owned(), service.to_owned()));
    resources.extend(settings.resources.iter().cloned());
    let mut env = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            format!("http://host.docker.internal:{port}"),
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
            settings.protocol.clone(),
        ),
        (
            "OTEL_RESOURCE_ATTRIBUTES".to_owned(),
            resource_attributes(&resources),
        ),
    ];
    if !settings.resources.iter().any(|(k, _)| k == "service.name") {
        env.push(("OTEL_SERVICE_NAME".to_owned(), service.to_owned()));
    }
    // The SDKs' batch processors wait 5 s by default before exporting, longer than a
    // scenario waits for its spans after its last step.
    for var in BATCH_DELAY_VARS {
        env.push((var.to_owned(), BATCH_DELAY_MS.to_owned()));
    }
    env.extend(settings.env.iter().cloned());
    if !env.iter().any(|(k, _)| k == HEADER_VARS[0]) {
        env.push((HEADER_VARS[0].to_owned(), String::new()));
    }
    env
}

/// Puts the receiver's token first in every header variable of `env`, whoever set
/// it (the file's `[otel.headers]`, a service's or a step's `env`), so that the
/// value that wins still carries it.
pub fn with_token(env: &mut [(String, String)], receiver: &Receiver) {
    let Some(token) = receiver.token() else {
        return;
    };
    let pair = format!("{TOKEN_HEADER}={token}");
    for (k, v) in env.iter_mut() {
        if HEADER_VARS.contains(&k.as_str()) && !v.split(',').any(|p| p.trim() == pair) {
            *v = if v.trim().is_empty() {
                pair.clone()
            } else {
                format!("{pair},{v}")
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        let mut found = env.iter().filter(|(k, _)| k == key);
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{key} twice in {env:?}");
        first
    }

    fn clnrm_vars() -> Vec<(String, String)> {
        pairs(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://host.docker.internal:4318",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (RESOURCE_VAR, "clnrm.scenario=s,clnrm.service=app"),
            (SERVICE_NAME_VAR, "app"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ])
    }

    #[test]
    fn what_the_user_sets_wins_but_clnrm_keeps_its_route_and_attributes() {
        let own = pairs(&[
            ("OTEL_SERVICE_NAME", "orders"),
            (RESOURCE_VAR, "deployment.environment=test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "2000"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("DATABASE_URL", "postgres://db/app"),
        ]);
        let env = merged(&own, clnrm_vars(), false);
        assert_eq!(get(&env, SERVICE_NAME_VAR), Some("orders"));
        assert_eq!(
            get(&env, RESOURCE_VAR),
            Some("clnrm.scenario=s,clnrm.service=app,deployment.environment=test")
        );
        assert_eq!(get(&env, "OTEL_BSP_SCHEDULE_DELAY"), Some("2000"));
        assert_eq!(get(&env, "OTEL_BLRP_SCHEDULE_DELAY"), Some("100"));
        // A service cannot take its spans away from the receiver...
        assert_eq!(
            get(&env, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            Some("http://host.docker.internal:4318")
        );
        assert_eq!(get(&env, "DATABASE_URL"), Some("postgres://db/app"));
        // ...a step's own env wins over everything.
        let env = merged(&own, clnrm_vars(), true);
        assert_eq!(
            get(&env, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            Some("http://collector:4318")
        );
    }

    #[test]
    fn a_service_name_among_the_users_resource_attributes_drops_clnrms() {
        let own = pairs(&[(RESOURCE_VAR, "service.name=orders")]);
        let env = merged(&own, clnrm_vars(), false);
        assert_eq!(get(&env, SERVICE_NAME_VAR), None);
        // Nothing set: clnrm's values.
        let env = merged(&[], clnrm_vars(), false);
        assert_eq!(get(&env, SERVICE_NAME_VAR), Some("app"));
        assert_eq!(get(&env, "OTEL_BSP_SCHEDULE_DELAY"), Some("100"));
    }
}
