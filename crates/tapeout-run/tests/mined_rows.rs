//! The recommender reads typed mined rows: a mined table missing a column it needs is an
//! error naming job and column, never a silent 0; results mined from an older lake version
//! are refused.

use std::path::PathBuf;

use tapeout_engine::mine::{MineOptions, run_jobs};
use tapeout_engine::{LakeSession, SessionOptions};
use tapeout_pipelines::{Pipelines, jobs};
use tapeout_recommend::mined::Mined;
use tapeout_run::mined::read_mined;
use tapeout_run::recommendations::{RecommendSettings, build};

fn sample(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-traces").join(rel).display().to_string()
}

/// The lake in `dir` with `inputs` added (none: as it is), mined with the jobs the
/// recommender reads.
async fn mined_lake(dir: &std::path::Path, inputs: &[String]) -> LakeSession {
    if !inputs.is_empty() {
        let summary = tapeout_lake::ingest(dir, inputs, Default::default()).await.unwrap();
        assert_eq!(summary.rejected, 0);
    }
    let pipelines = Pipelines::embedded();
    let needed = Mined::jobs();
    let mut js = jobs::load_all(&pipelines).unwrap();
    js.retain(|j| needed.contains(&j.name.as_str()));
    assert_eq!(js.len(), needed.len());
    let opts = SessionOptions { pipelines: Some(pipelines.clone()), without_results: true, ..Default::default() };
    let session = LakeSession::open(dir, opts).await.unwrap();
    run_jobs(&session, &js, &MineOptions::default(), |_| {}).await.unwrap();
    LakeSession::open(dir, SessionOptions { pipelines: Some(pipelines), ..Default::default() }).await.unwrap()
}

async fn sql_f64(session: &LakeSession, sql: &str) -> f64 {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    let b = session.sql(sql).await.unwrap().collect().await.unwrap();
    b[0].column(0).as_primitive::<Float64Type>().value(0)
}

#[tokio::test]
async fn typed_rows_match_the_mined_tables_and_a_missing_column_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let session = mined_lake(tmp.path(), &[sample("kineto/train_2rank"), sample("requests/BurstGPT_1.csv")]).await;

    // Every row lands typed, with the values SQL sees.
    let mined = read_mined(&session).await.unwrap();
    let rows = sql_f64(&session, "select cast(count(*) as double) from kernel_time_buckets").await;
    assert_eq!(mined.kernel_time_buckets.len() as f64, rows);
    assert!(rows > 0.0);
    let total_ns = sql_f64(&session, "select cast(sum(total_ns) as double) from kernel_time_buckets").await;
    let typed: f64 = mined.kernel_time_buckets.iter().filter_map(|r| r.total_ns).sum();
    assert_eq!(typed, total_ns);
    let flops = sql_f64(&session, "select cast(sum(flops) as double) from kernel_time_buckets").await;
    let typed: f64 = mined.kernel_time_buckets.iter().filter_map(|r| r.flops).sum();
    assert!((typed - flops).abs() <= 1e-9 * flops.abs() && flops > 0.0, "{typed} vs {flops}");
    let requests = sql_f64(&session, "select cast(sum(requests) as double) from request_token_stats").await;
    let typed: f64 = mined.request_token_stats.iter().filter_map(|r| r.requests).sum();
    assert_eq!(typed, requests);

    // The same lake with kernel_time_buckets' `flops` column gone (as a stale or edited job
    // would leave it): reading fails and names job and column.
    let ctx = session.context();
    let without = ctx.sql("select * exclude (flops) from kernel_time_buckets").await.unwrap().into_view();
    ctx.deregister_table("kernel_time_buckets").unwrap();
    ctx.register_table("kernel_time_buckets", without).unwrap();
    let err = read_mined(&session).await.unwrap_err().to_string();
    assert!(err.starts_with("mined table `kernel_time_buckets` has no column `flops`"), "{err}");
    let err = build(&session, &Pipelines::embedded(), &RecommendSettings::new("h100-sxm", "llama-3.1-8b"))
        .await
        .err()
        .expect("the recommender refuses a table without `flops`")
        .to_string();
    assert!(err.contains("`kernel_time_buckets` has no column `flops`"), "{err}");
}

#[tokio::test]
async fn results_mined_before_the_last_ingest_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let session = mined_lake(tmp.path(), &[sample("requests/BurstGPT_1.csv")]).await;
    let version = session.snapshot().version;
    assert_eq!(read_mined(&session).await.unwrap().kernel_category_time.len(), 0);

    // A new input lands; the results still describe the lake without it.
    let summary = tapeout_lake::ingest(tmp.path(), &[sample("kineto/train_2rank")], Default::default()).await.unwrap();
    assert_eq!(summary.rejected, 0);
    let opts = SessionOptions { pipelines: Some(Pipelines::embedded()), ..Default::default() };
    let session = LakeSession::open(tmp.path(), opts).await.unwrap();
    assert!(session.snapshot().version > version);
    let err = read_mined(&session).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("mined results are not of the lake's version {}", session.snapshot().version)),
        "{err}"
    );
    assert!(err.contains(&format!("kernel_category_time (lake version {version})")), "{err}");
    assert!(err.contains("run `tapeout mine --lake"), "{err}");

    // Mined again, the new workload is there.
    let session = mined_lake(tmp.path(), &[]).await;
    let mined = read_mined(&session).await.unwrap();
    let ranks: std::collections::BTreeSet<_> = mined
        .kernel_category_time
        .iter()
        .map(|r| (r.workload.clone(), r.file.clone(), r.rank.map(|x| x as i64)))
        .collect();
    assert_eq!(ranks.len(), 2, "{ranks:?}");
}
