// The expert table of OP_MATMUL_ID (shaders/moe_group.comp) as matmul.comp
// and matmul_tiled.comp read it when built with MATMUL_ID: binding 3 (the
// low-bit tables move to binding 4), and how a workgroup finds its expert.
// Include before dequant.glsl, after matmul_params.glsl.
layout(set = 0, binding = 3) readonly buffer ExpertTable { uint expert_table[]; };
#define LOWBIT_TABLES_BINDING 4

// The index, among the experts bound in binding 0, of the nth one that has
// pairs; p.expert_count when fewer have. z counts (nth expert, group of its
// pairs) for only as many experts as the pass has pairs, so at decode about
// k workgroups per row run, not one per expert.
uint matmul_id_nth_expert(uint nth)
{
    uint seen = 0u;
    for (uint e = 0u; e < p.expert_count; e++)
        if (expert_table[p.expert_begin + e] != 0u) {
            if (seen == nth)
                return e;
            seen++;
        }
    return p.expert_count;
}

// Pair t * k + j of the table: the x column it reads.
uint matmul_id_input_column(uint pair)
{
    return p.input_per_slot != 0u ? pair : pair / p.n_used;
}
