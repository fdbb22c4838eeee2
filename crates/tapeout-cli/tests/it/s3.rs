//! A lake on S3: `tapeout ingest` and `tapeout sql` against a local S3-compatible server
//! (moto's server mode, `pip install 'moto[server]'`, started by the test on loopback) pass the
//! count and idempotency checks of a local lake. Without moto the test says it was skipped,
//! except under CI (`CI=true`), where `.ci/run` installs moto and a missing one is a failure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Killed, bin, free_port, repo};

/// Starts moto's S3 server on a free loopback port, or None when moto is not installed.
fn start_moto() -> Option<(Killed, u16)> {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if child.0.try_wait().unwrap().is_some() || Instant::now() > deadline {
            return None; // moto is not installed (python3 exited) or never came up
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((child, port))
}

/// One raw HTTP request (moto does not check signatures); returns the status code.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

fn tapeout(port: u16, args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "tapeout-test")
        .env("AWS_SECRET_ACCESS_KEY", "tapeout-test")
        .env("AWS_REGION", "us-east-1")
        .env_remove("TAPEOUT_ENGINE")
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(2),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn csv(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn an_s3_lake_ingests_and_queries_like_a_local_lake() {
    let Some((_moto, port)) = start_moto() else {
        assert!(
            std::env::var("CI").is_err(),
            "moto is not installed; .ci/run installs it (pip install 'moto[server]')"
        );
        eprintln!("skipped: moto is not installed (pip install 'moto[server]')");
        return;
    };
    assert_eq!(http(port, "PUT", "/tapeout-lake", b""), 200, "bucket not created");
    let s3 = "s3://tapeout-lake/team/lake";
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("lake");
    let local = local.to_str().unwrap();
    let requests = repo().join("sample-traces/requests");
    let kineto = repo().join("sample-traces/kineto");
    let inputs = [requests.to_str().unwrap(), kineto.to_str().unwrap()];

    let on_s3 = json(&tapeout(port, &[&["ingest", "--quiet", "--json", "--lake", s3][..], &inputs[..]].concat()));
    let on_disk = json(&tapeout(port, &[&["ingest", "--quiet", "--json", "--lake", local][..], &inputs[..]].concat()));
    for key in ["inputs", "rows", "quarantined", "skipped", "rejected", "outputs", "manifest_version"] {
        assert_eq!(on_s3[key], on_disk[key], "{key}: s3 {} vs local {}", on_s3[key], on_disk[key]);
    }
    assert_eq!(on_s3["lake"], s3);
    let inputs_landed = on_s3["inputs"].as_u64().unwrap();
    assert!(inputs_landed >= 10 && on_s3["rows"].as_u64().unwrap() > 500, "{on_s3}");
    assert_eq!(on_s3["manifest_version"].as_u64(), Some(inputs_landed));

    // Idempotent: a rerun skips every input and commits nothing.
    let again = json(&tapeout(port, &[&["ingest", "--quiet", "--json", "--lake", s3][..], &inputs[..]].concat()));
    assert_eq!((again["skipped"].as_u64(), again["rows"].as_u64()), (Some(inputs_landed), Some(0)));
    assert_eq!(again["manifest_version"], on_s3["manifest_version"]);

    // A file under the lake's prefix that no commit names (an interrupted writer's upload)
    // is not read.
    let stray = std::fs::read(
        std::fs::read_dir(dir.path().join("lake/requests"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|f| f.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap(),
    )
    .unwrap();
    let stray_key = "/tapeout-lake/team/lake/requests/source=azure_llm/date=2023-11-16/part-stray-0.parquet";
    assert_eq!(http(port, "PUT", stray_key, &stray), 200);

    let query = "select count(*) as n, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens, \
                 count(distinct source) as sources from requests";
    let kernels = "select count(*) as n, sum(dur_ns) as dur_ns, count(distinct rank) as ranks from kernels";
    let quarantine = "select count(*) as n from quarantine";
    for q in [query, kernels, quarantine] {
        let remote = csv(&tapeout(port, &["sql", "--format", "csv", "--lake", s3, q]));
        let here = csv(&tapeout(port, &["sql", "--format", "csv", "--lake", local, q]));
        assert_eq!(remote, here, "{q}");
    }
    let n: u64 = csv(&tapeout(port, &["sql", "--format", "csv", "--lake", s3, "select count(*) from requests"]))
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let landed: u64 = on_disk["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["tables"].get("requests").and_then(|v| v.as_u64()))
        .sum();
    assert_eq!(n, landed, "requests on S3 equal the rows the local ingest reports per input");

    // What an object-store lake cannot do yet says so.
    let refused = tapeout(port, &["mine", "--lake", s3]);
    assert_eq!(refused.status.code(), Some(1));
}
