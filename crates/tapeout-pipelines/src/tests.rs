use std::collections::BTreeMap;

use super::jobs::{Job, ParamValue};
use super::*;

fn file(rel: &str, text: &str) -> PipelineFile {
    PipelineFile { rel: rel.into(), origin: rel.into(), text: text.into() }
}

#[test]
fn job_header_params_and_render() {
    let text = "-- finds: prefix reuse\n--   with an LRU\n-- tables: requests, kernels\n-- output: a (tokens)\n\
                -- param: lru_blocks = 4096 -- LRU capacity\n-- param: src = 'az''ure' -- source\n\
                select ${lru_blocks} as n, ${src} as s\nfrom requests\n";
    let job = Job::parse(&file("sql/prefix_lru.sql", text)).unwrap();
    assert_eq!(job.name, "prefix_lru");
    assert_eq!(job.finds, "prefix reuse with an LRU");
    assert_eq!(job.tables, vec!["requests", "kernels"]);
    assert_eq!(job.body_line, 7);
    assert_eq!(job.params[1].default, ParamValue::Text("az'ure".into()));
    let (sql, _) = job.render(&BTreeMap::new()).unwrap();
    assert_eq!(sql, "select 4096 as n, 'az''ure' as s\nfrom requests");
    let over = BTreeMap::from([("lru_blocks".to_string(), "12".to_string())]);
    assert_eq!(job.render(&over).unwrap().0, "select 12 as n, 'az''ure' as s\nfrom requests");
    let bad = BTreeMap::from([("lru_blocks".to_string(), "1; drop".to_string())]);
    assert!(job.render(&bad).unwrap_err().to_string().contains("expects a number"));
}

#[test]
fn job_errors_name_the_line() {
    let e = Job::parse(&file("sql/x.sql", "-- finds: x\nselect ${nope}\n")).unwrap_err().to_string();
    assert_eq!(
        e,
        "sql/x.sql, line 2: `${nope}` is not a declared parameter (add `-- param: nope = VALUE -- what it is`)"
    );
    let e = Job::parse(&file("sql/x.sql", "select 1\n")).unwrap_err().to_string();
    assert!(e.contains("no `-- finds:`"), "{e}");
    let e = Job::parse(&file("sql/Bad-Name.sql", "-- finds: x\nselect 1")).unwrap_err().to_string();
    assert!(e.contains("snake_case"), "{e}");
}

#[test]
fn hardware_profile_checks_id_and_units() {
    let ok = "id = 'x1'\nname = 'X'\nvendor = 'V'\ndevice_pattern = 'X1'\n[matrix_flops]\nbf16 = 1e15\n[memory]\nhbm_bandwidth = 2e12\n";
    let p = hardware::HardwareProfile::parse(&file("hardware/x1.toml", ok)).unwrap();
    assert_eq!(p.matrix_flops.get("bf16"), Some(1e15));
    assert_eq!(hardware::match_device(std::slice::from_ref(&p), "the x1 board").map(|p| p.id.as_str()), Some("x1"));
    let e = hardware::HardwareProfile::parse(&file("hardware/x2.toml", ok)).unwrap_err().to_string();
    assert_eq!(e, "hardware/x2.toml: `id`: `x1` differs from the file name `x2`");
    let unknown = format!("{ok}[links]\nnvlink = 1\n");
    let e = hardware::HardwareProfile::parse(&file("hardware/x1.toml", &unknown)).unwrap_err().to_string();
    assert!(e.contains("unknown field `nvlink`"), "{e}");
}

#[test]
fn shipped_pipelines_load() {
    let p = Pipelines::embedded();
    let jobs = jobs::load_all(&p).unwrap();
    let hw = hardware::load_all(&p).unwrap();
    let models = models::load_all(&p).unwrap();
    // Counts grow as jobs and profiles are added; each must at least parse.
    for j in &jobs {
        j.render(&BTreeMap::new()).unwrap();
    }
    if !hw.is_empty() {
        assert!(hardware::find(&hw, "h100-sxm").is_ok());
        assert!(hardware::find(&hw, "nope").unwrap_err().to_string().starts_with("unknown hardware `nope`; known: "));
    }
    let _ = models;
}
