/* One decode step of GPT-2 attention with a shared prompt prefix, fp32, one call per layer.
 *
 * For every active row a and head h: write the new key/value into the row's cache at slot t,
 * then attend from the row's query to its group's prompt keys (real slots only: prompts are
 * left-padded, slots [pstart, P)) and to the row's generated keys [0, t], one softmax over
 * both, and write the head's output into out (A, H*D) - the layout the next linear reads.
 * Replaces ~25 small PyTorch ops per layer (cache writes, batched matmuls, softmax,
 * transposes) whose per-op cost dominates decoding of small models on a CPU core; see
 * tinyreason/kernels/_cext.py. Compiled at first use with -O3 -march=native -ffast-math:
 * no infinity or NaN is produced here (masked slots are skipped, not set to -inf).
 *
 * Keys are stored in tiles of 16 transposed keys, (T16 / 16, D, 16) per row and head for the
 * generated ones and per group and head for the prompt's (T16: slots rounded up to 16, the ones
 * past those written finite), values as (T, D): a score is then a multiply-add over D of 16 keys
 * at once, the G rows of a group read each prompt key and value once for all of them (a register
 * block of rows x keys), and each tile is one contiguous 4 KiB read, where a dot product per key
 * and row ended in a horizontal sum each time. Other head sizes than 64 (every GPT-2's) take plain
 * loops on the same layout.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "attn_vec.h"

#if VW == 16
#define KB 2 /* 16-key tiles per block of prompt scores: R rows x KB accumulators in registers */
#define SR 8 /* rows per block of prompt scores */
#define PR 4 /* rows per block of the prompt's value sum: PR x NC accumulators */
#elif VW == 8 /* the AVX-512 blocks' accumulators would not fit AVX2's 16 registers: halve them */
#define KB 1
#define SR 4
#define PR 1
#else
#define KB 1
#define SR 2
#define PR 1
#endif
#define RB 8 /* rows of one group that share a pass over its prompt keys */

/* s[r * ls + j] = q[r] . key j (q[r] = q + r * HD) for the 16-key tiles j in [j, j1) of kt, R rows
 * sharing the keys: each key vector loaded once for R rows; VB tiles at a time */
#define SCORES(R, VB)                                                                                        \
    static void scores_##R##_##VB(const float *q, const float *kt, int64_t j, int64_t j1, float *s,         \
                                  int64_t ls) {                                                              \
        for (; j + 16 * VB <= j1; j += 16 * VB) {                                                            \
            vec a[R][VB * TV];                                                                               \
            for (int r = 0; r < R; r++)                                                                      \
                for (int b = 0; b < VB * TV; b++) a[r][b] = (vec){0};                                        \
            for (int d = 0; d < HD; d++) {                                                                   \
                vec k[VB * TV];                                                                              \
                for (int b = 0; b < VB * TV; b++) k[b] = ld(kt + (j / 16 + b / TV) * HD * 16 + d * 16 + b % TV * VW); \
                for (int r = 0; r < R; r++) {                                                                \
                    const float qd = q[r * HD + d];                                                          \
                    for (int b = 0; b < VB * TV; b++) a[r][b] += qd * k[b];                                  \
                }                                                                                            \
            }                                                                                                \
            for (int r = 0; r < R; r++)                                                                      \
                for (int b = 0; b < VB * TV; b++) st(s + r * ls + j + VW * b, a[r][b]);                      \
        }                                                                                                    \
        if (VB > 1 && j < j1) scores_##R##_1(q, kt, j, j1, s, ls);                                          \
    }
SCORES(1, 1) SCORES(2, 1) SCORES(3, 1) SCORES(4, 1)
#if SR > 4
SCORES(5, 1) SCORES(6, 1) SCORES(7, 1) SCORES(8, 1)
#endif
#if KB > 1
SCORES(1, 2) SCORES(2, 2) SCORES(3, 2) SCORES(4, 2) SCORES(5, 2) SCORES(6, 2) SCORES(7, 2) SCORES(8, 2)
#define SC(R) scores_##R##_2
#else
#define SC(R) scores_##R##_1
#endif
/* one row's own keys: four vectors of independent sums hide the multiply-add latency */
#if TV == 1
SCORES(1, 4)
#define SCORES_OWN scores_1_4
#elif TV == 2
SCORES(1, 2)
#define SCORES_OWN scores_1_2
#else
#define SCORES_OWN scores_1_1
#endif

typedef void (*scores_fn)(const float *, const float *, int64_t, int64_t, float *, int64_t);
static const scores_fn SCORES_R[9] = {0, SC(1), SC(2), SC(3), SC(4),
#if SR > 4
                                       SC(5), SC(6), SC(7), SC(8)
#endif
};

