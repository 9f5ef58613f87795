/* One decode token through a whole GPT-2 in one call, fp32: embeddings, every block (layer norms,
 * linears on decode_linear.c's panels, shared-prefix attention with decode_attention.c, residual
 * adds), the final layer norm and the LM head. Same math, same kernels as the sampler's per-op
 * path with the C kernels (tinyreason/lm/sampler.py); what goes is the ~80 PyTorch calls per
 * token around them, whose dispatch and allocation cost was about half of a small model's decode
 * step on one core (benchmarks/decode_step.py). Compiled into the same library as those files.
 *
 * w holds 12 pointers per layer: ln_1 weight, bias; c_attn panels, bias; attn c_proj panels,
 * bias; ln_2 weight, bias; c_fc panels, bias; mlp c_proj panels, bias. kc, vc, kp, vp: one
 * pointer per layer, keys in tiles (see decode_attention). gelu: decode_linear's code for the
 * MLP activation.
 * keep (or NULL): 6 pointers per layer, then 1, to (N, tkeep, width) stores of the token's linear
 * outputs and attention results - c_attn (3C), the attention output (C) and its log-sum-exp per
 * head (H), attn c_proj (C), c_fc before its activation (F), mlp c_proj (C), then the LM head's
 * logits (V) - row a written at [rows[a], t]: the trainer's forward over the same tokens takes
 * them instead of recomputing them (tinyreason/lm/grouped.py).
 * bf16: the panels are decode_linear_bf16's (bf16 weights: each linear's input rounded to bf16,
 * fp32 accumulation) and wte holds bf16 values; everything else stays fp32 (residual stream, layer norms, attention, as
 * under bf16 autocast). Returns 1 when scratch memory cannot be had, else 0.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

void decode_linear(const float *x, int64_t M, int64_t K, const float *panels, int64_t N,
                   const float *bias, int gelu, float *y);
void decode_act(float *x, int64_t n, int gelu);
int decode_linear_bf16(const float *x, int64_t M, int64_t K, const void *panels, int64_t N, const float *bias,
                       int gelu, float *y);

/* a linear on fp32 panels, or on bf16 ones (decode_linear_bf16) when bf16; 1 when out of memory */
static int lin(int bf16, const float *x, int64_t M, int64_t K, const float *panels, int64_t N, const float *bias,
               int gelu, float *y) {
    if (bf16) return decode_linear_bf16(x, M, K, panels, N, bias, gelu, y) != 0;
    decode_linear(x, M, K, panels, N, bias, gelu, y);
    return 0;
}
int decode_attention(const float *qkv, int64_t A, int64_t H, int64_t D, float *kc, int64_t ldk, float *vc,
                     int64_t tcap, int64_t t, const float *kp, int64_t ldp, const float *vp, int64_t P,
                     const int64_t *grp, const int64_t *pstart, float scale, float *out, float *lse);

/* y (A, C) = layer norm of the rows of x (A, C): two passes (mean, then centred variance), as PyTorch */
static void layer_norm(const float *x, int64_t A, int64_t C, const float *w, const float *b, float eps, float *y) {
    for (int64_t a = 0; a < A; a++) {
        const float *xr = x + a * C;
        float *yr = y + a * C;
        float mean = 0.0f, var = 0.0f;
        for (int64_t i = 0; i < C; i++) mean += xr[i];
        mean /= (float)C;
        for (int64_t i = 0; i < C; i++) { const float d = xr[i] - mean; var += d * d; }
        const float rstd = 1.0f / sqrtf(var / (float)C + eps);
        for (int64_t i = 0; i < C; i++) yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
    }
}

/* dst[0:n] = src[0:n] with non-temporal stores where the CPU has them: the kept outputs are read
 * only by the update, after the rollout, and written through the cache they would evict the
 * weights the next tokens read (a small model's 13 MB live in L3) */
static void stream_copy(float *dst, const float *src, int64_t n) {
#if defined(__SSE2__)
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(dst + i) & 15); i++) dst[i] = src[i];
    for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
    for (; i < n; i++) dst[i] = src[i];
#else
    memcpy(dst, src, sizeof(float) * (size_t)n);
#endif
}

