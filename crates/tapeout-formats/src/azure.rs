//! Azure LLM inference traces (AzurePublicDataset): `TIMESTAMP,ContextTokens,GeneratedTokens`
//! (2023: 7-digit fractional seconds; 2024: `+00:00` offset, optional fraction), and the 2025
//! multimodal variant with an extra `NumImages` column. Columns are matched by header name.

use crate::csv::{for_each_record, parse_count};
use crate::rows::{Reject, RequestBatchBuilder, RequestRow};
use crate::time::parse_datetime_ns;
use crate::{FormatError, SourceFormat, header_index};

/// Column positions found in an Azure header.
#[derive(Debug, Clone)]
pub struct AzureParser {
    n_fields: usize,
    timestamp: usize,
    context: usize,
    generated: usize,
    images: Option<usize>,
}

impl AzureParser {
    /// Reads the header line.
    pub fn from_header(header: &[u8]) -> Result<Self, FormatError> {
        let names = crate::header_names(header)?;
        let need = |name: &str| header_index(&names, name, SourceFormat::AzureLlm, header);
        Ok(AzureParser {
            n_fields: names.len(),
            timestamp: need("TIMESTAMP")?,
            context: need("ContextTokens")?,
            generated: need("GeneratedTokens")?,
            images: need("NumImages").ok(),
        })
    }

    /// Parses records (no header) whose first line is line `first_line`.
    pub fn parse_chunk(&self, chunk: &[u8], first_line: u64, out: &mut RequestBatchBuilder, rejects: &mut Vec<Reject>) {
        for_each_record(chunk, first_line, self.n_fields, rejects, |rec, rejects| {
            let (n, line) = (rec.line, rec.raw);
            let Some(arrival_ns) = parse_datetime_ns(rec.field(self.timestamp).trim_ascii()) else {
                rejects.push(Reject::new(n, Some("TIMESTAMP"), "unparseable timestamp", line));
                return;
            };
            let count = |i: usize, name: &str, rejects: &mut Vec<Reject>| match parse_count(rec.field(i)) {
                Ok(v) => Some(v),
                Err(e) => {
                    rejects.push(Reject::new(n, Some(name), e.describe(), line));
                    None
                }
            };
            let Some(input_tokens) = count(self.context, "ContextTokens", rejects) else {
                return;
            };
            let Some(output_tokens) = count(self.generated, "GeneratedTokens", rejects) else {
                return;
            };
            let num_images = match self.images {
                Some(i) => match count(i, "NumImages", rejects) {
                    Some(v) => Some(v),
                    None => return,
                },
                None => None,
            };
            let row = RequestRow {
                arrival_ns,
                input_tokens,
                output_tokens,
                num_images,
                line: n as i64,
                ..Default::default()
            };
            out.push(&row, None);
        });
    }
}