/* o[r] += sum over j in [j0, j1) of w[r * lw + j] * v[j] for R rows sharing values v (T, HD) */
#define PV(R)                                                                                            \
    static void pv_##R(const float *w, int64_t lw, const float *v, int64_t j0, int64_t j1, vec (*o)[NC]) { \
        vec a[R][NC];                                                                                    \
        for (int r = 0; r < R; r++)                                                                      \
            for (int c = 0; c < NC; c++) a[r][c] = (vec){0};                                             \
        for (int64_t j = j0; j < j1; j++) {                                                              \
            vec x[NC];                                                                                   \
            for (int c = 0; c < NC; c++) x[c] = ld(v + j * HD + VW * c);                                 \
            for (int r = 0; r < R; r++) {                                                                \
                const float wr = w[r * lw + j];                                                          \
                for (int c = 0; c < NC; c++) a[r][c] += wr * x[c];                                       \
            }                                                                                            \
        }                                                                                                \
        for (int r = 0; r < R; r++)                                                                      \
            for (int c = 0; c < NC; c++) o[r][c] += a[r][c];                                             \
    }
typedef void (*pv_fn)(const float *, int64_t, const float *, int64_t, int64_t, vec (*)[NC]);
PV(1)
#if PR > 1
PV(2) PV(3) PV(4)
static const pv_fn PV_R[PR + 1] = {0, pv_1, pv_2, pv_3, pv_4};
#else
static const pv_fn PV_R[PR + 1] = {0, pv_1};
#endif

/* e^(s - max) in place over s[p0, p1) and s[g0, g1) (both parts of one row), returning their sum;
 * *lse = the log-sum-exp of the scores */
static float softmax_parts(float *s, int64_t p0, int64_t p1, int64_t g0, int64_t g1, float *lse) {
    float m = -3.0e38f, sum = 0.0f;
    for (int64_t j = p0; j < p1; j++) m = s[j] > m ? s[j] : m;
    for (int64_t j = g0; j < g1; j++) m = s[j] > m ? s[j] : m;
    for (int64_t j = p0; j < p1; j++) { s[j] = expf(s[j] - m); sum += s[j]; }
    for (int64_t j = g0; j < g1; j++) { s[j] = expf(s[j] - m); sum += s[j]; }
    *lse = m + logf(sum);
    return sum;
}

/* head size 64: rows in runs of one group, RB at a time, every head */
static int attend64(const float *qkv, int64_t A, int64_t H, const float *kc, int64_t ldk, const float *vc,
                    int64_t tcap, int64_t t, const float *kp, int64_t ldp, const float *vp, int64_t P,
                    const int64_t *grp, const int64_t *pstart, float scale, float *out, float *lse) {
    const int64_t C = H * HD, ls = ldp + ldk, ng = (t + 16) / 16 * 16;  /* generated keys in 16-blocks */
    float *s = (float *)malloc(sizeof(float) * (size_t)(RB * ls + RB * HD));
    if (!s) return 1;
    float *q = s + RB * ls, inv[RB];
    for (int64_t a0 = 0; a0 < A;) {
        const int64_t g = grp[a0], p0 = pstart[g];
        int64_t m = 1;
        while (m < RB && a0 + m < A && grp[a0 + m] == g) m++;
        for (int64_t h = 0; h < H; h++) {
            for (int64_t r = 0; r < m; r++)
                for (int64_t d = 0; d < HD; d++) q[r * HD + d] = qkv[(a0 + r) * 3 * C + h * HD + d] * scale;
            const float *kpt = kp + (g * H + h) * HD * ldp, *vph = vp + (g * H + h) * P * HD;
            for (int64_t r = 0; r < m; r += SR)  /* prompt part: s[r][0, ldp) */
                SCORES_R[m - r < SR ? m - r : SR](q + r * HD, kpt, p0 / 16 * 16, ldp, s + r * ls, ls);
            for (int64_t r = 0; r < m; r++) {
                const int64_t row = (a0 + r) * H + h;
                SCORES_OWN(q + r * HD, kc + row * HD * ldk, 0, ng, s + r * ls + ldp, ls);
                float l;
                inv[r] = 1.0f / softmax_parts(s + r * ls, p0, P, ldp, ldp + t + 1, &l);
                if (lse) lse[(a0 + r) * H + h] = l;
            }
            vec o[RB][NC];
            for (int64_t r = 0; r < m; r++)
                for (int c = 0; c < NC; c++) o[r][c] = (vec){0};
            for (int64_t r = 0; r < m; r += PR) {
                const int64_t n = m - r < PR ? m - r : PR;
                PV_R[n](s + r * ls, ls, vph, p0, P, o + r);  /* the group's prompt values, once per PR rows */
            }
            for (int64_t r = 0; r < m; r++) {
                const int64_t row = (a0 + r) * H + h;
                pv_1(s + r * ls + ldp, ls, vc + row * tcap * HD, 0, t + 1, o + r);  /* the row's own values */
                for (int c = 0; c < NC; c++) st(out + (a0 + r) * C + h * HD + VW * c, o[r][c] * inv[r]);
            }
        }
        a0 += m;
    }
    free(s);
    return 0;
}

