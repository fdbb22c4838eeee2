//! One accumulator for every `hdr_*` aggregate: they differ only in what they read (values or
//! serialized histograms) and what they return.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;
use datafusion::scalar::ScalarValue as S;
use std::sync::Arc;

use super::hdr::{Hdr, binary_scalar, merge_binary_array};

/// What the aggregate reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input {
    /// Numeric values, recorded.
    Values,
    /// Serialized histograms, merged.
    Histograms,
}

/// What the aggregate returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output {
    Histogram,
    Quantile(f64),
    Summary,
}

/// Quantiles reported by `hdr_summary`.
pub const SUMMARY_QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)];

/// The struct type `hdr_summary` returns.
pub fn summary_type() -> DataType {
    let mut fields = vec![Field::new("count", DataType::Int64, false)];
    for name in ["min", "max", "mean", "stdev"].into_iter().chain(SUMMARY_QUANTILES.iter().map(|q| q.0)) {
        fields.push(Field::new(name, DataType::Float64, true));
    }
    DataType::Struct(Fields::from(fields))
}

#[derive(Debug)]
pub struct HdrAccumulator {
    hdr: Hdr,
    input: Input,
    output: Output,
}

impl HdrAccumulator {
    pub fn new(scale: u8, input: Input, output: Output) -> Self {
        HdrAccumulator { hdr: Hdr::new(scale), input, output }
    }
}

impl Accumulator for HdrAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(v) = values.first() else { return Ok(()) };
        match self.input {
            Input::Values => self.hdr.record_array(v),
            Input::Histograms => merge_binary_array(&mut self.hdr, v),
        }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let h = &self.hdr;
        Ok(match self.output {
            Output::Histogram => binary_scalar(h)?,
            Output::Quantile(q) => ScalarValue::Float64(h.quantile(q)),
            Output::Summary => {
                let DataType::Struct(fields) = summary_type() else { unreachable!("summary_type is a struct") };
                let mut values: Vec<ScalarValue> = vec![S::Int64(Some(h.count() as i64))];
                for v in [h.min(), h.max(), h.mean(), h.stdev()] {
                    values.push(S::Float64(v));
                }
                for (_, q) in SUMMARY_QUANTILES {
                    values.push(S::Float64(h.quantile(q)));
                }
                let arrays = values.iter().map(|v| v.to_array()).collect::<Result<Vec<_>>>()?;
                let array = datafusion::arrow::array::StructArray::try_new(fields, arrays, None)?;
                ScalarValue::Struct(Arc::new(array))
            }
        })
    }

    fn size(&self) -> usize {
        self.hdr.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![binary_scalar(&self.hdr)?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        match states.first() {
            Some(s) => merge_binary_array(&mut self.hdr, s),
            None => Ok(()),
        }
    }
}