/* rows of y (A, w) into store (N, tkeep, w) at [rows[a], t]; nothing when store is NULL */
static void keep_rows(const float *y, int64_t A, int64_t w, float *store, const int64_t *rows, int64_t tkeep,
                      int64_t t) {
    if (!store) return;
    for (int64_t a = 0; a < A; a++) stream_copy(store + (rows[a] * tkeep + t) * w, y + a * w, w);
}

int decode_step(const int64_t *ids, const int64_t *pos, int64_t A, int64_t C, int64_t H, int64_t L, int64_t F,
                int64_t V, const float *wte, const float *wpe, const float *const *w, const float *scales,
                float eps, int gelu, float *const *kc, int64_t ldk, float *const *vc, int64_t tcap, int64_t t,
                const float *const *kp, int64_t ldp, const float *const *vp, int64_t P, const int64_t *grp,
                const int64_t *pstart, const float *lnf_w, const float *lnf_b, const float *head, float *logits,
                float *const *keep, const int64_t *rows, int64_t tkeep, int bf16) {
    const int64_t D = C / H;
    float *const none[6] = {0, 0, 0, 0, 0, 0};
    /* scratch: residual stream x, normed / projected h, attention output, q|k|v, MLP hidden, log-sum-exps */
    float *x = (float *)malloc(sizeof(float) * (size_t)(A * (3 * C + 3 * C + F + H)));
    if (!x) return 1;
    float *h = x + A * C, *att = h + A * C, *qkv = att + A * C, *f = qkv + 3 * A * C, *lse = f + A * F;
    for (int64_t a = 0; a < A; a++)
        for (int64_t i = 0; i < C; i++) {
            float e;
            if (bf16) {  /* wte holds bf16 values: the upper half of an fp32 */
                const uint32_t u = (uint32_t)((const uint16_t *)(const void *)wte)[ids[a] * C + i] << 16;
                __builtin_memcpy(&e, &u, 4);
            } else {
                e = wte[ids[a] * C + i];
            }
            x[a * C + i] = e + wpe[pos[a] * C + i];
        }
    for (int64_t l = 0; l < L; l++) {
        const float *const *p = w + 12 * l;
        float *const *k = keep ? keep + 6 * l : none;
        layer_norm(x, A, C, p[0], p[1], eps, h);
        if (lin(bf16, h, A, C, p[2], 3 * C, p[3], 0, qkv)) goto oom;  /* (A, 3C) */
        keep_rows(qkv, A, 3 * C, k[0], rows, tkeep, t);
        if (decode_attention(qkv, A, H, D, kc[l], ldk, vc[l], tcap, t, kp[l], ldp, vp[l], P, grp, pstart,
                             scales[l], att, k[1] ? lse : 0))
            goto oom;
        keep_rows(att, A, C, k[1], rows, tkeep, t);
        keep_rows(lse, A, H, k[2], rows, tkeep, t);
        if (lin(bf16, att, A, C, p[4], C, p[5], 0, h)) goto oom;
        keep_rows(h, A, C, k[3], rows, tkeep, t);
        for (int64_t i = 0; i < A * C; i++) x[i] += h[i];
        layer_norm(x, A, C, p[6], p[7], eps, h);
        /* (A, F): the pre-activation (kept where asked), then the activation in place - what the
         * linear itself does when given the activation */
        if (lin(bf16, h, A, C, p[8], F, p[9], 0, f)) goto oom;
        keep_rows(f, A, F, k[4], rows, tkeep, t);
        decode_act(f, A * F, gelu);
        if (lin(bf16, f, A, F, p[10], C, p[11], 0, h)) goto oom;
        keep_rows(h, A, C, k[5], rows, tkeep, t);
        for (int64_t i = 0; i < A * C; i++) x[i] += h[i];
    }
    layer_norm(x, A, C, lnf_w, lnf_b, eps, h);
    if (lin(bf16, h, A, C, head, V, 0, 0, logits)) goto oom;  /* (A, V) */
    if (keep) {
        keep_rows(logits, A, V, keep[6 * L], rows, tkeep, t);
#if defined(__SSE2__)
        _mm_sfence();  /* the streamed stores are ordered before what follows */
#endif
    }
    free(x);
    return 0;
oom:
    free(x);
    return 1;
}
