//! Running sums in one pass: `sum(x) OVER (… ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`.
//!
//! DataFusion evaluates an aggregate over a growing frame row by row: for each output row it
//! slices the input, updates a `sum` accumulator with that one-row slice and materializes a
//! `ScalarValue`. On the concurrency sweeps of the mining jobs (tens of millions of arrival and
//! departure events) that loop is most of the query time. [`RunningSumRule`], a physical
//! optimizer rule that every tapeout session runs last, replaces each such window expression
//! by [`RunningSum`], a window function that keeps the total and adds one value per row. The
//! SQL stays standard (DuckDB and datafusion-cli run the same job files unchanged).
//!
//! Replaced only when the result is provably the same: `sum` without `DISTINCT` or `FILTER`,
//! frame `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`, argument and result both `Int64`,
//! `UInt64` or `Float64` (integers wrap on overflow as `sum` does; floats are added in row
//! order, the accumulator's order, so every bit agrees). Nulls are skipped; the sum is null
//! until the first non-null value, as for `sum`. The output column keeps its name and type.
//!
//! `running_sum` is also registered by name so that plans shipped to Ballista executors of
//! ours resolve it; it is not meant to be called directly (use `sum(x) OVER (…)`).

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ArrowNativeTypeOp, ArrowPrimitiveType, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type, UInt64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::window_state::WindowAggState;
use datafusion::logical_expr::{
    LimitEffect, PartitionEvaluator, Signature, Volatility, WindowFrame, WindowFrameBound, WindowFrameUnits, WindowUDF,
    WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::window::{PlainAggregateWindowExpr, StandardWindowExpr, WindowExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, create_udwf_window_expr};

/// Name the window function is registered under.
pub const NAME: &str = "running_sum";

/// Name of [`RunningSumRule`].
pub const RULE_NAME: &str = "tapeout_running_sum";

/// The running-sum window function (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RunningSum {
    signature: Signature,
}

impl RunningSum {
    pub fn new() -> Self {
        RunningSum {
            signature: Signature::uniform(
                1,
                vec![DataType::Int64, DataType::UInt64, DataType::Float64],
                Volatility::Immutable,
            ),
        }
    }
}

impl Default for RunningSum {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowUDFImpl for RunningSum {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(&self, args: PartitionEvaluatorArgs) -> Result<Box<dyn PartitionEvaluator>> {
        let Some(field) = args.input_fields().first() else {
            return exec_err!("{NAME} takes one argument");
        };
        Ok(match field.data_type() {
            DataType::Int64 => Box::new(RunningSumEvaluator::<Int64Type>::default()),
            DataType::UInt64 => Box::new(RunningSumEvaluator::<UInt64Type>::default()),
            DataType::Float64 => Box::new(RunningSumEvaluator::<Float64Type>::default()),
            other => return exec_err!("{NAME} of {other} is not supported"),
        })
    }

    fn field(&self, args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let Some(input) = args.input_fields().first() else {
            return exec_err!("{NAME} takes one argument");
        };
        Ok(Arc::new(Field::new(args.name(), input.data_type().clone(), true)))
    }

    fn limit_effect(&self, _args: &[Arc<dyn PhysicalExpr>]) -> LimitEffect {
        LimitEffect::None
    }
}

/// One partition's running total. `sum` is `None` until the first non-null value.
struct RunningSumEvaluator<T: ArrowPrimitiveType> {
    sum: Option<T::Native>,
}

impl<T: ArrowPrimitiveType> std::fmt::Debug for RunningSumEvaluator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSumEvaluator").field("sum", &self.sum).finish()
    }
}

impl<T: ArrowPrimitiveType> Default for RunningSumEvaluator<T> {
    fn default() -> Self {
        RunningSumEvaluator { sum: None }
    }
}

impl<T: ArrowPrimitiveType> RunningSumEvaluator<T> {
    fn add(&mut self, values: &PrimitiveArray<T>, row: usize) -> Option<T::Native> {
        if values.is_valid(row) {
            let v = values.value(row);
            self.sum = Some(self.sum.map_or(v, |s| s.add_wrapping(v)));
        }
        self.sum
    }
}

impl<T: ArrowPrimitiveType> PartitionEvaluator for RunningSumEvaluator<T> {
    // Bounded (streaming) execution calls `evaluate` once per row, in order, with the range
    // `row..row + 1` of the rows buffered for this partition: adding that row's value keeps
    // the total. Rows before the current one are never read again, so they may be pruned.
    fn memoize(&mut self, _state: &mut WindowAggState) -> Result<()> {
        Ok(())
    }

    fn is_causal(&self) -> bool {
        true
    }

    fn supports_bounded_execution(&self) -> bool {
        true
    }

