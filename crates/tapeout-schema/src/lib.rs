//! The schema registry: tapeout's canonical tables, declared once in `schemas/*.toml`.
//!
//! Every other part of tapeout derives what it needs from here:
//! - [`TableDef::file_schema`]: the Arrow schema of the Parquet files the lake writer produces
//!   (every column except the hive partition keys, which live only in directory names);
//! - [`TableDef::table_schema`] and [`TableDef::partition_columns`]: what a reader registers;
//! - [`TableDef::to_markdown`] / [`TableDef::to_json`]: `tapeout schema` and `docs/schema.md`.
//!
//! The declarations are embedded at build time ([`registry`]), so the binary and the docs can
//! never disagree with the files in `schemas/`.
//!
//! Versioning: each table has a `version`; a column carries `since`, the version that added it.
//! Columns are only ever added, nullable; a Parquet file records the version it was written
//! with under the key-value metadata [`SCHEMA_VERSION_KEY`], and readers accept any older
//! version (columns the file lacks read as null).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// Parquet key-value metadata key holding the schema version a file was written with.
pub const SCHEMA_VERSION_KEY: &str = "tapeout.schema_version";
/// Parquet key-value metadata key holding the table a file belongs to.
pub const TABLE_KEY: &str = "tapeout.table";

/// The declarations, embedded from `schemas/` at build time (one file per table).
const DECLARATIONS: &[(&str, &str)] = &[
    ("requests.toml", include_str!("../../../schemas/requests.toml")),
    ("quarantine.toml", include_str!("../../../schemas/quarantine.toml")),
    ("kernels.toml", include_str!("../../../schemas/kernels.toml")),
    ("ops.toml", include_str!("../../../schemas/ops.toml")),
    ("devices.toml", include_str!("../../../schemas/devices.toml")),
    ("collectives.toml", include_str!("../../../schemas/collectives.toml")),
    ("traces.toml", include_str!("../../../schemas/traces.toml")),
    ("device_samples.toml", include_str!("../../../schemas/device_samples.toml")),
];

/// Errors from reading a declaration or looking a table up.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A declaration file is not valid TOML or misses a key.
    #[error("schemas/{file}: {message}")]
    Parse { file: String, message: String },
    /// A declaration breaks a registry rule (duplicate column, partition column nullable, ...).
    #[error("schemas/{file}: {message}")]
    Invalid { file: String, message: String },
    /// No table of that name is declared.
    #[error("unknown table `{name}`; known tables: {known}")]
    UnknownTable { name: String, known: String },
}

/// Logical column types a declaration may use, with their Arrow mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Utf8,
    Int32,
    Int64,
    Float64,
    Bool,
    Date32,
    /// Timestamp, nanoseconds, UTC.
    TimestampNsUtc,
    /// List of int64 (items nullable, as Arrow's default list field).
    ListInt64,
    /// List of int32 (items nullable).
    ListInt32,
    /// Map of utf8 keys to utf8 values (Arrow `Map<Utf8, Utf8>`, keys sorted, values nullable;
    /// Parquet MAP; `labels['job']` in SQL).
    MapUtf8,
}

impl ColumnType {
    /// The Arrow type the lake stores this column as.
    pub fn arrow_type(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Date32 => DataType::Date32,
            ColumnType::TimestampNsUtc => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            ColumnType::ListInt64 => DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            ColumnType::ListInt32 => DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            ColumnType::MapUtf8 => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(
                        vec![Field::new("keys", DataType::Utf8, false), Field::new("values", DataType::Utf8, true)]
                            .into(),
                    ),
                    false,
                )),
                true,
            ),
        }
    }

    /// The name used in declarations and docs.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Utf8 => "utf8",
            ColumnType::Int32 => "int32",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Bool => "bool",
            ColumnType::Date32 => "date32",
            ColumnType::TimestampNsUtc => "timestamp_ns_utc",
            ColumnType::ListInt64 => "list_int64",
            ColumnType::ListInt32 => "list_int32",
            ColumnType::MapUtf8 => "map_utf8",
        }
    }
}

/// One column of a canonical table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    /// Column name (snake_case).
    pub name: String,
    /// Logical type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
    /// Unit of the values, for people ("ns", "tokens", "ms"...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// What the column holds and where it comes from.
    pub description: String,
    /// True for hive partition keys: they live in directory names, never inside files.
    #[serde(default)]
    pub partition: bool,
    /// Table version that added the column.
    #[serde(default = "one")]
    pub since: u32,
}

fn one() -> u32 {
    1
}

