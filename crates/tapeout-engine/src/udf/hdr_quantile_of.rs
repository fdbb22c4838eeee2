//! `hdr_quantile_of(h, q)`: the value at quantile `q` of a serialized histogram `h` (from
//! `hdr_histogram` / `hdr_merge`); null for a null or empty histogram.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::hdr::{decode, quantile_value};
use super::hdr_merge::check_binary;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrQuantileOf {
    signature: Signature,
}

impl HdrQuantileOf {
    pub fn new() -> Self {
        HdrQuantileOf { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl Default for HdrQuantileOf {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for HdrQuantileOf {
    fn name(&self) -> &str {
        "hdr_quantile_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_binary(self.name(), &arg_types[0])?;
        if !arg_types[1].is_numeric() {
            return plan_err!("hdr_quantile_of: the quantile must be a number between 0 and 1, got {}", arg_types[1]);
        }
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let hists = args.args[0].to_array(n)?;
        let hists = cast(&hists, &DataType::Binary)?;
        let hists = hists.as_binary::<i32>();
        let qs = match &args.args[1] {
            ColumnarValue::Scalar(q) => vec![Some(quantile_value(self.name(), q)?); n],
            ColumnarValue::Array(a) => {
                let a = cast(a, &DataType::Float64)?;
                let mut out = Vec::with_capacity(n);
                for q in a.as_primitive::<Float64Type>().iter() {
                    out.push(match q {
                        Some(q) => Some(quantile_value(self.name(), &ScalarValue::Float64(Some(q)))?),
                        None => None,
                    });
                }
                out
            }
        };
        let mut b = Float64Builder::with_capacity(n);
        for (i, q) in qs.into_iter().enumerate() {
            match (hists.is_valid(i), q) {
                (true, Some(q)) => b.append_option(decode(hists.value(i))?.quantile(q)),
                _ => b.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}
