//! Evidence: which mined row a number came from.

use serde::Serialize;

/// One number and the mined rows behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceRef {
    /// Mining job (= result table).
    pub job: String,
    pub table: String,
    /// Row key, e.g. "workload=code".
    pub key: String,
    /// Column or aggregate.
    pub column: String,
    pub value: f64,
    pub unit: String,
    /// What the number is used for.
    pub used_for: String,
}

impl EvidenceRef {
    pub fn new(job: &str, key: String, column: &str, value: f64, unit: &str, used_for: &str) -> EvidenceRef {
        EvidenceRef {
            job: job.into(),
            table: job.into(),
            key,
            column: column.into(),
            value,
            unit: unit.into(),
            used_for: used_for.into(),
        }
    }
}