    fn evaluate(&mut self, values: &[ArrayRef], range: &Range<usize>) -> Result<ScalarValue> {
        let sum = self.add(values[0].as_primitive::<T>(), range.start);
        ScalarValue::new_primitive::<T>(sum, values[0].data_type())
    }

    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let input = values[0].as_primitive::<T>();
        let out: PrimitiveArray<T> = (0..num_rows).map(|row| self.add(input, row)).collect();
        Ok(Arc::new(out.with_data_type(values[0].data_type().clone())))
    }
}

/// Physical optimizer rule: running `sum` window expressions → [`RunningSum`].
#[derive(Debug)]
pub struct RunningSumRule {
    udwf: Arc<WindowUDF>,
}

impl RunningSumRule {
    pub fn new() -> Self {
        RunningSumRule { udwf: Arc::new(WindowUDF::new_from_impl(RunningSum::new())) }
    }

    /// The replacement for `expr`, when it is a running `sum` this rule may replace.
    fn replacement(
        &self,
        expr: &Arc<dyn WindowExpr>,
        input: &Arc<dyn ExecutionPlan>,
    ) -> Result<Option<Arc<dyn WindowExpr>>> {
        let Some(plain) = expr.as_any().downcast_ref::<PlainAggregateWindowExpr>() else {
            return Ok(None);
        };
        let agg = plain.get_aggregate_expr();
        let args = agg.expressions();
        if agg.fun().name() != "sum" || agg.is_distinct() || has_filter(plain) || args.len() != 1 {
            return Ok(None);
        }
        if !is_rows_to_current_row(plain.get_window_frame()) {
            return Ok(None);
        }
        let schema = input.schema();
        let arg_type = args[0].data_type(&schema)?;
        let out = plain.field()?;
        if !matches!(arg_type, DataType::Int64 | DataType::UInt64 | DataType::Float64) || out.data_type() != &arg_type {
            return Ok(None);
        }
        let f = create_udwf_window_expr(&self.udwf, &args, &schema, plain.name().to_string(), false)?;
        let replaced =
            StandardWindowExpr::new(f, plain.partition_by(), plain.order_by(), Arc::clone(plain.get_window_frame()));
        // The parent was planned against the original field: keep it exactly.
        if replaced.field()?.as_ref() != out.as_ref() {
            return Ok(None);
        }
        Ok(Some(Arc::new(replaced)))
    }

    /// `exprs` with every replaceable expression replaced, or `None` when none is.
    fn replace_all(
        &self,
        exprs: &[Arc<dyn WindowExpr>],
        input: &Arc<dyn ExecutionPlan>,
    ) -> Result<Option<Vec<Arc<dyn WindowExpr>>>> {
        let mut changed = false;
        let mut out = Vec::with_capacity(exprs.len());
        for e in exprs {
            match self.replacement(e, input)? {
                Some(r) => {
                    changed = true;
                    out.push(r);
                }
                None => out.push(Arc::clone(e)),
            }
        }
        Ok(changed.then_some(out))
    }
}

