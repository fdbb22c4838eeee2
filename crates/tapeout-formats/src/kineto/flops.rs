//! FLOPs and bytes of a launching CPU op, from its `Input Dims` / `Input type` (and, for
//! convolutions, `Concrete Inputs`). See the formulas in the [`super`] module docs.

use serde_json::value::RawValue;

/// What [`op_cost`] derived; every part may be unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCost {
    pub flops: Option<i64>,
    pub bytes: Option<i64>,
    /// Normalized dtype of the op's first tensor input.
    pub dtype: Option<&'static str>,
}

/// Normalizes a PyTorch / Kineto dtype spelling (`c10::BFloat16`, `float`, `long int`, NCCL's
/// `Float`, kernel-name `f32`) to `(torch name, bytes per element)`.
pub fn dtype_info(s: &str) -> Option<(&'static str, i64)> {
    let s = s.trim();
    let s = s.strip_prefix("c10::").unwrap_or(s);
    let lower = s.to_ascii_lowercase();
    Some(match lower.as_str() {
        "float" | "float32" | "f32" => ("float32", 4),
        "double" | "float64" | "f64" => ("float64", 8),
        "half" | "float16" | "f16" => ("float16", 2),
        "bfloat16" | "bf16" => ("bfloat16", 2),
        "long int" | "long" | "int64" | "int64_t" | "i64" => ("int64", 8),
        "int" | "int32" | "int32_t" | "i32" => ("int32", 4),
        "short int" | "short" | "int16" => ("int16", 2),
        "signed char" | "char" | "int8" | "int8_t" | "i8" => ("int8", 1),
        "unsigned char" | "byte" | "uint8" | "uint8_t" | "u8" => ("uint8", 1),
        "bool" => ("bool", 1),
        "complex<float>" | "complexfloat" | "complex64" => ("complex64", 8),
        "complex<double>" | "complexdouble" | "complex128" => ("complex128", 16),
        l if l.starts_with("float8_e4m3fnuz") => ("float8_e4m3fnuz", 1),
        l if l.starts_with("float8_e4m3") => ("float8_e4m3fn", 1),
        l if l.starts_with("float8_e5m2fnuz") => ("float8_e5m2fnuz", 1),
        l if l.starts_with("float8_e5m2") => ("float8_e5m2", 1),
        _ => return None,
    })
}

/// One op input: a flat shape when `Input Dims` gives one, and its dtype when it is a tensor.
#[derive(Debug, Clone, Default)]
struct Input {
    shape: Option<Vec<i64>>,
    dtype: Option<(&'static str, i64)>,
}

impl Input {
    fn elems(&self) -> Option<i128> {
        self.shape.as_ref().map(|s| s.iter().map(|&d| d.max(0) as i128).product())
    }
    fn bytes(&self) -> Option<i128> {
        Some(self.elems()? * self.dtype?.1 as i128)
    }
    fn dims(&self, n: usize) -> Option<&[i64]> {
        self.shape.as_deref().filter(|s| s.len() == n)
    }
}

fn parse_inputs(dims: Option<&RawValue>, types: Option<&RawValue>) -> Vec<Input> {
    let dims: Vec<serde_json::Value> = dims.and_then(|d| serde_json::from_str(d.get()).ok()).unwrap_or_default();
    let types: Vec<serde_json::Value> = types.and_then(|t| serde_json::from_str(t.get()).ok()).unwrap_or_default();
    (0..dims.len().max(types.len()))
        .map(|i| Input {
            shape: dims.get(i).and_then(|d| d.as_array()).and_then(|a| a.iter().map(|v| v.as_i64()).collect()),
            dtype: types.get(i).and_then(|t| t.as_str()).and_then(dtype_info),
        })
        .collect()
}

fn concrete(raw: Option<&RawValue>) -> Vec<String> {
    let v: Vec<serde_json::Value> = raw.and_then(|c| serde_json::from_str(c.get()).ok()).unwrap_or_default();
    v.into_iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect()
}

/// `"[2, 2]"` → `[2, 2]`; `"2"` → `[2; n]`.
fn int_list(s: &str, n: usize) -> Option<Vec<i64>> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let v: Option<Vec<i64>> = inner.split(',').map(|t| t.trim().parse().ok()).collect();
        let v = v?;
        return match v.len() {
            1 => Some(vec![v[0]; n]),
            l if l == n => Some(v),
            _ => None,
        };
    }
    s.parse().ok().map(|x| vec![x; n])
}

