//! The shipped category rules (`pipelines/categories/kernels.toml`) on communication kernels of
//! the libraries in use for training and serving: every name below is the demangled form Kineto
//! records (namespaces and argument types included) of a kernel defined in the cited source file
//! (template arguments are one instantiation), and must be `communication`. Near misses (MoE
//! routing and compute kernels, split-KV combines, plain reductions) must keep their own
//! categories. pipelines/categories/README.md has the survey.
//!
//! The last test parses the 2-rank sample with its NCCL kernels renamed to another library's
//! naming: the renamed kernels are still communication and still sized (from the linked
//! `record_param_comms` op) once the NCCL-only kernel args are gone.

use std::convert::Infallible;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use tapeout_formats::kineto::{CategoryRules, KinetoBatch, kernels_schema, parse_kineto};

/// (kernel name as Kineto records it, where the name is defined).
const COMMUNICATION: &[(&str, &str)] = &[
    // NCCL >= 2.19: NVIDIA/nccl src/device/generate.py (`ncclDevKernel_{coll}_{op}_{ty}_{algo}_{proto}`).
    ("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "NVIDIA/nccl src/device/generate.py"),
    ("ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "NVIDIA/nccl src/device/generate.py"),
    ("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)", "NVIDIA/nccl src/device/generate.py"),
    ("ncclDevKernel_Generic(ncclDevKernelArgsStorage<4096ul>)", "NVIDIA/nccl src/device/common.cu"),
    // NCCL >= 2.27 symmetric-memory kernels.
    (
        "ncclSymkDevKernel_AllReduce_RSxLD_AGxST_sum_bf16(ncclSymkDevWorkArgs4K)",
        "NVIDIA/nccl src/device/symmetric/generate.py",
    ),
    // NCCL <= 2.18.
    (
        "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)",
        "NVIDIA/nccl src/collectives/device (NCCL <= 2.18)",
    ),
    // RCCL.
    ("ncclDevKernel_Generic_1(ncclDevKernelArgsDefaultStorage)", "ROCm/rccl src/device/common.cu"),
    ("ncclDevKernelDebug_Generic_4(ncclDevKernelArgsDefaultStorage)", "ROCm/rccl src/device/common.cu"),
    // MSCCL: MSCCL_KERNEL_ENTRY_NAME(devredop, type, proto, fullOps).
    (
        "mscclKernel_Sum_half_LL_false(ncclDevComm*, mscclAlgo*, mscclWork*)",
        "ROCm/rccl src/include/msccl/msccl_kernel.h",
    ),
    // MSCCL++ NCCL-API kernels take mscclpp channel handles.
    (
        "void allreduce7<(Op)0, __nv_bfloat16>(__nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, \
         mscclpp::DeviceHandle<mscclpp::MemoryChannel>*, unsigned long, unsigned long, int, int, int, \
         unsigned long, unsigned int*, unsigned int)",
        "microsoft/mscclpp apps/nccl/src/allreduce.hpp",
    ),
    (
        "void allreduceAllPairs<(Op)0, __half>(__half*, __half*, __half*, \
         mscclpp::DeviceHandle<mscclpp::MemoryChannel>*, unsigned long, unsigned long, int, int, int, \
         unsigned long, unsigned int*, unsigned int)",
        "microsoft/mscclpp apps/nccl/src/allreduce.hpp",
    ),
    // Meta NCCLX / CTran.
    (
        "void ncclKernelAllToAllvDynamic<__nv_bfloat16>(int*, CtranAlgoDeviceState*, CtranKernelAllToAllvDynamicArgs)",
        "meta-pytorch/torchcomms comms/ctran/algos/AllToAll/AllToAllvDynamic.cuh",
    ),
    // DeepEP.
    (
        "void deep_ep::intranode::notify_dispatch<8>(int const*, int*, int const*, int*, int, int, int, \
         bool const*, int*, int*, int, int, void**, int**, int, int)",
        "deepseek-ai/DeepEP csrc/kernels/intranode.cu",
    ),
    (
        "void deep_ep::intranode::dispatch<8, 768, 8192>(int4*, float*, int*, long*, float*, int*, int*, \
         int4 const*, float const*, long const*, float const*, bool const*, int const*, int, int, int, int, \
         int, void**, int, int, int)",
        "deepseek-ai/DeepEP csrc/kernels/intranode.cu",
    ),
    (
        "void deep_ep::intranode::combine<__nv_bfloat16, 8, 768>(__nv_bfloat16*, float*, __nv_bfloat16 const*, \
         float const*, int const*, int const*, int const*, int*, int, int, int, int, void**, int, int, int)",
        "deepseek-ai/DeepEP csrc/kernels/intranode.cu",
    ),
    (
        "void deep_ep::intranode::cached_notify_dispatch<8>(int const*, int, void**, int**, int, int)",
        "deepseek-ai/DeepEP csrc/kernels/intranode.cu",
    ),
    (
        "void deep_ep::internode::dispatch<false, 2, 8, 24, 8>(int4*, float*, long*, float*, void*, int4 const*, \
         float const*, long const*, float const*, int*, int*, int*, int*, int const*, int const*, int const*, \
         int const*, bool const*, int, int, int, int, int, void*, int, int, void**, int, int, int, int)",
        "deepseek-ai/DeepEP csrc/kernels/internode.cu",
    ),
    (
        "void deep_ep::internode::cached_notify(int, int, int, int, int, int, int, int*, int const*, int const*, \
         int*, void*, int, void**, int, int**, int, long, long, bool)",
        "deepseek-ai/DeepEP csrc/kernels/internode.cu",
    ),
    (
        "void deep_ep::internode_ll::dispatch<true, 3, 7168>(void*, float*, int*, long*, int*, int*, long*, \
         void*, int*, void*, void const*, long const*, int*, int*, int, int, int, int, int, int, int, int, bool, bool)",
        "deepseek-ai/DeepEP csrc/kernels/internode_ll.cu",
    ),
    (
        "void deep_ep::internode_ll::combine<false, 3, 7168, 9>(void*, void*, int*, void*, void const*, \
         long const*, float const*, int const*, long const*, long*, int*, int*, int, int, int, int, int, int, \
         int, int, int, bool)",
        "deepseek-ai/DeepEP csrc/kernels/internode_ll.cu",
    ),
    (
        "void deep_ep::internode_ll::clean_low_latency_buffer<32>(int*, int, int*, int)",
        "deepseek-ai/DeepEP csrc/kernels/internode_ll.cu",
    ),
    // UCCL-EP (a DeepEP port).
    (
        "void uccl::intranode::notify_dispatch<8>(int const*, int*, int const*, int*, int, int, int, bool const*, \
         int*, int*, int, int, void**, int**, int)",
        "uccl-project/uccl ep/include/intranode.cuh",
    ),
    (
        "void uccl::internode_ll::dispatch<true, 3, 7168>(void*, float*, int*, long*, int*, int*, long*, void*)",
        "uccl-project/uccl ep/include/internode_ll.cuh",
    ),
    // MORI-EP (AMD).
    (
        "void mori::moe::EpDispatchInterNodeNormalKernel<__hip_bfloat16>\
         (mori::moe::EpDispatchCombineArgs<__hip_bfloat16>)",
        "ROCm/mori src/ops/dispatch_combine/internode_normal.hpp",
    ),
    (
        "void mori::moe::EpDispatchIntraNodeKernel<__hip_bfloat16>(mori::moe::EpDispatchCombineArgs<__hip_bfloat16>)",
        "ROCm/mori src/ops/dispatch_combine/ (intra-node kernels)",
    ),
    (
        "void mori::moe::EpCombineIntraNodeKernel<__hip_bfloat16, \
         true>(mori::moe::EpDispatchCombineArgs<__hip_bfloat16>)",
        "ROCm/mori src/ops/dispatch_combine/ (intra-node kernels)",
    ),
    (
        "void mori::moe::EpCombineInterNodeKernel<float>(mori::moe::EpDispatchCombineArgs<float>)",
        "ROCm/mori src/ops/dispatch_combine/ (inter-node kernels)",
    ),
    // pplx-kernels: `dispatchKernel<NUM_WARPS, DO_SEND, DO_RECV>` (anonymous namespace),
    // `combineKernel<T, U, NUM_WARPS, DO_SEND, DO_RECV>`.
    (
        "void (anonymous namespace)::dispatchKernel<10u, true, false>(int*, unsigned long, std::byte*, \
         unsigned long, unsigned long, float*, unsigned long, unsigned long, unsigned long, std::byte*)",
        "ppl-ai/pplx-kernels csrc/all_to_all/internode_dispatch.cu",
    ),
    (
        "void (anonymous namespace)::dispatchKernel<16u, false, true>(int*, unsigned long, std::byte*)",
        "ppl-ai/pplx-kernels csrc/all_to_all/intranode_dispatch.cu",
    ),
    (
        "void combineKernel<__nv_bfloat16, __nv_bfloat16, 8ul, true, true>(__nv_bfloat16*, unsigned long, \
         unsigned int*, unsigned long, unsigned long, float*, unsigned long, unsigned long, __nv_bfloat16*)",
        "ppl-ai/pplx-kernels csrc/all_to_all/internode_combine.cu",
    ),
    // TensorRT-LLM.
    (
        "void tensorrt_llm::kernels::oneShotAllReduceKernel<__nv_bfloat16, 8, \
         false>(tensorrt_llm::kernels::AllReduceParams)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/customAllReduceKernels.cu",
    ),
    (
        "void tensorrt_llm::kernels::twoShotAllReduceKernel<half, 4, true>(tensorrt_llm::kernels::AllReduceParams)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/customAllReduceKernels.cu",
    ),
    (
        "void tensorrt_llm::kernels::ar_fusion::allreduce_fusion_kernel_oneshot_lamport<\
         (tensorrt_llm::kernels::ar_fusion::AllReduceFusionPattern)1, __nv_bfloat16, 8, false, true>\
         (tensorrt_llm::kernels::ar_fusion::AllReduceFusionParams)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/communicationKernels/allReduceFusionKernels.cu",
    ),
    (
        "void tensorrt_llm::kernels::ar_fusion::allreduce_fusion_kernel_twoshot_sync<\
         (tensorrt_llm::kernels::ar_fusion::AllReduceFusionPattern)1, __nv_bfloat16, 4, false>\
         (tensorrt_llm::kernels::ar_fusion::AllReduceFusionParams, std::array<int, 4ul>, std::array<int, 4ul>)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/communicationKernels/allReduceFusionKernels.cu",
    ),
    (
        "tensorrt_llm::kernels::ar_fusion::lamport_initialize_kernel(float*, int)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/communicationKernels/allReduceWorkspace.cu",
    ),
    (
        "tensorrt_llm::kernels::moe_a2a::moeA2ADispatchKernel(int const*, \
         tensorrt_llm::kernels::moe_a2a::DispatchKernelPointers, int, int)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/communicationKernels/moeAlltoAllKernels.cu",
    ),
    (
        "tensorrt_llm::kernels::moe_a2a::moeA2APrepareDispatchKernel(int*, int*, int, unsigned int*)",
        "NVIDIA/TensorRT-LLM cpp/tensorrt_llm/kernels/communicationKernels/moeAlltoAllKernels.cu",
    ),
    // vLLM, SGLang custom all-reduce.
    (
        "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>(vllm::RankData*, vllm::RankSignals, \
         vllm::Signal*, __nv_bfloat16*, int, int)",
        "vllm-project/vllm csrc/custom_all_reduce.cuh",
    ),
    (
        "void vllm::cross_device_reduce_2stage<c10::Half, 4>(vllm::RankData*, vllm::RankSignals, vllm::Signal*, \
         c10::Half*, int, int)",
        "vllm-project/vllm csrc/custom_all_reduce.cuh",
    ),
    (
        "void vllm::cross_device_reduce_half_butterfly<float, 4>(vllm::RankData*, vllm::RankSignals, \
         vllm::Metadata volatile*, float*, int, int)",
        "vllm-project/vllm csrc/custom_all_reduce.cuh",
    ),
    (
        "void sglang::cross_device_reduce_1stage<__half, 8>(sglang::RankData*, sglang::RankSignals, \
         sglang::Signal*, __half*, int, int)",
        "sgl-project/sglang sgl-kernel/csrc/allreduce/custom_all_reduce.cuh",
    ),
    (
        "void sglang::allreduce_1shotLL_1node<__nv_bfloat16>(mscclpp::MemoryChannelDeviceHandle*, \
         __nv_bfloat16*, __nv_bfloat16*, void*, int, int, unsigned long)",
        "sgl-project/sglang sgl-kernel/csrc/allreduce/mscclpp_allreduce.cuh",
    ),
    // PyTorch symmetric memory.
    (
        "void c10d::symmetric_memory::(anonymous namespace)::one_shot_all_reduce_kernel<c10::BFloat16, 16, 8>\
         (c10::BFloat16**, c10::BFloat16*, c10::BFloat16*, unsigned long, unsigned long, unsigned int**, \
         unsigned long, unsigned long)",
        "pytorch/pytorch torch/csrc/distributed/c10d/symm_mem/CUDASymmetricMemoryOps.cu",
    ),
    (
        "void c10d::symmetric_memory::(anonymous namespace)::two_shot_all_reduce_kernel<float, 16, 4, false, false>\
         (float**, float*, unsigned long, unsigned long, unsigned int**, unsigned long, unsigned long, unsigned long)",
        "pytorch/pytorch torch/csrc/distributed/c10d/symm_mem/CUDASymmetricMemoryOps.cu",
    ),
    (
        "void c10d::symmetric_memory::(anonymous namespace)::multimem_all_reduce_kernel<c10::BFloat16, 16>\
         (c10::BFloat16*, unsigned long, unsigned int**, unsigned long, unsigned long)",
        "pytorch/pytorch torch/csrc/distributed/c10d/symm_mem/CUDASymmetricMemoryOps.cu",
    ),
    (
        "void c10d::symmetric_memory::(anonymous namespace)::multimem_all_gather_kernel<16>(char*, char*, \
         unsigned long, unsigned int**, unsigned long, unsigned long)",
        "pytorch/pytorch torch/csrc/distributed/c10d/symm_mem/CUDASymmetricMemoryOps.cu",
    ),
    (
        "c10d::nvshmem_extension::allToAllV(void*, void*, long*, long*, long, int, int)",
        "pytorch/pytorch torch/csrc/distributed/c10d/symm_mem/nvshmem_extension.cu",
    ),
    // Transformer Engine userbuffers.
    (
        "void userbuffers_fp16_sum_inplace_gpu_rr_rs<8>(int, int, int, int, int, int, int, void**, int, unsigned long)",
        "NVIDIA/TransformerEngine transformer_engine/common/comm_gemm_overlap/userbuffers/userbuffers.cu",
    ),
    (
        "kuserbuffers_pullsend(int, int, int*, int*)",
        "NVIDIA/TransformerEngine transformer_engine/common/comm_gemm_overlap/userbuffers/userbuffers.cu",
    ),
    // NVSHMEM on-stream collectives.
    (
        "void alltoall_on_stream_kernel<float>(int, float*, float const*, unsigned long, int)",
        "NVIDIA/nvshmem src/host/stream/coll/alltoall/alltoall.cu",
    ),
    (
        "void barrier_on_stream_kernel_threadgroup<(threadgroup_t)1>(int, int)",
        "NVIDIA/nvshmem src/host/stream/coll/barrier/barrier.cu",
    ),
    (
        "void sync_on_stream_kernel_threadgroup<(threadgroup_t)0>(int, int)",
        "NVIDIA/nvshmem src/host/stream/coll/barrier/barrier.cu",
    ),
];

/// Near misses: names with `dispatch`, `combine`, `reduce`, `moe`, `gather`, ... that are not
/// communication, with the category they must keep.
const NOT_COMMUNICATION: &[(&str, &str)] = &[
    // MoE routing and expert compute.
    ("fused_moe_kernel", "gemm"),
    ("void vllm::moe::moe_align_block_size_kernel<int>(int const*, int*, int*, int*, int, int, int, int)", "other"),
    (
        "void vllm::moe::topkGatingSoftmax<4, 128, 4, 16>(float const*, bool const*, float*, int, int*, int*, \
         int, int)",
        "reduction",
    ),
    ("void vllm::moe::count_and_sort_expert_tokens_kernel<int>(int const*, int*, int*, unsigned long)", "reduction"),
    ("void vllm::moe::moe_sum_kernel<c10::BFloat16, 8>(c10::BFloat16*, c10::BFloat16 const*, int)", "reduction"),
    (
        "void moe_permute_kernel<__nv_bfloat16>(__nv_bfloat16 const*, __nv_bfloat16*, int const*, int, int)",
        "elementwise",
    ),
    // DeepEP's layout kernel counts tokens; it moves nothing.
    (
        "void deep_ep::layout::get_dispatch_layout<256, 32, 8>(long const*, int*, int*, int*, bool*, int, int, \
         int, int)",
        "reduction",
    ),
    (
        "void deep_ep::internode::get_dispatch_layout<256, 32, 8>(long const*, int*, int*, int*, bool*, int, \
         int, int, int)",
        "reduction",
    ),
    // A gate kernel whose name starts like TensorRT-LLM's all-to-all.
    ("void MoeA2AGateKernel<256, 8, 4, 128, 4>(float*, int*, float const*, int, int)", "other"),
    // Split-KV attention combines, dispatch-named GEMM kernels.
    (
        "void flash::flash_fwd_splitkv_combine_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, false, \
         cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t>>, 64, 5, false, true, true>\
         (flash::Flash_fwd_params)",
        "attention",
    ),
    ("void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8>(Params)", "gemm"),
    // Plain reductions and gathers on one GPU.
    (
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::func_wrapper_t<float>>>",
        "reduction",
    ),
    (
        "void at::native::(anonymous namespace)::indexSelectLargeIndex<c10::BFloat16, long, unsigned int, 2, 2, \
         -2, true>",
        "embedding",
    ),
    (
        "void at::native::_scatter_gather_elementwise_kernel<128, 8>(int, \
         at::native::_cuda_scatter_gather_internal_kernel)",
        "embedding",
    ),
    (
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, at::native::Epilogue>",
        "reduction",
    ),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>, std::array<char*, 3ul>>",
        "elementwise",
    ),
    ("void topk_softmax<float>(float const*, bool const*, float*, int*, int*, int, int, int)", "reduction"),
    (
        "void cub::DeviceRadixSortOnesweepKernel<cub::DeviceRadixSortPolicy<long, long, unsigned int>::Policy900>",
        "reduction",
    ),
];

#[test]
fn every_surveyed_library_kernel_is_communication() {
    let rules = CategoryRules::default();
    let wrong: Vec<String> = COMMUNICATION
        .iter()
        .filter(|(name, _)| rules.categorize(name) != "communication")
        .map(|(name, src)| format!("{src}: `{name}` is `{}`", rules.categorize(name)))
        .collect();
    assert!(wrong.is_empty(), "not communication:\n{}", wrong.join("\n"));
}

#[test]
fn near_misses_keep_their_categories() {
    let rules = CategoryRules::default();
    let wrong: Vec<String> = NOT_COMMUNICATION
        .iter()
        .filter(|(name, want)| rules.categorize(name) != *want)
        .map(|(name, want)| format!("`{name}`: want `{want}`, got `{}`", rules.categorize(name)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The demangled name of vLLM's one-stage custom all-reduce for 2 ranks of bf16, the form the
/// renamed sample uses.
const VLLM_AR_2RANK: &str = "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 2>(vllm::RankData*, \
                             vllm::RankSignals, vllm::Signal*, __nv_bfloat16*, int, int)";

/// The kernel args Kineto writes on NCCL kernels only (PyTorch's c10d collective metadata).
const NCCL_KERNEL_ARGS: &[&str] = &[
    "Collective name",
    "In msg nelems",
    "Out msg nelems",
    "Group size",
    "dtype",
    "In split size",
    "Out split size",
    "Process Group Name",
    "Process Group Description",
    "Process Group Ranks",
];

fn kernels_of(doc: &[u8]) -> RecordBatch {
    let mut parts = Vec::new();
    parse_kineto(doc, "rank0.json", &CategoryRules::default(), 4096, &mut |b| {
        if let KinetoBatch::Kernels(k) = b {
            parts.push(k);
        }
        Ok::<(), Infallible>(())
    })
    .unwrap();
    arrow::compute::concat_batches(&kernels_schema(), &parts).unwrap()
}

/// (category, collective, in_msg_bytes, group_size, dur_ns) of one GPU activity.
type Row = (String, Option<String>, Option<i64>, Option<i64>, i64);

/// Every GPU activity's [`Row`], in file order.
fn rows(k: &RecordBatch) -> Vec<Row> {
    let s = |c: &str| k.column_by_name(c).unwrap().as_string::<i32>().clone();
    let (category, collective) = (s("category"), s("collective"));
    let bytes = k.column_by_name("in_msg_bytes").unwrap().as_primitive::<Int64Type>().clone();
    let group = arrow::compute::cast(k.column_by_name("group_size").unwrap(), &arrow::datatypes::DataType::Int64)
        .unwrap()
        .as_primitive::<Int64Type>()
        .clone();
    let dur = k.column_by_name("dur_ns").unwrap().as_primitive::<Int64Type>().clone();
    (0..k.num_rows())
        .map(|i| {
            (
                category.value(i).to_string(),
                collective.is_valid(i).then(|| collective.value(i).to_string()),
                bytes.is_valid(i).then(|| bytes.value(i)),
                group.is_valid(i).then(|| group.value(i)),
                dur.value(i),
            )
        })
        .collect()
}

#[test]
fn renamed_sample_collectives_stay_communication_and_sized() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-traces/kineto/train_2rank/rank0.json");
    let original = std::fs::read(path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let mut renamed = 0;
    for e in doc["traceEvents"].as_array_mut().unwrap() {
        if e["cat"] == "kernel" && e["name"].as_str().is_some_and(|n| n.starts_with("nccl")) {
            e["name"] = VLLM_AR_2RANK.into();
            let args = e["args"].as_object_mut().unwrap();
            for k in NCCL_KERNEL_ARGS {
                args.remove(*k);
            }
            renamed += 1;
        }
    }
    assert_eq!(renamed, 6);
    let before = rows(&kernels_of(&original));
    let after = rows(&kernels_of(&serde_json::to_vec(&doc).unwrap()));
    assert_eq!(before.len(), after.len());
    let comm: Vec<_> = after.iter().filter(|r| r.0 == "communication").collect();
    assert_eq!(comm.len(), 6);
    // Same categories, durations and sizes: the sizes now come from `record_param_comms`.
    assert_eq!(before, after);
    assert!(comm.iter().all(|r| r.1.as_deref() == Some("allreduce") && r.2.is_some_and(|b| b > 0) && r.3 == Some(2)));
}
