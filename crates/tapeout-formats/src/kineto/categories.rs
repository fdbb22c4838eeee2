//! Kernel categories from data (`pipelines/categories/kernels.toml`), HTA's kernel type, memcpy
//! directions and NCCL kernel-name parsing.

use regex::RegexSet;
use serde::Deserialize;

/// The rules file shipped with tapeout, embedded at build time.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../../../pipelines/categories/kernels.toml");

/// Category of a kernel no rule matches.
pub const OTHER: &str = "other";

/// Why a rules file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    #[error("kernel category rules: {0}")]
    Toml(String),
    #[error("kernel category rule {index} (`{category}`): bad pattern: {message}")]
    Pattern { index: usize, category: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    category: String,
    pattern: String,
}

/// An ordered list of (category, case-insensitive regex) rules; the first match wins.
#[derive(Debug, Clone)]
pub struct CategoryRules {
    categories: Vec<String>,
    set: RegexSet,
}

impl CategoryRules {
    /// Parses `[[rule]] category = "…" pattern = '…'` entries.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError::Toml(e.to_string()))?;
        // Compile one at a time first so an error names its rule.
        for (i, r) in file.rule.iter().enumerate() {
            regex::RegexBuilder::new(&r.pattern).case_insensitive(true).build().map_err(|e| RulesError::Pattern {
                index: i + 1,
                category: r.category.clone(),
                message: e.to_string(),
            })?;
        }
        let set = regex::RegexSetBuilder::new(file.rule.iter().map(|r| &r.pattern))
            .case_insensitive(true)
            .build()
            .map_err(|e| RulesError::Toml(e.to_string()))?;
        Ok(CategoryRules { categories: file.rule.into_iter().map(|r| r.category).collect(), set })
    }

    /// The category of a kernel name: the first matching rule's, else [`OTHER`].
    pub fn categorize(&self, kernel_name: &str) -> &str {
        self.set.matches(kernel_name).iter().next().map_or(OTHER, |i| &self.categories[i])
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.categories.len()
    }

    /// True when there are no rules (everything is `other`).
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty()
    }
}

impl Default for CategoryRules {
    /// The shipped rules ([`DEFAULT_RULES_TOML`]).
    fn default() -> Self {
        CategoryRules::from_toml(DEFAULT_RULES_TOML).expect("shipped kernels.toml is valid")
    }
}

/// What kind of GPU activity an event is, from its `cat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    Kernel,
    Memcpy,
    Memset,
    /// CUPTI synchronization records (`cuda_sync`: Stream Sync, Context Sync, Event Sync, Stream
    /// Wait Event): time the GPU timeline spent waiting, which HTA counts among GPU events.
    Sync,
}

impl Activity {
    /// `kernel`/`gpu_memcpy`/`gpu_memset`/`cuda_sync` and the 2021 `Kernel`/`Memcpy`/`Memset`.
    pub fn from_cat(cat: &str) -> Option<Activity> {
        match cat {
            "kernel" | "Kernel" => Some(Activity::Kernel),
            "gpu_memcpy" | "Memcpy" => Some(Activity::Memcpy),
            "gpu_memset" | "Memset" => Some(Activity::Memset),
            "cuda_sync" => Some(Activity::Sync),
            _ => None,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Activity::Kernel => "kernel",
            Activity::Memcpy => "memcpy",
            Activity::Memset => "memset",
            Activity::Sync => "sync",
        }
    }
}

/// HTA's kernel type, exactly as `hta.utils.utils.get_kernel_type` (HTA 0.5): `COMMUNICATION`
/// for `^nccl.*Kernel` (so `ncclDevKernel_*` too), `MEMORY` for names starting `Memcpy`, `Memset`
/// or `dma`, `OTHER` for other names containing `Memcpy` or `Sync`, else `COMPUTATION`.
pub fn hta_kernel_type(name: &str) -> &'static str {
    // HTA 0.5 hta/utils/utils.py, with Python's `re.match` (anchored at the start):
    // COMMUNICATION `^nccl.*Kernel`; MEMORY `(^Memcpy)|(^Memset)|(^dma)`; COMPUTATION unless
    // `(^nccl.*Kernel)|(.*(Memcpy)|(Memset))|(.*Sync)` matches; else OTHER.
    let nccl_kernel = name.strip_prefix("nccl").is_some_and(|rest| rest.contains("Kernel"));
    if nccl_kernel {
        "COMMUNICATION"
    } else if name.starts_with("Memcpy") || name.starts_with("Memset") || name.starts_with("dma") {
        "MEMORY"
    } else if name.contains("Memcpy") || name.starts_with("Memset") || name.contains("Sync") {
        "OTHER"
    } else {
        "COMPUTATION"
    }
}

