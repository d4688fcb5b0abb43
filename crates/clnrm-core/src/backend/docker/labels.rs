//! Labels in bollard's shapes: a map for what is created, a filter for what is listed.

use crate::backend::Labels;
use std::collections::HashMap;

/// A filter for what carries label `key`.
pub(super) fn label_filter(key: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![key.to_owned()])])
}

/// `labels` as bollard takes them.
pub(in crate::backend) fn to_hash(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