fn to_i64(v: Option<i128>) -> Option<i64> {
    v.and_then(|v| i64::try_from(v).ok())
}

fn broadcast(shapes: &[&[i64]]) -> Vec<i64> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    (0..rank)
        .map(|i| shapes.iter().filter_map(|s| (i + s.len()).checked_sub(rank).map(|j| s[j])).max().unwrap_or(1))
        .collect()
}

const UNARY: &[&str] = &[
    "relu",
    "relu_",
    "gelu",
    "gelu_",
    "silu",
    "silu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "exp",
    "exp_",
    "log",
    "neg",
    "rsqrt",
    "sqrt",
    "abs",
    "sin",
    "cos",
    "reciprocal",
    "clamp",
    "clamp_",
    "clamp_min",
    "clamp_min_",
    "erf",
    "threshold",
    "hardtanh",
    "hardtanh_",
    "leaky_relu",
    "leaky_relu_",
];
const BINARY: &[&str] = &[
    "add",
    "add_",
    "sub",
    "sub_",
    "rsub",
    "mul",
    "mul_",
    "div",
    "div_",
    "pow",
    "maximum",
    "minimum",
    "where",
    "threshold_backward",
    "silu_backward",
    "gelu_backward",
    "sigmoid_backward",
    "tanh_backward",
];

/// FLOPs, bytes and dtype of one op call. Unknown ops keep `flops`/`bytes` null.
pub fn op_cost(name: &str, dims: Option<&RawValue>, types: Option<&RawValue>, conc: Option<&RawValue>) -> OpCost {
    let inputs = parse_inputs(dims, types);
    let dtype = inputs.iter().find_map(|i| i.dtype).map(|d| d.0);
    let op = name.strip_prefix("aten::").unwrap_or(name);
    let (flops, bytes) = match op {
        "mm" | "addmm" | "bmm" | "baddbmm" | "matmul" | "linear" => gemm(op, &inputs),
        "convolution"
        | "_convolution"
        | "conv1d"
        | "conv2d"
        | "conv3d"
        | "cudnn_convolution"
        | "miopen_convolution"
        | "convolution_backward" => conv(op, &inputs, &concrete(conc)),
        "scaled_dot_product_attention"
        | "_scaled_dot_product_flash_attention"
        | "_scaled_dot_product_efficient_attention"
        | "_scaled_dot_product_cudnn_attention"
        | "_flash_attention_forward"
        | "_efficient_attention_forward" => attention(op, &inputs),
        "copy_" => (Some(0), inputs.iter().take(2).map(Input::bytes).sum::<Option<i128>>()),
        o if UNARY.contains(&o) || BINARY.contains(&o) => elementwise(&inputs),
        _ => (None, None),
    };
    OpCost { flops: to_i64(flops), bytes: to_i64(bytes), dtype }
}

