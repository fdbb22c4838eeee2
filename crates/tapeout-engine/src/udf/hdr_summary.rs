//! `hdr_summary(x)`: count, min, max, mean, stdev, p50, p90, p99 and p999 of a numeric column
//! in one struct (quantiles and extremes to 3 significant digits, see [`super::hdr`]; mean and
//! stdev from the histogram, so also within that precision).

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::accumulator::{HdrAccumulator, Input, Output, summary_type};
use super::hdr::check_numeric;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrSummary {
    signature: Signature,
}

impl HdrSummary {
    pub fn new() -> Self {
        HdrSummary { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl Default for HdrSummary {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for HdrSummary {
    fn name(&self) -> &str {
        "hdr_summary"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_numeric(self.name(), &arg_types[0])?;
        Ok(summary_type())
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let scale = check_numeric(self.name(), args.expr_fields[0].data_type())?;
        Ok(Box::new(HdrAccumulator::new(scale, Input::Values, Output::Summary)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Field::new(format_state_name(args.name, "histogram"), DataType::Binary, true).into()])
    }
}
