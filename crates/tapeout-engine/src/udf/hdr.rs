//! The histogram codec and accumulator shared by the `hdr_*` functions.
//!
//! Precision: 3 significant decimal digits ([`SIGFIGS`]): a recorded value is known to within
//! 0.1% of itself (HdrHistogram's sub-bucket resolution, 2^-10 relative). Quantiles are
//! HdrHistogram's `value_at_quantile`: the highest value equivalent (at that precision) to the
//! smallest recorded value with at least `q·count` values at or below it — the nearest-rank
//! quantile, rounded up within its 0.1% bucket.
//!
//! Scaling: histograms count non-negative integers. Integer inputs are recorded as they are
//! (scale 0); floating-point and decimal inputs are multiplied by 1000 and rounded, so three
//! decimals survive (scale 3; e.g. milliseconds with µs resolution). Results are divided back.
//! Null, NaN and negative inputs are not recorded (a percentile of "how long" has no negative
//! values; nulls follow SQL's aggregate rule).
//!
//! Serialized form ([`encode`]): one byte with the decimal scale exponent (0 or 3), then the
//! standard HdrHistogram V2 serialization, so other HdrHistogram libraries can read a histogram
//! after skipping the first byte. Histograms of different scales refuse to merge.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

/// Significant decimal digits every histogram keeps.
pub const SIGFIGS: u8 = 3;

/// Decimal scale exponent of non-integer inputs (×1000).
pub const FLOAT_SCALE: u8 = 3;

/// How inputs of `ty` are recorded: `Some(scale)` for numeric types, `None` otherwise.
pub fn scale_of(ty: &DataType) -> Option<u8> {
    if ty.is_integer() {
        Some(0)
    } else if ty.is_floating() || matches!(ty, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        Some(FLOAT_SCALE)
    } else if ty == &DataType::Null {
        Some(0)
    } else {
        None
    }
}

/// Plan-time check of a value argument.
pub fn check_numeric(name: &str, ty: &DataType) -> Result<u8> {
    match scale_of(ty) {
        Some(s) => Ok(s),
        None => plan_err!("{name} takes a numeric argument, got {ty}"),
    }
}

/// A histogram with the scale its values were recorded at.
#[derive(Debug, Clone)]
pub struct Hdr {
    pub scale: u8,
    pub hist: Histogram<u64>,
}

impl Hdr {
    pub fn new(scale: u8) -> Hdr {
        Hdr { scale, hist: Histogram::new(SIGFIGS).expect("3 significant figures is valid") }
    }

    fn factor(&self) -> f64 {
        10f64.powi(self.scale as i32)
    }

    /// Records every usable value of `values` (any numeric array).
    pub fn record_array(&mut self, values: &ArrayRef) -> Result<()> {
        if self.scale == 0 {
            let ints = cast(values, &DataType::Int64)?;
            for v in ints.as_primitive::<Int64Type>().iter().flatten() {
                if v >= 0 {
                    self.record(v as u64)?;
                }
            }
        } else {
            let floats = cast(values, &DataType::Float64)?;
            let factor = self.factor();
            for v in floats.as_primitive::<Float64Type>().iter().flatten() {
                if v >= 0.0 && v.is_finite() {
                    let scaled = (v * factor).round();
                    if scaled >= u64::MAX as f64 {
                        return exec_err!("hdr: value {v} is too large to record at scale ×{factor}");
                    }
                    self.record(scaled as u64)?;
                }
            }
        }
        Ok(())
    }

    fn record(&mut self, v: u64) -> Result<()> {
        self.hist.record(v).map_err(|e| DataFusionError::Execution(format!("hdr: cannot record {v}: {e:?}")))
    }

    /// Adds another histogram of the same scale.
    pub fn merge(&mut self, other: &Hdr) -> Result<()> {
        if other.hist.is_empty() {
            return Ok(());
        }
        if self.hist.is_empty() && self.scale != other.scale {
            self.scale = other.scale;
        }
        if self.scale != other.scale {
            return exec_err!(
                "hdr_merge: histograms of integer inputs (scale ×1) and of decimal inputs (scale ×1000) cannot be merged"
            );
        }
        self.hist.add(&other.hist).map_err(|e| DataFusionError::Execution(format!("hdr_merge: {e:?}")))
    }

    /// The value at quantile `q` in input units, `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.value_at_quantile(q) as f64 / self.factor())
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn min(&self) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.min() as f64 / self.factor())
    }

    pub fn max(&self) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.max() as f64 / self.factor())
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.mean() / self.factor())
    }

    pub fn stdev(&self) -> Option<f64> {
        (!self.hist.is_empty()).then(|| self.hist.stdev() / self.factor())
    }

    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.hist.distinct_values() * 8
    }
}

/// Serializes: the scale byte, then HdrHistogram V2.
pub fn encode(h: &Hdr) -> Result<Vec<u8>> {
    let mut out = vec![h.scale];
    V2Serializer::new()
        .serialize(&h.hist, &mut out)
        .map_err(|e| DataFusionError::Execution(format!("hdr: cannot serialize a histogram: {e:?}")))?;
    Ok(out)
}

/// Reads what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Hdr> {
    let Some((&scale, body)) = bytes.split_first() else {
        return exec_err!("hdr: an empty value is not a histogram");
    };
    if scale != 0 && scale != FLOAT_SCALE {
        return exec_err!("hdr: not a tapeout histogram (scale byte {scale})");
    }
    let hist: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &body[..])
        .map_err(|e| DataFusionError::Execution(format!("hdr: not a serialized histogram: {e:?}")))?;
    Ok(Hdr { scale, hist })
}

/// Merges every non-null histogram of a binary array into `into`.
pub fn merge_binary_array(into: &mut Hdr, array: &ArrayRef) -> Result<()> {
    let array = cast(array, &DataType::Binary)?;
    let bins: &BinaryArray = array.as_binary::<i32>();
    for b in bins.iter().flatten() {
        into.merge(&decode(b)?)?;
    }
    Ok(())
}

/// The quantile argument: a literal in [0, 1].
pub fn literal_quantile(name: &str, expr: &Arc<dyn PhysicalExpr>) -> Result<f64> {
    let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let q = match expr.evaluate(&batch) {
        Ok(ColumnarValue::Scalar(s)) => s,
        _ => return plan_err!("{name}: the quantile must be a literal between 0 and 1"),
    };
    quantile_value(name, &q)
}

/// A quantile scalar as f64 in [0, 1].
pub fn quantile_value(name: &str, q: &ScalarValue) -> Result<f64> {
    let q = match q.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(q)) => q,
        _ => return plan_err!("{name}: the quantile must be a number between 0 and 1, got {q}"),
    };
    if !(0.0..=1.0).contains(&q) {
        return plan_err!("{name}: the quantile must be between 0 and 1, got {q}");
    }
    Ok(q)
}

/// `Some(bytes)` of a histogram as a binary scalar.
pub fn binary_scalar(h: &Hdr) -> Result<ScalarValue> {
    Ok(ScalarValue::Binary(Some(encode(h)?)))
}