fn gemm(op: &str, x: &[Input]) -> (Option<i128>, Option<i128>) {
    let get = |i: usize| x.get(i).and_then(|v| v.shape.as_deref());
    // (batch, M, N, K, a, b, bias)
    let (batch, m, n, k, a, b, bias): (i128, i64, i64, i64, usize, usize, Option<usize>) = match op {
        "mm" => match (x.first().and_then(|v| v.dims(2)), x.get(1).and_then(|v| v.dims(2))) {
            (Some(&[m, k]), Some(&[_, n])) => (1, m, n, k, 0, 1, None),
            _ => return (None, None),
        },
        "addmm" => match (x.get(1).and_then(|v| v.dims(2)), x.get(2).and_then(|v| v.dims(2))) {
            (Some(&[m, k]), Some(&[_, n])) => (1, m, n, k, 1, 2, Some(0)),
            _ => return (None, None),
        },
        "bmm" => match (x.first().and_then(|v| v.dims(3)), x.get(1).and_then(|v| v.dims(3))) {
            (Some(&[bb, m, k]), Some(&[_, _, n])) => (bb as i128, m, n, k, 0, 1, None),
            _ => return (None, None),
        },
        "baddbmm" => match (x.get(1).and_then(|v| v.dims(3)), x.get(2).and_then(|v| v.dims(3))) {
            (Some(&[bb, m, k]), Some(&[_, _, n])) => (bb as i128, m, n, k, 1, 2, Some(0)),
            _ => return (None, None),
        },
        "linear" => match (get(0), x.get(1).and_then(|v| v.dims(2))) {
            (Some(s), Some(&[n, k])) if !s.is_empty() => {
                let m: i128 = s[..s.len() - 1].iter().map(|&d| d as i128).product();
                let bias = x.get(2).filter(|v| v.shape.as_ref().is_some_and(|s| !s.is_empty())).map(|_| 2);
                (1, i64::try_from(m).ok().unwrap_or(i64::MAX), n, k, 0, 1, bias)
            }
            _ => return (None, None),
        },
        _ => {
            // matmul: numpy semantics; a 1-D operand is a row (a) or column (b) vector.
            let (Some(sa), Some(sb)) = (get(0), get(1)) else { return (None, None) };
            if sa.is_empty() || sb.is_empty() {
                return (None, None);
            }
            let (m, k) = if sa.len() == 1 { (1, sa[0]) } else { (sa[sa.len() - 2], sa[sa.len() - 1]) };
            let n = if sb.len() == 1 { 1 } else { sb[sb.len() - 1] };
            let ba = if sa.len() > 2 { &sa[..sa.len() - 2] } else { &[][..] };
            let bb = if sb.len() > 2 { &sb[..sb.len() - 2] } else { &[][..] };
            let batch = broadcast(&[ba, bb]).iter().map(|&d| d as i128).product();
            (batch, m, n, k, 0, 1, None)
        }
    };
    // 2·M·N·K multiply-adds, plus one add per output element for a bias (addmm, baddbmm,
    // linear with bias), as TraceLens counts them.
    let flops = 2 * batch * m as i128 * n as i128 * k as i128 + bias.map_or(0, |_| batch * m as i128 * n as i128);
    let out_size = x.get(a).and_then(|v| v.dtype).map(|d| d.1 as i128);
    let bytes = (|| {
        let mut t = x.get(a)?.bytes()? + x.get(b)?.bytes()? + batch * m as i128 * n as i128 * out_size?;
        if let Some(i) = bias {
            t += x.get(i)?.bytes()?;
        }
        Some(t)
    })();
    (Some(flops), bytes)
}

