// The online-softmax merge shared by attention.comp and
// attention_combine.comp, for attention over a cache walked in several
// passes (backends/vulkan/vulkan_split.h): dst holds the normalized output of
// the rows seen so far and the state their (max, sum); a pass brings an
// unnormalized accumulator acc with its own (max, sum). The merged output is
//   dst * old_weight + acc * new_weight
// with the weights returned in .x and .y, and the merged (max, sum) in .z
// and .w. A side that saw no rows (sum 0, max -inf) gets weight 0.
#ifndef STRATA_ATTENTION_MERGE_GLSL
#define STRATA_ATTENTION_MERGE_GLSL

vec4 attention_merge(float old_max, float old_sum, float new_max, float new_sum)
{
    float merged_max = max(old_max, new_max);
    float old_scale = old_sum > 0.0 ? old_sum * exp(old_max - merged_max) : 0.0;
    float new_scale = new_sum > 0.0 ? exp(new_max - merged_max) : 0.0;
    float merged_sum = old_scale + new_sum * new_scale;
    float inv = merged_sum > 0.0 ? 1.0 / merged_sum : 0.0;
    return vec4(old_scale * inv, new_scale * inv, merged_max, merged_sum);
}

#endif
