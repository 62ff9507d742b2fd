# What Qwen3-VL changes in the Qwen2.5-VL run scripts' settings, for run_qwen3vl8b_srpo.sh and
# run_qwen3vl32b_srpo.sh (sourced, not run; each variable can be set from the environment).

# Qwen3-VL's vision patch is 16 pixels (Qwen2.5-VL: 14), merged 2x2 into one image token: one token per 32x32
# pixels after Qwen's resize (Qwen2.5-VL: 28x28).  The GRPO stage gets it as data.image_patch_size: verl's RL
# data config says 14 (Qwen2.5-VL's), with which its dataset resizes images to multiples of 28 before the
# processor rounds them to 32, so its length filter counts other image tokens than the rollout (which reads 16
# from the processor) and the data stage do (a 100x80 image: 12 tokens instead of 6).  The dry run checks it.
IMAGE_PATCH=${IMAGE_PATCH:-16}

# The SFT image cap re-derived for the paper's image-token budget: its 262144 pixels (paper B.3, the YAML's
# data.max_image_pixels) are at most 262144 / (28*28) = 334 Qwen2.5-VL image tokens; 334 Qwen3-VL tokens are
# 334 * 32 * 32 = 342016 pixels (the unchanged 262144 would allow Qwen3-VL only 256 tokens per image).
SFT_MAX_IMAGE_PIXELS=${SFT_MAX_IMAGE_PIXELS:-$((334 * (2 * IMAGE_PATCH) ** 2))}

# The RL stage keeps data.max_image_pixels=null as for Qwen2.5-VL: the processor's own limit, which is the same
# 16384 image tokens for both families (Qwen2.5-VL 12845056 = 16384 * 28^2, Qwen3-VL 16777216 = 16384 * 32^2).
