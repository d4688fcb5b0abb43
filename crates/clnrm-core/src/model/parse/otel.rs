//! Reading `[otel]`: exporter, endpoint, protocol, sampling, resources, headers,
//! propagators and the bounds on collecting spans.

use crate::model::reader::{FromToml, Reader, Table};
use crate::model::{Otel, Propagators};

pub(super) fn read_otel(r: &mut Reader<'_>, mut t: Table<'_, '_>) -> Otel {
    let otel = Otel {
        exporter: t.keyword(r, "exporter"),
        endpoint: t.get(r, "endpoint"),
        protocol: t.keyword(r, "protocol"),
        sample_ratio: t.get(r, "sample_ratio"),
        resources: t.map(r, "resources", FromToml::from_toml),
        headers: t.map(r, "headers", FromToml::from_toml),
        propagators: t.table(r, "propagators").map(|mut p| {
            let out = Propagators {
                use_: p.get(r, "use").unwrap_or_default(),
            };
            p.finish(r);
            out
        }),
        max_spans: t.get(r, "max_spans"),
        settle_ms: t.get(r, "settle_ms"),
        max_wait_ms: t.get(r, "max_wait_ms"),
    };
    t.finish(r);
    otel
}
