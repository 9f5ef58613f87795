/* y (M, N) = x (M, K) @ W.T + b, optional GELU, for the few rows of a decode step, fp32.
 *
 * W (N, K) is packed in panels of 8 output columns: panel p holds W[8p:8p+8, :] transposed,
 * (K, 8) contiguous, zero-padded past N (tinyreason/lm/decode_kernel.py: Panels). Rows go
 * in blocks of at most 12: a block keeps 12 x 8 accumulators in registers and reads each panel
 * once, front to back, prefetching ahead, so at 8-16 decode rows every weight is streamed from
 * memory (or L3) exactly once per call. On an AVX2 core (Zen 3) oneDNN's packed GEMM ran these
 * shapes at 2.7-4.6 GB/s of weights, this at 4.0-8.4 GB/s (benchmarks/decode_linear.py).
 * Written with GCC vector extensions (8 floats), compiled at first use with -march=native.
 * gelu: 0 none, 1 tanh approximation, 2 erf (GPT-2's "gelu_new" and "gelu").
 */
#include <math.h>
#include <stdint.h>

typedef float v8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) { v8 v; __builtin_memcpy(&v, p, sizeof v); return v; }

float gelu_tanh_scalar(float x); /* gelu.c, compiled into the same library */

static inline float act(float x, int gelu) {
    if (gelu == 1) return gelu_tanh_scalar(x);
    if (gelu == 2) return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
    return x;
}

#define PREFETCH 512 /* floats ahead in the panel (2 KiB): measured best of 0, 256, 512, 1024 */

#define BLOCK(R)                                                                 \
    static void block##R(const float *x, int64_t K, const float *w, v8 *acc) {  \
        v8 a[R];                                                                 \
        for (int r = 0; r < R; r++) a[r] = (v8){0};                              \
        for (int64_t k = 0; k < K; k++) {                                        \
            __builtin_prefetch(w + k * 8 + PREFETCH, 0, 0);                      \
            const v8 wk = load8(w + k * 8);                                      \
            for (int r = 0; r < R; r++) a[r] += x[r * K + k] * wk;               \
        }                                                                        \
        for (int r = 0; r < R; r++) acc[r] = a[r];                               \
    }
BLOCK(1) BLOCK(2) BLOCK(3) BLOCK(4) BLOCK(5) BLOCK(6) BLOCK(7) BLOCK(8) BLOCK(9) BLOCK(10) BLOCK(11) BLOCK(12)

typedef void (*block_fn)(const float *, int64_t, const float *, v8 *);
static const block_fn BLOCKS[13] = {0, block1, block2, block3, block4, block5, block6,
                                    block7, block8, block9, block10, block11, block12};

void decode_linear(const float *x, int64_t M, int64_t K, const float *panels, int64_t N,
                   const float *bias, int gelu, float *y) {
    const int64_t np = (N + 7) / 8, nb = (M + 11) / 12;  /* panels; row blocks of near-equal size */
    v8 acc[12];
    float col[8];
    for (int64_t p = 0; p < np; p++) {
        const float *w = panels + p * K * 8;
        const int64_t n0 = p * 8, nw = N - n0 < 8 ? N - n0 : 8;
        for (int64_t bi = 0; bi < nb; bi++) {
            const int64_t r0 = bi * M / nb, rows = (bi + 1) * M / nb - r0;
            BLOCKS[rows](x + r0 * K, K, w, acc);
            for (int64_t r = 0; r < rows; r++) {
                __builtin_memcpy(col, &acc[r], sizeof col);
                float *yr = y + (r0 + r) * N + n0;
                for (int64_t j = 0; j < nw; j++) yr[j] = act(col[j] + (bias ? bias[n0 + j] : 0.0f), gelu);
            }
        }
    }
}