/// The direction of a copy from its name (`Memcpy HtoD (Pageable -> Device)` → `HtoD`), else from
/// ROCm's `args.kind` (`DtoD`).
pub fn memcpy_direction<'n>(name: &'n str, kind: Option<&'n str>) -> Option<&'n str> {
    let from_name = name.strip_prefix("Memcpy ").and_then(|r| r.split([' ', '(']).next()).filter(|d| !d.is_empty());
    from_name.or(kind.filter(|k| k.contains("to")))
}

/// The category of a copy or memset: `memcpy_htod`, `memcpy_dtoh`, `memcpy_dtod`, `memcpy_other`
/// (HtoH, PtoP, unknown), `memset`.
pub fn memory_category(activity: Activity, direction: Option<&str>) -> &'static str {
    match (activity, direction) {
        (Activity::Memset, _) => "memset",
        (_, Some(d)) if d.eq_ignore_ascii_case("HtoD") => "memcpy_htod",
        (_, Some(d)) if d.eq_ignore_ascii_case("DtoH") => "memcpy_dtoh",
        (_, Some(d)) if d.eq_ignore_ascii_case("DtoD") => "memcpy_dtod",
        _ => "memcpy_other",
    }
}

/// What an NCCL/RCCL kernel name says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NcclKernelName<'n> {
    /// `AllReduce`, `SendRecv`, `AllGather`, `Generic`, ...
    pub collective: Option<&'n str>,
    /// `RING`, `TREE`, `NVLS`, `NVLSTREE`, `COLLNET_DIRECT`, `COLLNET_CHAIN`, `PAT`.
    pub algorithm: Option<String>,
    /// `LL`, `LL128`, `SIMPLE`.
    pub protocol: Option<&'n str>,
}