/* any head size: the same math in plain loops, one row and head at a time */
static int attend_any(const float *qkv, int64_t A, int64_t H, int64_t D, const float *kc, int64_t ldk,
                      const float *vc, int64_t tcap, int64_t t, const float *kp, int64_t ldp, const float *vp,
                      int64_t P, const int64_t *grp, const int64_t *pstart, float scale, float *out, float *lse) {
    const int64_t C = H * D;
    float *s = (float *)malloc(sizeof(float) * (size_t)(P + t + 1));
    if (!s) return 1;
    for (int64_t a = 0; a < A; a++) {
        const int64_t g = grp[a], p0 = pstart[g];
        for (int64_t h = 0; h < H; h++) {
            const float *q = qkv + a * 3 * C + h * D;
            const float *kpt = kp + (g * H + h) * D * ldp, *vph = vp + (g * H + h) * P * D;
            const float *kct = kc + (a * H + h) * D * ldk, *vch = vc + (a * H + h) * tcap * D;
            for (int64_t j = p0; j < P; j++) {
                float acc = 0.0f;
                for (int64_t d = 0; d < D; d++) acc += q[d] * kpt[TILE(j, d, D)];
                s[j - p0] = acc * scale;
            }
            for (int64_t j = 0; j <= t; j++) {
                float acc = 0.0f;
                for (int64_t d = 0; d < D; d++) acc += q[d] * kct[TILE(j, d, D)];
                s[P - p0 + j] = acc * scale;
            }
            const int64_t n = P - p0 + t + 1;
            float l;
            const float inv = 1.0f / softmax_parts(s, 0, n, 0, 0, &l);
            if (lse) lse[a * H + h] = l;
            float *o = out + a * C + h * D;
            for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
            for (int64_t j = p0; j < P; j++)
                for (int64_t d = 0; d < D; d++) o[d] += s[j - p0] * vph[j * D + d];
            for (int64_t j = 0; j <= t; j++)
                for (int64_t d = 0; d < D; d++) o[d] += s[P - p0 + j] * vch[j * D + d];
            for (int64_t d = 0; d < D; d++) o[d] *= inv;
        }
    }
    free(s);
    return 0;
}

/* qkv (A, 3C) this step's q|k|v; kc (A, H, ldk / 16, D, 16) generated keys in tiles, vc (A, H, tcap, D)
 * generated values, this step's written at slot t; kp (B, H, ldp / 16, D, 16) the prompt keys in tiles,
 * vp (B, H, P, D) its values; grp (A,) each row's group, ascending; pstart (B,) each group's first
 * real prompt slot; out (A, C); lse (A, H) or NULL: each softmax's log-sum-exp (of the scaled
 * scores), what a flash-attention backward takes. Returns 1 when scratch memory cannot be had, else 0. */
int decode_attention(const float *qkv, int64_t A, int64_t H, int64_t D, float *kc, int64_t ldk, float *vc,
                     int64_t tcap, int64_t t, const float *kp, int64_t ldp, const float *vp, int64_t P,
                     const int64_t *grp, const int64_t *pstart, float scale, float *out, float *lse) {
    const int64_t C = H * D;
    for (int64_t a = 0; a < A; a++)
        for (int64_t h = 0; h < H; h++) {
            const float *src = qkv + a * 3 * C + h * D;  /* q, then k at +C, v at +2C */
            float *kct = kc + (a * H + h) * D * ldk, *vr = vc + ((a * H + h) * tcap + t) * D;
            for (int64_t d = 0; d < D; d++) {
                kct[TILE(t, d, D)] = src[C + d];
                vr[d] = src[2 * C + d];
            }
        }
    if (D == HD && ldk % 16 == 0 && ldp % 16 == 0)
        return attend64(qkv, A, H, kc, ldk, vc, tcap, t, kp, ldp, vp, P, grp, pstart, scale, out, lse);
    return attend_any(qkv, A, H, D, kc, ldk, vc, tcap, t, kp, ldp, vp, P, grp, pstart, scale, out, lse);
}