/// One canonical table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    /// Table name as registered in `tapeout sql`.
    pub name: String,
    /// Current schema version: files are written with it.
    pub version: u32,
    /// What one row is.
    pub description: String,
    /// Directory under the lake root holding the table's files.
    pub location: String,
    /// Column rows are sorted by within each file, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<String>,
    /// Columns in order: partition keys first (by convention), then file columns.
    pub columns: Vec<ColumnDef>,
}

impl TableDef {
    fn parse(file: &str, text: &str) -> Result<TableDef, SchemaError> {
        let def: TableDef =
            toml::from_str(text).map_err(|e| SchemaError::Parse { file: file.to_string(), message: e.to_string() })?;
        let invalid = |message: String| SchemaError::Invalid { file: file.to_string(), message };
        let mut seen = std::collections::HashSet::new();
        for c in &def.columns {
            if !seen.insert(c.name.as_str()) {
                return Err(invalid(format!("column `{}` declared twice", c.name)));
            }
            if c.partition && c.nullable {
                return Err(invalid(format!("partition column `{}` must be non-null", c.name)));
            }
            if c.since > def.version {
                return Err(invalid(format!(
                    "column `{}` has since = {} > table version {}",
                    c.name, c.since, def.version
                )));
            }
            if c.since > 1 && !c.nullable {
                return Err(invalid(format!(
                    "column `{}` was added in version {} and must be nullable",
                    c.name, c.since
                )));
            }
        }
        if let Some(k) = &def.sort_key
            && !def.columns.iter().any(|c| &c.name == k && !c.partition)
        {
            return Err(invalid(format!("sort_key `{k}` is not a file column")));
        }
        Ok(def)
    }

    /// The hive partition keys, in directory order.
    pub fn partition_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.partition)
    }

    /// The columns stored inside the Parquet files.
    pub fn file_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| !c.partition)
    }

    /// Arrow schema of the files (no partition keys), with the table name and version as metadata.
    pub fn file_schema(&self) -> SchemaRef {
        let fields: Vec<Field> =
            self.file_columns().map(|c| Field::new(&c.name, c.ty.arrow_type(), c.nullable)).collect();
        let metadata = HashMap::from([
            (TABLE_KEY.to_string(), self.name.clone()),
            (SCHEMA_VERSION_KEY.to_string(), self.version.to_string()),
        ]);
        Arc::new(Schema::new_with_metadata(fields, metadata))
    }

    /// Arrow schema a reader sees: file columns then partition keys (DataFusion's order).
    pub fn table_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .file_columns()
            .chain(self.partition_columns())
            .map(|c| Field::new(&c.name, c.ty.arrow_type(), c.nullable))
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Index of a file column in [`TableDef::file_schema`].
    pub fn file_column_index(&self, name: &str) -> Option<usize> {
        self.file_columns().position(|c| c.name == name)
    }

    /// JSON description (what `tapeout schema TABLE --format json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a TableDef always serializes");
        // Add the concrete Arrow type next to the logical one, for tools that read the JSON.
        if let Some(cols) = v.get_mut("columns").and_then(|c| c.as_array_mut()) {
            for (c, def) in cols.iter_mut().zip(&self.columns) {
                c["arrow_type"] = serde_json::Value::String(def.ty.arrow_type().to_string());
            }
        }
        v
    }

    /// Markdown section documenting the table (used for docs/schema.md).
    pub fn to_markdown(&self) -> String {
        let mut s = format!("## `{}` (schema version {})\n\n{}\n\n", self.name, self.version, self.description);
        let keys: Vec<String> = self.partition_columns().map(|c| format!("`{}`", c.name)).collect();
        s.push_str(&format!("Location: `LAKE/{}/`", self.location));
        if !keys.is_empty() {
            s.push_str(&format!(", hive-partitioned by {}", keys.join(", ")));
        }
        if let Some(k) = &self.sort_key {
            s.push_str(&format!("; rows sorted by `{k}` within each file"));
        }
        s.push_str(".\n\n| column | type | null | unit | since | description |\n|---|---|---|---|---|---|\n");
        for c in &self.columns {
            let ty = if c.partition { format!("{} (partition key)", c.ty.name()) } else { c.ty.name().to_string() };
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                c.name,
                ty,
                if c.nullable { "yes" } else { "no" },
                c.unit.as_deref().unwrap_or(""),
                c.since,
                c.description.replace('|', "\\|")
            ));
        }
        s
    }
}

/// All declared tables, parsed once.
pub struct Registry {
    tables: Vec<TableDef>,
}