/// Parses `ncclKernel_AllReduce_RING_LL_Sum_float(...)` (NCCL ≤ 2.18) and
/// `ncclDevKernel_AllReduce_Sum_f32_RING_LL(...)` (NCCL ≥ 2.19); `None` for other names.
pub fn parse_nccl_kernel_name(name: &str) -> Option<NcclKernelName<'_>> {
    let base = name.split('(').next().unwrap_or(name);
    let base = base.rsplit(' ').next().unwrap_or(base);
    let rest = ["ncclKernel_", "ncclDevKernel_", "rcclKernel_", "ncclDevFunc_"]
        .iter()
        .find_map(|p| base.find(p).map(|i| &base[i + p.len()..]))?;
    let tokens: Vec<&str> = rest.split('_').filter(|t| !t.is_empty()).collect();
    let mut out = NcclKernelName { collective: tokens.first().copied(), ..Default::default() };
    let mut i = 1;
    while i < tokens.len() {
        let t = tokens[i];
        match t {
            "RING" | "TREE" | "NVLS" | "NVLSTREE" | "PAT" if out.algorithm.is_none() => out.algorithm = Some(t.into()),
            // `COLLNET_DIRECT` / `COLLNET_CHAIN` span two tokens.
            "COLLNET" if out.algorithm.is_none() => {
                out.algorithm = Some(match tokens.get(i + 1) {
                    Some(&n @ ("DIRECT" | "CHAIN")) => {
                        i += 1;
                        format!("COLLNET_{n}")
                    }
                    _ => "COLLNET".into(),
                })
            }
            "LL" | "LL128" | "SIMPLE" if out.protocol.is_none() => out.protocol = Some(t),
            _ => {}
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_categorize_known_families() {
        let r = CategoryRules::default();
        let cases = [
            ("ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)", "communication"),
            ("ncclDevKernel_Generic(ncclDevKernelArgsStorage<4096ul>)", "communication"),
            ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "gemm"),
            ("Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT128x256x32", "gemm"),
            ("void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_256x64_16x4_tn_align1>(x)", "gemm"),
            ("void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64>>", "attention"),
            ("void implicit_convolve_sgemm<float, float, 1024, 6, 7, 3, 3, 5, 1, false, true, true>", "conv"),
            ("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw", "conv"),
            ("void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>", "elementwise"),
            ("void cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, 512, true, 1>", "reduction"),
            ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>", "reduction"),
            ("void split_embedding_codegen_forward_unweighted_kernel<c10::Half>(fbgemm_gpu::x)", "embedding"),
            ("void vllm::rotary_embedding_kernel<c10::BFloat16, true>", "elementwise"),
            (
                "std::enable_if<vllm::_typeConvert<c10::BFloat16>::exists, void>::type vllm::fused_add_rms_norm_kernel",
                "reduction",
            ),
            ("triton__0d1d2d3d", "other"),
        ];
        for (name, want) in cases {
            assert_eq!(r.categorize(name), want, "{name}");
        }
    }

    #[test]
    fn rules_file_errors_and_order() {
        let r = CategoryRules::from_toml("[[rule]]\ncategory='a'\npattern='X'\n[[rule]]\ncategory='b'\npattern='x'")
            .unwrap();
        assert_eq!(r.categorize("..x.."), "a");
        assert_eq!(r.len(), 2);
        assert!(matches!(
            CategoryRules::from_toml("[[rule]]\ncategory='a'\npattern='('"),
            Err(RulesError::Pattern { index: 1, .. })
        ));
        assert!(matches!(CategoryRules::from_toml("[[rule]]\ncategory='a'"), Err(RulesError::Toml(_))));
        assert!(CategoryRules::from_toml("").unwrap().is_empty());
    }

    #[test]
    fn hta_types_and_directions() {
        assert_eq!(hta_kernel_type("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(x)"), "COMMUNICATION");
        assert_eq!(hta_kernel_type("ncclDevKernel_Generic(x)"), "COMMUNICATION");
        assert_eq!(hta_kernel_type("dma copy"), "MEMORY");
        assert_eq!(hta_kernel_type("Context Sync"), "OTHER");
        assert_eq!(hta_kernel_type("void at::native::memcpy_kernel"), "COMPUTATION");
        assert_eq!(hta_kernel_type("rcclKernel_x"), "COMPUTATION");
        assert_eq!(hta_kernel_type("Memcpy DtoD (Device -> Device)"), "MEMORY");
        assert_eq!(hta_kernel_type("Memset (Device)"), "MEMORY");
        assert_eq!(memcpy_direction("Memcpy HtoD (Pageable -> Device)", None), Some("HtoD"));
        assert_eq!(memcpy_direction("hipMemcpyWithStream", Some("DtoH")), Some("DtoH"));
        assert_eq!(memory_category(Activity::Memcpy, Some("PtoP")), "memcpy_other");
        assert_eq!(memory_category(Activity::Memcpy, Some("DtoH")), "memcpy_dtoh");
    }

    #[test]
    fn nccl_names() {
        let old =
            parse_nccl_kernel_name("ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long)").unwrap();
        assert_eq!(
            (old.collective, old.algorithm.as_deref(), old.protocol),
            (Some("AllReduce"), Some("RING"), Some("LL"))
        );
        let new = parse_nccl_kernel_name("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)")
            .unwrap();
        assert_eq!(
            (new.collective, new.algorithm.as_deref(), new.protocol),
            (Some("AllReduce"), Some("RING"), Some("LL"))
        );
        let cn = parse_nccl_kernel_name("ncclDevKernel_AllReduce_Sum_bf16_COLLNET_DIRECT_SIMPLE(x)").unwrap();
        assert_eq!((cn.algorithm.as_deref(), cn.protocol), (Some("COLLNET_DIRECT"), Some("SIMPLE")));
        let g = parse_nccl_kernel_name("ncclDevKernel_Generic(ncclDevKernelArgsStorage<4096ul>)").unwrap();
        assert_eq!((g.collective, g.algorithm, g.protocol), (Some("Generic"), None, None));
        assert_eq!(parse_nccl_kernel_name("void at::native::reduce_kernel<512>"), None);
    }
}
