/* y (M, N) = x (M, K) @ W.T + b, optional GELU, for the few rows of a decode step, fp32.
 *
 * W (N, K) is packed in panels of PW output columns (PW = 16 where the compiler targets AVX-512,
 * 8 for AVX, else 4; decode_panel_width() tells tinyreason/kernels/_cext.py's Panels): panel p holds
 * W[PW*p : PW*p + PW, :] transposed, (K, PW) contiguous, zero-padded past N. Rows go in blocks of
 * at most 12: a block keeps 12 x PW accumulators in registers and reads each panel once, front to
 * back, prefetching ahead, so at 8-16 decode rows every weight is streamed from memory (or L3)
 * exactly once per call; 16-column panels' 512-bit loads and FMAs need half the instructions per
 * weight of 8-column ones. For AVX2, 16-column panels in blocks of 6 rows were measured and not
 * adopted: faster with weights in L1, slower in model order, where weights stream from L3 or
 * memory (benchmarks/decode_linear.py; figures in docs/benchmarks.md, "Kernels").
 * Written with GCC vector extensions, compiled at first use with -march=native.
 * gelu: 0 none, 1 tanh approximation, 2 erf (GPT-2's "gelu_new" and "gelu").
 */
#include <math.h>
#include <stdint.h>

#if defined(__AVX512F__)
#define PW 16
#elif defined(__AVX__)
#define PW 8
#else
#define PW 4 /* 128-bit vectors (SSE, NEON): 8-float vectors there are split, and 12 x 2 accumulators spill */
#endif
typedef float vec __attribute__((vector_size(PW * 4)));

static inline vec loadv(const float *p) { vec v; __builtin_memcpy(&v, p, sizeof v); return v; }

void gelu_tanh(const float *x, int64_t n, float *y); /* gelu.c, compiled into the same library */

int64_t decode_panel_width(void) { return PW; }

/* x (n,) = act(x) in place: gelu 1 with gelu.c's vectorized loop, 2 with erff, 0 nothing. Run over a
 * whole output after its GEMM, not per element in the epilogue: a call per element to gelu.c's
 * function computed one scalar expf at a time (c_fc with its tanh-GELU then took as long as the
 * other three block linears together in the small model's decode step) */
void decode_act(float *x, int64_t n, int gelu) {
    if (gelu == 1) gelu_tanh(x, n, x);
    if (gelu == 2)
        for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

/* yr[j] = col[j] + bias[j] for the nw columns of one row's panel (bias may be NULL) */
static inline void finish(const float *col, int64_t nw, const float *bias, float *yr) {
    for (int64_t j = 0; j < nw; j++) yr[j] = col[j] + (bias ? bias[j] : 0.0f);
}

#define PREFETCH (64 * PW) /* floats ahead in the panel (2 KiB at PW 8: the best of 0, 256, 512, 1024 measured) */

#define BLOCK(R)                                                                  \
    static void block##R(const float *x, int64_t K, const float *w, vec *acc) {  \
        vec a[R];                                                                 \
        for (int r = 0; r < R; r++) a[r] = (vec){0};                              \
        for (int64_t k = 0; k < K; k++) {                                         \
            __builtin_prefetch(w + k * PW + PREFETCH, 0, 0);                      \
            const vec wk = loadv(w + k * PW);                                     \
            for (int r = 0; r < R; r++) a[r] += x[r * K + k] * wk;                \
        }                                                                         \
        for (int r = 0; r < R; r++) acc[r] = a[r];                                \
    }
BLOCK(1) BLOCK(2) BLOCK(3) BLOCK(4) BLOCK(5) BLOCK(6) BLOCK(7) BLOCK(8) BLOCK(9) BLOCK(10) BLOCK(11) BLOCK(12)

typedef void (*block_fn)(const float *, int64_t, const float *, vec *);
static const block_fn BLOCKS[13] = {0, block1, block2, block3, block4, block5, block6,
                                    block7, block8, block9, block10, block11, block12};

void decode_linear(const float *x, int64_t M, int64_t K, const float *panels, int64_t N,
                   const float *bias, int gelu, float *y) {
    const int64_t np = (N + PW - 1) / PW, nb = (M + 11) / 12;  /* panels; row blocks of near-equal size */
    vec acc[12];
    float col[PW];
    for (int64_t p = 0; p < np; p++) {
        const float *w = panels + p * K * PW;
        const int64_t n0 = p * PW, nw = N - n0 < PW ? N - n0 : PW;
        for (int64_t bi = 0; bi < nb; bi++) {
            const int64_t r0 = bi * M / nb, rows = (bi + 1) * M / nb - r0;
            BLOCKS[rows](x + r0 * K, K, w, acc);
            for (int64_t r = 0; r < rows; r++) {
                float *yr = y + (r0 + r) * N + n0;
                if (nw == PW) {  /* whole panel: one vector store (via col, GCC's x86-64-v3 code wrote */
                    vec v = acc[r];  /* 16-byte pieces and reloaded them as one 32-byte load: a stall) */
                    if (bias) v += loadv(bias + n0);
                    __builtin_memcpy(yr, &v, sizeof v);
                } else {
                    __builtin_memcpy(col, &acc[r], sizeof col);
                    finish(col, nw, bias ? bias + n0 : 0, yr);
                }
            }
        }
    }
    decode_act(y, M * N, gelu);
}