fn conv(op: &str, x: &[Input], conc: &[String]) -> (Option<i128>, Option<i128>) {
    let backward = op == "convolution_backward";
    let (inp, w) = if backward { (x.get(1), x.get(2)) } else { (x.first(), x.get(1)) };
    let (Some(inp), Some(w)) = (inp, w) else { return (None, None) };
    let (Some(si), Some(sw)) = (inp.shape.as_deref(), w.shape.as_deref()) else { return (None, None) };
    if si.len() < 3 || sw.len() != si.len() {
        return (None, None);
    }
    let nd = si.len() - 2;
    let out_spatial: Vec<i64> = if backward {
        match x.first().and_then(|g| g.shape.as_deref()) {
            Some(g) if g.len() == si.len() => g[2..].to_vec(),
            _ => return (None, None),
        }
    } else {
        // Positions of (stride, padding, dilation, transposed) in each op's schema.
        let (s, p, d, t) = match op {
            "convolution" | "_convolution" => (3, 4, 5, Some(6)),
            "conv1d" | "conv2d" | "conv3d" => (3, 4, 5, None),
            "cudnn_convolution" => (3, 2, 4, None),
            _ => (4, 3, 5, None), // miopen_convolution
        };
        if t.and_then(|t| conc.get(t)).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return (None, None);
        }
        let (Some(s), Some(p), Some(d)) = (
            conc.get(s).and_then(|v| int_list(v, nd)),
            conc.get(p).and_then(|v| int_list(v, nd)),
            conc.get(d).and_then(|v| int_list(v, nd)),
        ) else {
            return (None, None);
        };
        let mut out = Vec::with_capacity(nd);
        for i in 0..nd {
            if s[i] <= 0 {
                return (None, None);
            }
            out.push((si[2 + i] + 2 * p[i] - d[i] * (sw[2 + i] - 1) - 1).div_euclid(s[i]) + 1);
        }
        out
    };
    let n = si[0] as i128;
    let c_out = sw[0] as i128;
    let per_out: i128 = sw[1..].iter().map(|&v| v as i128).product(); // C_in/groups × kernel
    let out_elems = n * c_out * out_spatial.iter().map(|&v| v.max(0) as i128).product::<i128>();
    let fwd = 2 * out_elems * per_out;
    let size = inp.dtype.map(|d| d.1 as i128);
    let bytes = (|| {
        let (i, wb, o) = (inp.bytes()?, w.bytes()?, out_elems * size?);
        Some(if backward { 2 * i + 2 * wb + o } else { i + wb + o })
    })();
    (Some(if backward { 2 * fwd } else { fwd }), bytes)
}

fn attention(op: &str, x: &[Input]) -> (Option<i128>, Option<i128>) {
    let (Some(q), Some(k), Some(v)) =
        (x.first().and_then(|i| i.dims(4)), x.get(1).and_then(|i| i.dims(4)), x.get(2).and_then(|i| i.dims(4)))
    else {
        return (None, None);
    };
    // (B, H, L, D), except the flash/efficient kernels' own entry points take (B, L, H, D).
    let bld = matches!(op, "_flash_attention_forward" | "_efficient_attention_forward");
    let (b, h, lq) = if bld { (q[0], q[2], q[1]) } else { (q[0], q[1], q[2]) };
    let lk = if bld { k[1] } else { k[2] };
    let (d, dv) = (q[3], v[3]);
    let bhl = b as i128 * h as i128 * lq as i128 * lk as i128;
    let flops = 2 * bhl * d as i128 + 2 * bhl * dv as i128;
    let size = x[0].dtype.map(|d| d.1 as i128);
    let bytes = (|| {
        Some(x[0].bytes()? + x[1].bytes()? + x[2].bytes()? + b as i128 * h as i128 * lq as i128 * dv as i128 * size?)
    })();
    (Some(flops), bytes)
}

