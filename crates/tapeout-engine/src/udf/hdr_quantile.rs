//! `hdr_quantile(x, q)`: the value at quantile `q` (a literal in [0, 1]) of a numeric column,
//! to 3 significant digits (see [`super::hdr`]); null when no value was recorded.

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::accumulator::{HdrAccumulator, Input, Output};
use super::hdr::{check_numeric, literal_quantile};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HdrQuantile {
    signature: Signature,
}

impl HdrQuantile {
    pub fn new() -> Self {
        HdrQuantile { signature: Signature::any(2, Volatility::Immutable) }
    }
}

impl Default for HdrQuantile {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for HdrQuantile {
    fn name(&self) -> &str {
        "hdr_quantile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_numeric(self.name(), &arg_types[0])?;
        if !arg_types[1].is_numeric() {
            return plan_err!("hdr_quantile: the quantile must be a number between 0 and 1, got {}", arg_types[1]);
        }
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let scale = check_numeric(self.name(), args.expr_fields[0].data_type())?;
        let q = literal_quantile(self.name(), &args.exprs[1])?;
        Ok(Box::new(HdrAccumulator::new(scale, Input::Values, Output::Quantile(q))))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Field::new(format_state_name(args.name, "histogram"), DataType::Binary, true).into()])
    }
}
