//! The `tapeout` binary end to end, in one test binary (one link of the whole workspace instead
//! of one per file): each module is one area, and `common` holds what they share.
//!
//! Tests that need the real public traces run when `TAPEOUT_REAL_TRACES` names their folder and
//! say they were skipped otherwise; the S3 test needs moto (`pip install 'moto[server]'`).

mod ballista;
mod cli;
mod comm_libraries;
mod common;
mod corpus;
mod coverage;
mod feasible;
mod integrity;
mod project;
mod run;
mod s3;
mod shell;
mod telemetry;
