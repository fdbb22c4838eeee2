//! Mining jobs: `pipelines/sql/<name>.sql`, one query each.
//!
//! A job file starts with a header of `--` comment lines:
//!
//! ```sql
//! -- finds: what bottleneck pattern the job finds
//! -- tables: requests
//! -- output: source, workload (text); input_p50 (tokens) ...
//! -- param: lru_blocks = 4096 -- LRU capacity, in 512-token blocks
//! select ... ${lru_blocks} ...
//! ```
//!
//! A header line without a `key:` continues the previous key. `param: NAME = VALUE -- doc`
//! declares a parameter; VALUE is a number or a single-quoted string. In the body `${NAME}`
//! becomes the value (numbers verbatim, strings as SQL string literals). The file stem is the
//! job's name and the name of its result table.

use std::collections::BTreeMap;

use crate::{PipelineFile, Pipelines, PipelinesError};

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Number(String),
    Text(String),
}

impl ParamValue {
    /// Parses a header default: a number or a single-quoted string.
    pub fn parse_default(text: &str) -> Option<ParamValue> {
        let t = text.trim();
        if let Some(inner) = t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            return Some(ParamValue::Text(inner.replace("''", "'")));
        }
        is_number(t).then(|| ParamValue::Number(t.to_string()))
    }

    /// The SQL text substituted for `${name}`.
    pub fn sql(&self) -> String {
        match self {
            ParamValue::Number(n) => n.clone(),
            ParamValue::Text(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }

    /// The value as a user writes it.
    pub fn display(&self) -> String {
        match self {
            ParamValue::Number(n) => n.clone(),
            ParamValue::Text(s) => s.clone(),
        }
    }
}

fn is_number(t: &str) -> bool {
    !t.is_empty()
        && t.parse::<f64>().is_ok_and(f64::is_finite)
        && !t.contains(|c: char| c.is_alphabetic() && c != 'e' && c != 'E')
}

/// A declared parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub default: ParamValue,
    pub description: String,
}

/// One mining job.
#[derive(Debug, Clone)]
pub struct Job {
    /// File stem; also the result table's name.
    pub name: String,
    /// Where the file came from.
    pub origin: String,
    /// `finds:` — what the job finds.
    pub finds: String,
    /// `tables:` — lake tables it reads.
    pub tables: Vec<String>,
    /// `output:` — its columns and units.
    pub output: String,
    pub params: Vec<Param>,
    /// The SQL after the header.
    pub body: String,
    /// 1-based line of the body's first line in the file.
    pub body_line: usize,
}

impl Job {
    /// Parses a job file.
    pub fn parse(file: &PipelineFile) -> Result<Job, PipelinesError> {
        let err = |line: usize, message: String| PipelinesError::Job { file: file.origin.clone(), line, message };
        let name = file.stem().to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(err(1, format!("job name `{name}` (the file name) must be lower-case snake_case")));
        }
        let mut job = Job {
            name,
            origin: file.origin.clone(),
            finds: String::new(),
            tables: Vec::new(),
            output: String::new(),
            params: Vec::new(),
            body: String::new(),
            body_line: 1,
        };
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        let mut last: Option<&str> = None;
        let lines: Vec<&str> = file.text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i].trim();
            let Some(comment) = line.strip_prefix("--") else {
                if line.is_empty() {
                    i += 1;
                    last = None;
                    continue;
                }
                break;
            };
            let comment = comment.trim();
            let key = comment.split_once(':').map(|(k, v)| (k.trim(), v.trim()));
            match key {
                Some(("param", spec)) => {
                    job.params.push(parse_param(spec).map_err(|m| err(i + 1, m))?);
                    last = None;
                }
                Some((k @ ("finds" | "tables" | "output"), v)) => {
                    fields.insert(k, v.to_string());
                    last = Some(k);
                }
                _ => {
                    if let Some(k) = last {
                        let f = fields.get_mut(k).expect("inserted");
                        if !comment.is_empty() {
                            f.push(' ');
                            f.push_str(comment);
                        }
                    }
                }
            }
            i += 1;
        }
        job.body_line = i + 1;
        job.body = lines[i.min(lines.len())..].join("\n").trim().to_string();
        job.finds = fields.remove("finds").unwrap_or_default();
        job.output = fields.remove("output").unwrap_or_default();
        job.tables = fields
            .remove("tables")
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if job.finds.is_empty() {
            return Err(err(1, "the header has no `-- finds:` line saying what the job finds".into()));
        }
        if job.body.is_empty() {
            return Err(err(job.body_line, "no SQL after the header".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &job.params {
            if !seen.insert(p.name.as_str()) {
                return Err(err(1, format!("parameter `{}` is declared twice", p.name)));
            }
        }
        // Every ${name} in the body must be declared.
        for (n, line) in job.body.lines().enumerate() {
            for name in placeholders(line) {
                if !job.params.iter().any(|p| p.name == name) {
                    return Err(err(
                        job.body_line + n,
                        format!(
                            "`${{{name}}}` is not a declared parameter (add `-- param: {name} = VALUE -- what it is`)"
                        ),
                    ));
                }
            }
        }
        Ok(job)
    }

    /// The SQL with parameters substituted: `overrides` first, then defaults. Returns the SQL
    /// and the values used.
    pub fn render(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<(String, BTreeMap<String, ParamValue>), PipelinesError> {
        let mut values = BTreeMap::new();
        for p in &self.params {
            let v = match overrides.get(&p.name) {
                None => p.default.clone(),
                Some(text) => match &p.default {
                    ParamValue::Number(_) if is_number(text.trim()) => ParamValue::Number(text.trim().to_string()),
                    ParamValue::Number(_) => {
                        return Err(PipelinesError::Invalid {
                            file: self.origin.clone(),
                            key: p.name.clone(),
                            message: format!("expects a number, got `{text}`"),
                        });
                    }
                    ParamValue::Text(_) => ParamValue::Text(text.clone()),
                },
            };
            values.insert(p.name.clone(), v);
        }
        let mut sql = self.body.clone();
        for (name, v) in &values {
            sql = sql.replace(&format!("${{{name}}}"), &v.sql());
        }
        Ok((sql, values))
    }
}

fn placeholders(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn parse_param(spec: &str) -> Result<Param, String> {
    let (decl, description) = match spec.split_once(" -- ") {
        Some((d, doc)) => (d.trim(), doc.trim().to_string()),
        None => (spec.trim(), String::new()),
    };
    let Some((name, value)) = decl.split_once('=') else {
        return Err(format!("parameter `{decl}` needs `NAME = VALUE`"));
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("parameter name `{name}` must be letters, digits and _"));
    }
    let default = ParamValue::parse_default(value).ok_or_else(|| {
        format!("parameter `{name}`: default `{}` is neither a number nor a 'quoted string'", value.trim())
    })?;
    if description.is_empty() {
        return Err(format!("parameter `{name}` has no description (`-- param: {name} = VALUE -- what it is`)"));
    }
    Ok(Param { name: name.to_string(), default, description })
}

/// Every job of `pipelines`, sorted by name.
pub fn load_all(pipelines: &Pipelines) -> Result<Vec<Job>, PipelinesError> {
    pipelines.files("sql", "sql")?.iter().map(Job::parse).collect()
}
