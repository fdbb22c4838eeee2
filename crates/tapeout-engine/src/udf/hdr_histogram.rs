//! `hdr_histogram(x)`: the serialized HDR histogram of a numeric column (see [`super::hdr`]).

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::accumulator::{HdrAccumulator, Input, Output};
use super::hdr::check_numeric;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrHistogram {
    signature: Signature,
}

impl HdrHistogram {
    pub fn new() -> Self {
        HdrHistogram { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl Default for HdrHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for HdrHistogram {
    fn name(&self) -> &str {
        "hdr_histogram"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_numeric(self.name(), &arg_types[0])?;
        Ok(DataType::Binary)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let scale = check_numeric(self.name(), args.expr_fields[0].data_type())?;
        Ok(Box::new(HdrAccumulator::new(scale, Input::Values, Output::Histogram)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Field::new(format_state_name(args.name, "histogram"), DataType::Binary, true).into()])
    }
}
