//! `hdr_merge(h)`: the merge of serialized HDR histograms (e.g. per-hour histograms rolled up
//! to a day). Histograms of integer and of decimal inputs do not merge (see [`super::hdr`]).

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::accumulator::{HdrAccumulator, Input, Output};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrMerge {
    signature: Signature,
}

impl HdrMerge {
    pub fn new() -> Self {
        HdrMerge { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl Default for HdrMerge {
    fn default() -> Self {
        Self::new()
    }
}

/// Plan-time check that an argument can hold serialized histograms.
pub(crate) fn check_binary(name: &str, ty: &DataType) -> Result<()> {
    match ty {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null => Ok(()),
        other => plan_err!("{name} takes a histogram (binary, from hdr_histogram), got {other}"),
    }
}

impl AggregateUDFImpl for HdrMerge {
    fn name(&self) -> &str {
        "hdr_merge"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_binary(self.name(), &arg_types[0])?;
        Ok(DataType::Binary)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        check_binary(self.name(), args.expr_fields[0].data_type())?;
        // The scale is taken from the first non-empty histogram merged.
        Ok(Box::new(HdrAccumulator::new(0, Input::Histograms, Output::Histogram)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Field::new(format_state_name(args.name, "histogram"), DataType::Binary, true).into()])
    }
}