/* The same for bf16 weights on CPUs with AVX512-BF16 (vdpbf16ps: 16 fp32 lanes, each += the
 * products of two bf16 pairs): panels of 16 columns hold (K/2, 16, 2) bf16, panel p, pair kk,
 * column j, element e = W[16p + j, 2kk + e] (K even); x is rounded to bf16 (nearest even), as a
 * bf16 GEMM takes its input, and accumulated in fp32; y fp32 (the caller rounds it to bf16).
 * Half the bytes of the fp32 panels per weight, and one instruction per 32 multiply-adds.
 * decode_bf16_native() is 0 where the compiler does not target AVX512-BF16 (no such kernel). */
#if defined(__AVX512BF16__)
#include <immintrin.h>
#include <stdlib.h>

int64_t decode_bf16_native(void) { return 1; }

static inline uint16_t to_bf16(float f) {
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#define BLOCK16(R)                                                                          \
    static void bblock##R(const uint32_t *xp, int64_t K2, const uint16_t *w, __m512 *acc) { \
        __m512 a[R];                                                                        \
        for (int r = 0; r < R; r++) a[r] = _mm512_setzero_ps();                             \
        for (int64_t k = 0; k < K2; k++) {                                                  \
            __builtin_prefetch(w + k * 32 + 2048, 0, 0);                                    \
            const __m512i wk = _mm512_loadu_si512((const void *)(w + k * 32));              \
            for (int r = 0; r < R; r++)                                                     \
                a[r] = _mm512_dpbf16_ps(a[r], (__m512bh)_mm512_set1_epi32((int)xp[r * K2 + k]), (__m512bh)wk); \
        }                                                                                   \
        for (int r = 0; r < R; r++) acc[r] = a[r];                                          \
    }
BLOCK16(1) BLOCK16(2) BLOCK16(3) BLOCK16(4) BLOCK16(5) BLOCK16(6) BLOCK16(7) BLOCK16(8) BLOCK16(9) BLOCK16(10)
BLOCK16(11) BLOCK16(12)

typedef void (*bblock_fn)(const uint32_t *, int64_t, const uint16_t *, __m512 *);
static const bblock_fn BBLOCKS[13] = {0, bblock1, bblock2, bblock3, bblock4, bblock5, bblock6,
                                      bblock7, bblock8, bblock9, bblock10, bblock11, bblock12};

int decode_linear_bf16(const float *x, int64_t M, int64_t K, const uint16_t *panels, int64_t N,
                       const float *bias, int gelu, float *y) {
    const int64_t K2 = K / 2, np = (N + 15) / 16, nb = (M + 11) / 12;
    uint16_t *xb = (uint16_t *)malloc(sizeof(uint16_t) * (size_t)(M * K));  /* x in bf16, rows of K2 pairs */
    if (!xb) return 1;
    for (int64_t i = 0; i < M * K; i++) xb[i] = to_bf16(x[i]);
    const uint32_t *xp = (const uint32_t *)xb;
    __m512 acc[12];
    float col[16];
    for (int64_t p = 0; p < np; p++) {
        const uint16_t *w = panels + p * K * 16;
        const int64_t n0 = p * 16, nw = N - n0 < 16 ? N - n0 : 16;
        for (int64_t bi = 0; bi < nb; bi++) {
            const int64_t r0 = bi * M / nb, rows = (bi + 1) * M / nb - r0;
            BBLOCKS[rows](xp + r0 * K2, K2, w, acc);
            for (int64_t r = 0; r < rows; r++) {
                _mm512_storeu_ps(col, acc[r]);
                finish(col, nw, bias ? bias + n0 : 0, y + (r0 + r) * N + n0);
            }
        }
    }
    free(xb);
    decode_act(y, M * N, gelu);
    return 0;
}
#else
int64_t decode_bf16_native(void) { return 0; }

int decode_linear_bf16(const float *x, int64_t M, int64_t K, const void *panels, int64_t N, const float *bias,
                       int gelu, float *y) {
    (void)x; (void)M; (void)K; (void)panels; (void)N; (void)bias; (void)gelu; (void)y;
    return 2;  /* not compiled for AVX512-BF16 */
}
#endif