impl Default for RunningSumRule {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `expr` has a `FILTER (WHERE …)` clause, or might. DataFusion 55 keeps the filter
/// behind a crate-private trait, so this reads the two places it shows: the expression's name
/// (the logical expression's schema name, which spells the clause out) and the derived `Debug`
/// of the struct (whose last field is `filter`). Either one in doubt means "has a filter".
fn has_filter(expr: &PlainAggregateWindowExpr) -> bool {
    expr.name().contains(" FILTER (WHERE ") || !format!("{expr:?}").ends_with("filter: None }")
}

/// `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`.
fn is_rows_to_current_row(frame: &WindowFrame) -> bool {
    frame.units == WindowFrameUnits::Rows
        && matches!(&frame.start_bound, WindowFrameBound::Preceding(v) if v.is_null())
        && matches!(frame.end_bound, WindowFrameBound::CurrentRow)
}

impl PhysicalOptimizerRule for RunningSumRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
                if let Some(exprs) = self.replace_all(w.window_expr(), w.input())? {
                    // `partition_keys` is empty exactly when the exec may not repartition (or
                    // has no PARTITION BY, where the flag does not matter).
                    let can_repartition = !w.partition_keys().is_empty();
                    let new = BoundedWindowAggExec::try_new(
                        exprs,
                        Arc::clone(w.input()),
                        w.input_order_mode.clone(),
                        can_repartition,
                    )?;
                    return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
                }
            } else if let Some(w) = node.downcast_ref::<WindowAggExec>()
                && let Some(exprs) = self.replace_all(w.window_expr(), w.input())?
            {
                let can_repartition = !w.partition_keys().is_empty();
                let new = WindowAggExec::try_new(exprs, Arc::clone(w.input()), can_repartition)?;
                return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        RULE_NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::windows::WindowUDFExpr;
    use datafusion::prelude::SessionContext;

    /// 3 groups × 2,000 rows in 9 batches (so streaming crosses batch and group boundaries),
    /// with nulls, a group that starts with nulls, and floats whose sum depends on order.
    fn table() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, false),
            Field::new("k", DataType::Int64, false),
            Field::new("x", DataType::Int64, true),
            Field::new("y", DataType::Float64, true),
        ]));
        let rows: Vec<(String, i64, Option<i64>, Option<f64>)> = (0..6000i64)
            .map(|i| {
                let g = ["a", "b", "c"][(i % 3) as usize].to_string();
                let x = if i % 7 == 0 || (g == "c" && i < 300) { None } else { Some((i * 37) % 101 - 50) };
                let y = if i % 11 == 0 { None } else { Some(0.1 * ((i * 13) % 97) as f64 + 1e-7 * i as f64) };
                (g, 6000 - i, x, y)
            })
            .collect();
        let batches = rows
            .chunks(667)
            .map(|c| {
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from_iter_values(c.iter().map(|r| r.0.clone()))),
                        Arc::new(Int64Array::from_iter_values(c.iter().map(|r| r.1))),
                        Arc::new(Int64Array::from_iter(c.iter().map(|r| r.2))),
                        Arc::new(Float64Array::from_iter(c.iter().map(|r| r.3))),
                    ],
                )
                .unwrap()
            })
            .collect();
        Arc::new(MemTable::try_new(schema, vec![batches]).unwrap())
    }

    fn ours() -> SessionContext {
        let ctx = SessionContext::new_with_state(crate::with_functions(SessionContext::new().state()));
        ctx.register_table("t", table()).unwrap();
        ctx
    }

    fn stock() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.register_table("t", table()).unwrap();
        ctx
    }

    const QUERY: &str = "select g, k, \
        sum(x) over w as sx, sum(y) over w as sy, \
        sum(x) over (partition by g order by k) as range_sx, \
        sum(x) over (order by k, g rows between unbounded preceding and current row) as all_sx, \
        sum(cast(x as int)) over (order by k rows between unbounded preceding and current row) as sx32 \
        from t window w as (partition by g order by k rows between unbounded preceding and current row) \
        order by g, k";

    /// Names of the window functions the plan evaluates with `running_sum`.
    fn replaced(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
        let mut out = vec![];
        plan.apply(|node| {
            let exprs = if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
                w.window_expr().to_vec()
            } else if let Some(w) = node.downcast_ref::<WindowAggExec>() {
                w.window_expr().to_vec()
            } else {
                vec![]
            };
            for e in exprs {
                if let Some(s) = e.as_any().downcast_ref::<StandardWindowExpr>()
                    && let Some(u) = s.get_standard_func_expr().as_any().downcast_ref::<WindowUDFExpr>()
                    && u.fun().name() == NAME
                {
                    out.push(e.name().to_string());
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        out.sort();
        out
    }

    #[tokio::test]
    async fn same_results_as_datafusion_sum() {
        let a = ours().sql(QUERY).await.unwrap().collect().await.unwrap();
        let b = stock().sql(QUERY).await.unwrap().collect().await.unwrap();
        let a = datafusion::arrow::compute::concat_batches(&a[0].schema(), &a).unwrap();
        let b = datafusion::arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
        assert_eq!(a.num_rows(), 6000);
        // Bit for bit, floats included, and the same schema (names, types, nullability).
        assert_eq!(a, b);
    }

    #[tokio::test]
    async fn replaces_only_running_sums_of_supported_types() {
        let plan = ours().sql(QUERY).await.unwrap().create_physical_plan().await.unwrap();
        let names = replaced(&plan);
        // sx, sy, all_sx and sx32 (an int32 argument is coerced to int64 before the sum); not
        // the RANGE frame.
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().all(|n| n.contains("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW")));
        // A decimal sum is left to DataFusion.
        let decimal = "select sum(cast(x as decimal(10, 2))) over (partition by g order by k rows between unbounded preceding and current row) from t";
        let plan = ours().sql(decimal).await.unwrap().create_physical_plan().await.unwrap();
        assert!(replaced(&plan).is_empty());
        let stock_plan = stock().sql(QUERY).await.unwrap().create_physical_plan().await.unwrap();
        assert!(replaced(&stock_plan).is_empty());
    }

    #[tokio::test]
    async fn hand_computed_running_sums_with_nulls() {
        let ctx = ours();
        let sql = "select k, sum(v) over (order by k rows between unbounded preceding and current row) as s \
                   from (values (1, cast(null as bigint)), (2, 1), (3, 2), (4, null), (5, 3)) as v(k, v) order by k";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        assert_eq!(replaced(&plan).len(), 1);
        let s: Vec<Option<i64>> =
            batches.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().iter().collect::<Vec<_>>()).collect();
        assert_eq!(s, vec![None, Some(1), Some(3), Some(3), Some(6)]);
    }

    #[tokio::test]
    async fn a_filtered_sum_is_left_alone() {
        let ctx = ours();
        let sql = "select k, sum(x) filter (where x > 0) over (partition by g order by k rows between unbounded preceding and current row) as s from t";
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        assert!(replaced(&plan).is_empty());
    }
}
