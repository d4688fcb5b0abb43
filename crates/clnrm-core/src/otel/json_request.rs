//! An OTLP-JSON export request read span by span: the document is never held as a
//! whole `serde_json::Value` (which takes ten times and more the bytes of its text),
//! only one span's object at a time, so decoding a large body costs about what its
//! spans cost. The fields, their spellings and the leniency are those of
//! [`super::from_otlp_json`].

use super::intake::{IntakeError, flat_span, resource_attributes};
use super::span::SpanRecord;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// Spans of an OTLP-JSON `ExportTraceServiceRequest` (or a `TracesData`) body.
pub fn from_otlp_json_bytes(body: &[u8]) -> Result<Vec<SpanRecord>, IntakeError> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    Request { out: &mut out }
        .deserialize(&mut de)
        .and_then(|()| de.end())?;
    Ok(out)
}

/// The top level: `resourceSpans`.
struct Request<'a> {
    out: &'a mut Vec<SpanRecord>,
}

impl<'de> DeserializeSeed<'de> for Request<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Request<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP-JSON object with `resourceSpans`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if matches!(key.as_str(), "resourceSpans" | "resource_spans") {
                map.next_value_seed(Each(ResourceSpans {
                    out: &mut *self.out,
                }))?;
                seen = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !seen {
            return Err(de::Error::custom("expected `resourceSpans` to be a list"));
        }
        Ok(())
    }
}

/// A list whose items are read by `T`, one at a time.
struct Each<T>(T);

impl<'de, T: Item<'de>> DeserializeSeed<'de> for Each<T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Item<'de>> Visitor<'de> for Each<T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of {}", T::WHAT)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ItemSeed(&mut self.0))?.is_some() {}
        Ok(())
    }
}

/// Reads one item of a list into its owner's state.
trait Item<'de> {
    const WHAT: &'static str;
    fn read<A: MapAccess<'de>>(&mut self, map: A) -> Result<(), A::Error>;
}

struct ItemSeed<'s, T>(&'s mut T);

impl<'de, T: Item<'de>> DeserializeSeed<'de> for ItemSeed<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Item<'de>> Visitor<'de> for ItemSeed<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (an object)", T::WHAT)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.read(map)
    }
}

/// `resourceSpans` items: the resource is given to every span of the item, whichever
/// comes first in the object.
struct ResourceSpans<'a> {
    out: &'a mut Vec<SpanRecord>,
}

impl<'de> Item<'de> for ResourceSpans<'_> {
    const WHAT: &'static str = "`resourceSpans` items";
    fn read<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        let first = self.out.len();
        let mut resource = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resource" => resource = Some(resource_attributes(&map.next_value::<Value>()?)),
                "scopeSpans" | "scope_spans" | "instrumentationLibrarySpans" => {
                    map.next_value_seed(Each(ScopeSpans {
                        out: &mut *self.out,
                    }))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(r) = resource.filter(|r| !r.is_empty()) {
            for span in &mut self.out[first..] {
                span.resource.clone_from(&r);
            }
        }
        Ok(())
    }
}

/// `scopeSpans` items: the scope's name is given to every span of the item.
struct ScopeSpans<'a> {
    out: &'a mut Vec<SpanRecord>,
}

impl<'de> Item<'de> for ScopeSpans<'_> {
    const WHAT: &'static str = "`scopeSpans` items";
    fn read<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        let first = self.out.len();
        let mut scope = String::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "scope" | "instrumentationLibrary" => {
                    if let Value::Object(o) = map.next_value::<Value>()?
                        && let Some(Value::String(name)) = o.get("name")
                    {
                        scope.clone_from(name);
                    }
                }
                "spans" => map.next_value_seed(Each(Spans {
                    out: &mut *self.out,
                }))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        for span in &mut self.out[first..] {
            span.scope.clone_from(&scope);
        }
        Ok(())
    }
}

/// `spans` items, each read as a small JSON object and turned into a span at once.
struct Spans<'a> {
    out: &'a mut Vec<SpanRecord>,
}

impl<'de> Item<'de> for Spans<'_> {
    const WHAT: &'static str = "spans";
    fn read<A: MapAccess<'de>>(&mut self, mut map: A) -> Result<(), A::Error> {
        let mut obj = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Value>()?;
            obj.insert(key, value);
        }
        let span =
            flat_span(&obj).ok_or_else(|| de::Error::custom("a span has no name or span id"))?;
        self.out.push(span);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DOC: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AB","spanId":"01","name":"a","kind":2,"attributes":[{"key":"n","value":{"intValue":"3"}}],"events":[{"name":"e","timeUnixNano":"5"}],"status":{"code":1}},{"trace_id":"ab","span_id":"02","parent_span_id":"01","name":"b"}],"scope":{"name":"lib"}}],"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]}},{"resource_spans_unknown":1,"scope_spans":[{"spans":[]}]}],"extra":true}"#;

    #[test]
    fn reads_what_the_value_reader_reads_whatever_the_key_order() {
        let streamed = from_otlp_json_bytes(DOC.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let value: Value = serde_json::from_str(DOC).unwrap_or_else(|e| panic!("{e}"));
        let whole = super::super::from_otlp_json(&value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(streamed, whole);
        assert_eq!(streamed.len(), 2);
        assert_eq!(streamed[0].scope, "lib");
        assert!(streamed[1].resource.contains_key("service.name"));
    }

    #[test]
    fn what_is_not_a_request_is_an_error() {
        for bad in [
            "",
            "{not json",
            "[]",
            "{}",
            r#"{"resourceSpans": 3}"#,
            r#"{"resourceSpans": [3]}"#,
            r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x"}]}]}]}"#,
            r#"{"resourceSpans": []} trailing"#,
        ] {
            assert!(from_otlp_json_bytes(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = from_otlp_json_bytes(&bytes);
        }

        #[test]
        fn never_panics_on_request_shaped_text(text in r#"(\{|\}|\[|\]|,|:|"resourceSpans"|"scopeSpans"|"spans"|"name"|"spanId"|"resource"|"attributes"|"x"|1|null){0,60}"#) {
            let _ = from_otlp_json_bytes(text.as_bytes());
        }
    }
}