fn elementwise(x: &[Input]) -> (Option<i128>, Option<i128>) {
    let tensors: Vec<&Input> = x.iter().filter(|i| i.dtype.is_some() && i.shape.is_some()).collect();
    let Some(first) = tensors.first() else { return (None, None) };
    let shapes: Vec<&[i64]> = tensors.iter().filter_map(|t| t.shape.as_deref()).collect();
    let n: i128 = broadcast(&shapes).iter().map(|&d| d.max(0) as i128).product();
    let read: Option<i128> = tensors.iter().map(|t| t.bytes()).sum();
    (Some(n), read.map(|r| r + n * first.dtype.map_or(0, |d| d.1 as i128)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(name: &str, dims: &str, types: &str, conc: Option<&str>) -> OpCost {
        let d: Box<RawValue> = serde_json::from_str(dims).unwrap();
        let t: Box<RawValue> = serde_json::from_str(types).unwrap();
        let c: Option<Box<RawValue>> = conc.map(|c| serde_json::from_str(c).unwrap());
        op_cost(name, Some(&d), Some(&t), c.as_deref())
    }

    #[test]
    fn gemm_formulas() {
        // addmm(bias[1024], A[8944,1024], B[1024,2816]) in bf16.
        let c = cost(
            "aten::addmm",
            "[[2816], [8944, 1024], [1024, 2816], [], []]",
            r#"["c10::BFloat16", "c10::BFloat16", "c10::BFloat16", "Scalar", "Scalar"]"#,
            None,
        );
        assert_eq!(c.flops, Some(2 * 8944 * 2816 * 1024 + 8944 * 2816));
        assert_eq!(c.bytes, Some((2816 + 8944 * 1024 + 1024 * 2816 + 8944 * 2816) * 2));
        assert_eq!(c.dtype, Some("bfloat16"));
        let c = cost("aten::bmm", "[[4, 8, 16], [4, 16, 32]]", r#"["float", "float"]"#, None);
        assert_eq!(c.flops, Some(2 * 4 * 8 * 32 * 16));
        assert_eq!(c.bytes, Some((4 * 8 * 16 + 4 * 16 * 32 + 4 * 8 * 32) * 4));
        let c = cost("aten::matmul", "[[2, 3, 8, 16], [16, 32]]", r#"["float", "float"]"#, None);
        assert_eq!(c.flops, Some(2 * 6 * 8 * 32 * 16));
        let c = cost("aten::linear", "[[2, 5, 16], [32, 16], [32]]", r#"["float", "float", "float"]"#, None);
        assert_eq!(c.flops, Some(2 * 10 * 32 * 16 + 10 * 32));
        assert_eq!(c.bytes, Some((160 + 512 + 32 + 320) * 4));
    }

    #[test]
    fn conv_attention_elementwise() {
        // miopen_convolution(input, weight, bias, padding, stride, dilation, groups, ...)
        let c = cost(
            "aten::miopen_convolution",
            "[[10, 3, 224, 224], [64, 3, 7, 7], [], [], [], [], [], [], []]",
            r#"["c10::BFloat16", "c10::BFloat16", "", "ScalarList", "ScalarList", "ScalarList", "Scalar", "Scalar", "Scalar"]"#,
            Some(r#"["", "", "", "[3, 3]", "[2, 2]", "[1, 1]", "1", "False", "False"]"#),
        );
        // out = (224 + 6 - 6 - 1) / 2 + 1 = 112
        assert_eq!(c.flops, Some(2 * 10 * 64 * 112 * 112 * 3 * 7 * 7));
        assert_eq!(c.bytes, Some((10 * 3 * 224 * 224 + 64 * 3 * 49 + 10 * 64 * 112 * 112) * 2));
        let no_conc =
            cost("aten::miopen_convolution", "[[10, 3, 224, 224], [64, 3, 7, 7]]", r#"["float", "float"]"#, None);
        assert_eq!((no_conc.flops, no_conc.dtype), (None, Some("float32")));
        let a = cost(
            "aten::_flash_attention_forward",
            "[[16, 559, 16, 64], [16, 559, 16, 64], [16, 559, 16, 64]]",
            r#"["c10::BFloat16", "c10::BFloat16", "c10::BFloat16"]"#,
            None,
        );
        assert_eq!(a.flops, Some(4 * 16 * 16 * 559 * 559 * 64));
        assert_eq!(a.bytes, Some(4 * 16 * 559 * 16 * 64 * 2));
        let e = cost("aten::mul", "[[1, 559, 64], []]", r#"["float", "double"]"#, None);
        // The Python scalar is a 0-dim double: one 8-byte read.
        assert_eq!((e.flops, e.bytes), (Some(559 * 64), Some(559 * 64 * 4 * 2 + 8)));
        let e = cost("aten::add", "[[16, 559, 1], [16, 1, 4], []]", r#"["float", "float", "Scalar"]"#, None);
        assert_eq!(e.flops, Some(16 * 559 * 4));
        assert_eq!(cost("aten::unknown_op", "[[3]]", r#"["float"]"#, None).flops, None);
    }
}
