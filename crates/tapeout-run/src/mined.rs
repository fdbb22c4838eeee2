//! Reads mined tables from a lake session into the typed rows of
//! [`tapeout_recommend::mined`], checking each table's columns before decoding.

use std::collections::BTreeMap;

use datafusion::arrow::json::ArrayWriter;
use serde_json::{Map, Value};
use tapeout_engine::LakeSession;
use tapeout_engine::mine::{MINED_DIR, read_latest};
use tapeout_recommend::mined::{Mined, MinedError};

use crate::RunError;

/// Rows of a query as JSON objects (a null is left out of its row).
pub(crate) async fn json_rows(session: &LakeSession, sql: &str) -> Result<Vec<Map<String, Value>>, RunError> {
    let batches = session.sql(sql).await?.collect().await?;
    let mut w = ArrayWriter::new(Vec::new());
    let refs: Vec<_> = batches.iter().collect();
    w.write_batches(&refs).map_err(datafusion::error::DataFusionError::from)?;
    w.finish().map_err(datafusion::error::DataFusionError::from)?;
    let bytes = w.into_inner();
    if bytes.is_empty() {
        return Ok(vec![]);
    }
    serde_json::from_slice(&bytes).map_err(|e| RunError::Rows { query: sql.to_string(), message: e.to_string() })
}

/// Reads every table of [`Mined::tables`]. Fails when the lake was not mined, when a result
/// was mined from another lake version than the session's (a stale result would describe a
/// lake without its newest inputs) or from a partial read (`--allow-partial`), and when a mined table lacks a column the recommender
/// reads (naming job and column).
pub async fn read_mined(session: &LakeSession) -> Result<Mined, RunError> {
    let names = session.table_names();
    let tables = Mined::tables();
    let lake = session.lake().display().to_string();
    let missing: Vec<&str> = tables.iter().map(|(job, _)| *job).filter(|j| !names.iter().any(|n| n == j)).collect();
    if !missing.is_empty() {
        return Err(RunError::NotMined { lake, jobs: missing.join(", ") });
    }
    let version = session.snapshot().version;
    let stale: Vec<String> = tables
        .iter()
        .filter_map(|(job, _)| match read_latest(&session.lake().join(MINED_DIR).join(job)) {
            Some(meta) if meta.partial => Some(format!("{job} (mined from a partial read, --allow-partial)")),
            Some(meta) if meta.lake_version == version => None,
            Some(meta) => Some(format!("{job} (lake version {})", meta.lake_version)),
            None => Some(format!("{job} (no result metadata)")),
        })
        .collect();
    if !stale.is_empty() {
        return Err(RunError::StaleResults { lake, version, jobs: stale.join(", ") });
    }
    let mut rows = BTreeMap::new();
    for (job, columns) in tables {
        let schema = session.context().table_provider(job).await?.schema();
        if let Some(column) = columns.iter().find(|c| schema.field_with_name(c).is_err()) {
            return Err(MinedError::MissingColumn { job: job.into(), column: column.to_string() }.into());
        }
        // Only the columns read (the binary histogram columns are not needed here), in a total
        // order: jobs leave their row order to the engine, and sums and report tables follow it.
        // Decimal columns are read as double: the rows hold plain numbers.
        let list = columns.join(", ");
        let select: Vec<String> = columns
            .iter()
            .map(|c| match schema.field_with_name(c).map(|f| f.data_type().clone()) {
                Ok(t) if t.is_numeric() && !t.is_integer() && !t.is_floating() => format!("cast({c} as double) as {c}"),
                _ => c.to_string(),
            })
            .collect();
        let sql = format!("select {} from {job} order by {list}", select.join(", "));
        rows.insert(job.to_string(), json_rows(session, &sql).await?);
    }
    Ok(Mined::from_rows(rows)?)
}

/// The device name each kernel-trace workload ran on (the smallest when several).
pub async fn workload_devices(session: &LakeSession) -> Result<BTreeMap<String, String>, RunError> {
    let rows = json_rows(session, "select workload, min(name) as name from devices group by workload").await?;
    Ok(rows
        .iter()
        .filter_map(|d| {
            let w = d.get("workload").and_then(Value::as_str)?;
            let n = d.get("name").and_then(Value::as_str)?;
            Some((w.to_string(), n.to_string()))
        })
        .collect())
}

/// Token histogram rows: (workload, kind, bucket upper bound, count).
pub type TokenHistogram = Vec<(String, String, f64, u64)>;

/// Input and output token counts per power-of-two bucket, per workload.
pub async fn token_histograms(session: &LakeSession) -> Result<TokenHistogram, RunError> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    let sql = "select workload, kind, b, count(*) as n from (\
        select workload, 'input' as kind, power(2.0, ceil(log2(cast(greatest(input_tokens, 1) as double)))) as b from requests \
        union all \
        select workload, 'output' as kind, power(2.0, ceil(log2(cast(greatest(output_tokens, 1) as double)))) as b from requests) \
        where workload is not null group by workload, kind, b order by workload, kind, b";
    let batches = session.sql(sql).await?.collect().await?;
    let mut out = Vec::new();
    for b in &batches {
        let w = b.column(0).as_string::<i32>();
        let k = b.column(1).as_string::<i32>();
        let x = b.column(2).as_primitive::<Float64Type>();
        let n = b.column(3).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((w.value(i).to_string(), k.value(i).to_string(), x.value(i), n.value(i) as u64));
        }
    }
    Ok(out)
}