impl Registry {
    /// Tables in declaration order.
    pub fn tables(&self) -> &[TableDef] {
        &self.tables
    }

    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Result<&TableDef, SchemaError> {
        self.tables.iter().find(|t| t.name == name).ok_or_else(|| SchemaError::UnknownTable {
            name: name.to_string(),
            known: self.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// The whole of docs/schema.md.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from(
            "# tapeout lake schema\n\n<!-- Generated by `tapeout schema --format markdown` from schemas/*.toml; do not edit by hand. -->\n\n\
             Each Parquet file records the table (`tapeout.table`) and schema version (`tapeout.schema_version`) it was \
             written with in its key-value metadata. Columns are only ever added, as nullable columns; readers accept \
             every older version and read a column a file lacks as null. Partition keys live only in directory names \
             (`key=value`), never inside the files.\n\n",
        );
        for t in &self.tables {
            s.push_str(&t.to_markdown());
            s.push('\n');
        }
        s
    }

    /// JSON array of every table.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.tables.iter().map(TableDef::to_json).collect())
    }
}

/// The registry built from the embedded declarations.
///
/// Panics only if a file in `schemas/` is invalid, which the crate's tests catch before release.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let tables = DECLARATIONS
            .iter()
            .map(|(file, text)| TableDef::parse(file, text))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| panic!("invalid schema declaration: {e}"));
        Registry { tables }
    })
}

/// Shortcut for a declared table that must exist (the names tapeout's own code uses).
pub fn table(name: &str) -> &'static TableDef {
    registry().table(name).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declaration_parses_and_every_file_is_embedded() {
        let reg = registry();
        let names: Vec<&str> = reg.tables().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["requests", "quarantine", "kernels", "ops", "devices", "collectives", "traces", "device_samples"]
        );
        let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
            .count();
        assert_eq!(on_disk, DECLARATIONS.len(), "a schemas/*.toml file is not listed in DECLARATIONS");
    }

    #[test]
    fn requests_file_schema_excludes_partition_keys() {
        let t = table("requests");
        let file = t.file_schema();
        assert!(file.field_with_name("source").is_err());
        assert!(file.field_with_name("date").is_err());
        assert_eq!(file.field_with_name("arrival_time").unwrap().data_type().to_string(), "Timestamp(ns, \"UTC\")");
        assert!(!file.field_with_name("arrival_time").unwrap().is_nullable());
        assert_eq!(file.metadata()[SCHEMA_VERSION_KEY], "1");
        let names: Vec<&str> = t.partition_columns().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["source", "date"]);
        let table_schema = t.table_schema();
        assert_eq!(table_schema.fields().len(), file.fields().len() + 2);
        assert_eq!(table_schema.field(table_schema.fields().len() - 1).name(), "date");
    }

    #[test]
    fn invalid_declarations_are_rejected_with_the_file_name() {
        let bad = "name='x'\nversion=1\ndescription='d'\nlocation='x'\n[[columns]]\nname='a'\ntype='utf8'\nnullable=true\npartition=true\ndescription='d'\n";
        let err = TableDef::parse("x.toml", bad).unwrap_err().to_string();
        assert_eq!(err, "schemas/x.toml: partition column `a` must be non-null");
        let unknown = "name='x'\nversion=1\ndescription='d'\nlocation='x'\ncolour='red'\ncolumns=[]\n";
        assert!(TableDef::parse("x.toml", unknown).unwrap_err().to_string().contains("unknown field `colour`"));
        let added = "name='x'\nversion=2\ndescription='d'\nlocation='x'\n[[columns]]\nname='a'\ntype='utf8'\nnullable=false\nsince=2\ndescription='d'\n";
        assert!(TableDef::parse("x.toml", added).unwrap_err().to_string().contains("must be nullable"));
    }

    #[test]
    fn docs_schema_md_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schema.md");
        let expected = registry().to_markdown();
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        if actual != expected {
            if std::env::var_os("TAPEOUT_BLESS").is_some() {
                std::fs::write(path, &expected).unwrap();
                return;
            }
            panic!(
                "docs/schema.md is stale: run `tapeout schema --format markdown > docs/schema.md` \
                 (or TAPEOUT_BLESS=1 cargo test -p tapeout-schema)"
            );
        }
    }

    #[test]
    fn unknown_table_lists_known_ones() {
        let err = registry().table("flows").err().unwrap().to_string();
        assert_eq!(
            err,
            "unknown table `flows`; known tables: requests, quarantine, kernels, ops, devices, collectives, traces, device_samples"
        );
    }
}
