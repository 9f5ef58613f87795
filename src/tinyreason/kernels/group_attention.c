/* Attention of a GRPO batch's completion tokens, forward and backward, fp32, head size 64.
 *
 * A batch holds G completions per prompt, every prompt computed once (tinyreason/lm/grouped.py):
 * completion token i of row n attends to its group's real prompt keys [p0, P) and to its own row's
 * completion keys [0, i]. PyTorch's route repeats the prompt keys and values for every row, builds
 * a (N, 1, T, P + T) mask and runs SDPA's flash kernel on it: every masked score is computed, and
 * the repeats, concatenations, transposes and the sums of the prompt's gradients over the repeats
 * are copies. Here the scores stop at each block's last visible key, the prompt's key and value
 * gradients are summed over the group in place, and q, k, v and their gradients stay in the linear
 * layer's token-major (tokens, 3C) layout: no copies.
 *
 * Per row and head: the visible keys are gathered into tiles of 16 transposed keys (as in
 * decode_attention.c), so a score is a multiply-add over the head for 16 keys at once, QR queries
 * sharing each key vector; value sums (PV, dQ) run over the head's vectors with OR rows sharing
 * each loaded key or value row. The backward is flash attention's: P recomputed from the kept
 * log-sum-exps, dP = dO V^T, dS = P (dP - rowsum(dO O)), dQ = dS K, dK = dS^T Q, dV = P^T dO
 * (scale folded in). Compiled at first use with -O3 -march=native -ffast-math (no inf or NaN:
 * masked scores are never computed, their P and dS are set to 0).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "attn_vec.h"

#if VW == 16
#define KT 2  /* 16-key tiles per score block: QR x KT x TV accumulators */
#define OR 4  /* rows per value-sum block: OR x NC accumulators */
#else
#define KT 1
#define OR 1
#endif
#define QR 4 /* queries per score block */

/* tiles (S16 / 16, HD, 16) of the rows x[j] (HD floats each) for j < s, zero past s */
static void to_tiles(const float *const *x, int64_t s, int64_t s16, float *t) {
    for (int64_t j = 0; j < s16; j++)
        for (int d = 0; d < HD; d++) t[TILE(j, d, HD)] = j < s ? x[j][d] : 0.0f;
}

/* s[r * ls + j] = q[r] . key j for keys [0, j1) (a multiple of 16) of tiles kt, QR rows */
static void scores(const float *const *q, const float *kt, int64_t j1, float *s, int64_t ls) {
    int64_t j = 0;
#if KT > 1
    for (; j + 16 * KT <= j1; j += 16 * KT) {
        vec a[QR][KT * TV];
        for (int r = 0; r < QR; r++)
            for (int b = 0; b < KT * TV; b++) a[r][b] = (vec){0};
        for (int d = 0; d < HD; d++) {
            vec k[KT * TV];
            for (int b = 0; b < KT * TV; b++) k[b] = ld(kt + (j / 16 + b / TV) * HD * 16 + d * 16 + b % TV * VW);
            for (int r = 0; r < QR; r++) {
                const float qd = q[r][d];
                for (int b = 0; b < KT * TV; b++) a[r][b] += qd * k[b];
            }
        }
        for (int r = 0; r < QR; r++)
            for (int b = 0; b < KT * TV; b++) st(s + r * ls + j + VW * b, a[r][b]);
    }
#endif
    for (; j < j1; j += 16) {
        vec a[QR][TV];
        for (int r = 0; r < QR; r++)
            for (int b = 0; b < TV; b++) a[r][b] = (vec){0};
        for (int d = 0; d < HD; d++) {
            vec k[TV];
            for (int b = 0; b < TV; b++) k[b] = ld(kt + (j / 16) * HD * 16 + d * 16 + b * VW);
            for (int r = 0; r < QR; r++) {
                const float qd = q[r][d];
                for (int b = 0; b < TV; b++) a[r][b] += qd * k[b];
            }
        }
        for (int r = 0; r < QR; r++)
            for (int b = 0; b < TV; b++) st(s + r * ls + j + VW * b, a[r][b]);
    }
}

/* o[r] += sum over j in [0, j1) of w[r * lw + j] * x[j] (rows of HD), OR rows */
static void rows_sum(const float *w, int64_t lw, const float *const *x, int64_t j1, vec (*o)[NC]) {
    vec a[OR][NC];
    for (int r = 0; r < OR; r++)
        for (int c = 0; c < NC; c++) a[r][c] = (vec){0};
    for (int64_t j = 0; j < j1; j++) {
        vec xj[NC];
        for (int c = 0; c < NC; c++) xj[c] = ld(x[j] + c * VW);
        for (int r = 0; r < OR; r++) {
            const float wr = w[r * lw + j];
            for (int c = 0; c < NC; c++) a[r][c] += wr * xj[c];
        }
    }
    for (int r = 0; r < OR; r++)
        for (int c = 0; c < NC; c++) o[r][c] += a[r][c];
}

/* y[j0 + r] += c * sum over i in [i0, i1) of w[i * lw + j0 + r] * x[i] (rows of HD), r < nr <= OR */
static void cols_sum(const float *w, int64_t lw, int64_t j0, int nr, const float *const *x, int64_t i0, int64_t i1,
                     float c, float *const *y) {
    vec a[OR][NC];
    for (int r = 0; r < OR; r++)
        for (int k = 0; k < NC; k++) a[r][k] = (vec){0};
    for (int64_t i = i0; i < i1; i++) {
        vec xi[NC];
        for (int k = 0; k < NC; k++) xi[k] = ld(x[i] + k * VW);
        for (int r = 0; r < OR; r++) {
            const float wr = w[i * lw + j0 + r];
            for (int k = 0; k < NC; k++) a[r][k] += wr * xi[k];
        }
    }
    for (int r = 0; r < nr; r++)
        for (int k = 0; k < NC; k++) st(y[j0 + r] + k * VW, ld(y[j0 + r] + k * VW) + c * a[r][k]);
}

static inline float dot(const float *a, const float *b) {
    vec s = (vec){0};
    for (int c = 0; c < NC; c++) s += ld(a + c * VW) * ld(b + c * VW);
    float t = 0.0f;
    for (int e = 0; e < VW; e++) t += s[e];
    return t;
}

/* One row and head's visible keys: the group's prompt keys [p0, P), then the row's own T. */
typedef struct {
    int64_t np, s, s16, t16;   /* prompt keys, keys, keys rounded up to 16, queries rounded up to QR */
    const float **q, **k, **v; /* (T,), (S,), (S,) row pointers into qkv */
    float *kt;                 /* (S16 / 16, HD, 16) key tiles */
} Keys;

static void gather(Keys *g, const float *qkv, int64_t C, int64_t BP, int64_t T, int64_t P, int64_t n, int64_t b,
                   int64_t h, int64_t p0) {
    const int64_t ld = 3 * C;
    for (int64_t j = 0; j < g->np; j++) {
        const float *row = qkv + (b * P + p0 + j) * ld + h * HD;
        g->k[j] = row + C;
        g->v[j] = row + 2 * C;
    }
    for (int64_t i = 0; i < T; i++) {
        const float *row = qkv + (BP + n * T + i) * ld + h * HD;
        g->q[i] = row;
        g->k[g->np + i] = row + C;
        g->v[g->np + i] = row + 2 * C;
    }
    for (int64_t i = T; i < g->t16; i++) g->q[i] = g->q[T - 1];  /* a block's spare rows: computed, unused */
    to_tiles(g->k, g->s, g->s16, g->kt);
}

/* qkv (BP + N*T, 3C): the prompt rows (b * P + j), then the completion rows (BP + n * T + i); row n
 * belongs to group n / G, whose real prompt slots are [pstart[b], P). out (N, T, C) with row n at
 * out + n * ldo; lse (N, T, H) at lse + n * ldl: the log-sum-exp of each softmax's scaled scores.
 * Returns 1 when scratch memory cannot be had, else 0. */
int group_attention_fwd(const float *qkv, int64_t N, int64_t T, int64_t H, int64_t BP, int64_t P, int64_t G,
                        const int64_t *pstart, float scale, float *out, int64_t ldo, float *lse, int64_t ldl) {
    const int64_t C = H * HD, s16max = (P + T + 15) / 16 * 16, t16 = (T + QR - 1) / QR * QR;
    float *kt = malloc(sizeof(float) * (size_t)(s16max * HD + QR * s16max));
    const float **ptr = malloc(sizeof(float *) * (size_t)(t16 + 2 * (P + T)));
    if (!kt || !ptr) { free(kt); free(ptr); return 1; }
    float *s = kt + s16max * HD;
    for (int64_t n = 0; n < N; n++) {
        const int64_t b = n / G, p0 = pstart[b];
        Keys g = {P - p0, P - p0 + T, (P - p0 + T + 15) / 16 * 16, t16, ptr, ptr + t16, ptr + t16 + P + T, kt};
        for (int64_t h = 0; h < H; h++) {
            gather(&g, qkv, C, BP, T, P, n, b, h, p0);
            for (int64_t i0 = 0; i0 < T; i0 += QR) {
                const int64_t lim = g.np + i0 + QR < g.s ? g.np + i0 + QR : g.s;  /* keys the block sees */
                scores(g.q + i0, g.kt, (lim + 15) / 16 * 16, s, s16max);  /* unscaled: scale > 0 */
                float inv[QR];
                for (int r = 0; r < QR; r++) {
                    float *sr = s + r * s16max, m = -3.0e38f, sum = 0.0f;
                    const int64_t vis = i0 + r < T ? g.np + i0 + r + 1 : 0;
                    for (int64_t j = 0; j < vis; j++) m = sr[j] > m ? sr[j] : m;
                    m *= scale;
                    for (int64_t j = 0; j < vis; j++) { sr[j] = expf(scale * sr[j] - m); sum += sr[j]; }
                    for (int64_t j = vis; j < lim; j++) sr[j] = 0.0f;
                    inv[r] = vis ? 1.0f / sum : 0.0f;
                    if (vis) lse[n * ldl + (i0 + r) * H + h] = m + logf(sum);
                }
                for (int r0 = 0; r0 < QR; r0 += OR) {
                    vec o[OR][NC];
                    for (int r = 0; r < OR; r++)
                        for (int c = 0; c < NC; c++) o[r][c] = (vec){0};
                    rows_sum(s + r0 * s16max, s16max, g.v, lim, o);
                    for (int r = 0; r < OR && i0 + r0 + r < T; r++)
                        for (int c = 0; c < NC; c++)
                            st(out + n * ldo + (i0 + r0 + r) * C + h * HD + c * VW, o[r][c] * inv[r0 + r]);
                }
            }
        }
    }
    free(kt);
    free(ptr);
    return 0;
}

/* The gradients for dout (N*T, C): added into dqkv (BP + N*T, 3C), which the caller zeroes: the
 * completion rows' q, k, v and the prompt rows' k, v (summed over each group's rows). out and lse
 * as group_attention_fwd wrote them (or the rollout's decode steps did). */
int group_attention_bwd(const float *qkv, int64_t N, int64_t T, int64_t H, int64_t BP, int64_t P, int64_t G,
                        const int64_t *pstart, float scale, const float *out, int64_t ldo, const float *lse,
                        int64_t ldl, const float *dout, float *dqkv) {
    const int64_t C = H * HD, s16max = (P + T + 15) / 16 * 16, t16 = (T + QR - 1) / QR * QR;
    float *kt = malloc(sizeof(float) * (size_t)(2 * s16max * HD + 2 * t16 * s16max + QR * s16max));
    const float **ptr = malloc(sizeof(float *) * (size_t)(2 * t16 + 2 * (P + T)));
    float **gptr = malloc(sizeof(float *) * (size_t)(t16 + 2 * (P + T)));
    if (!kt || !ptr || !gptr) { free(kt); free(ptr); free(gptr); return 1; }
    float *vt = kt + s16max * HD, *pm = vt + s16max * HD, *ds = pm + t16 * s16max, *dp = ds + t16 * s16max;
    const float **dor = ptr + t16 + 2 * (P + T);  /* (T16,) dout rows */
    float **dq = gptr, **dk = gptr + t16, **dv = gptr + t16 + P + T;
    for (int64_t n = 0; n < N; n++) {
        const int64_t b = n / G, p0 = pstart[b];
        Keys g = {P - p0, P - p0 + T, (P - p0 + T + 15) / 16 * 16, t16, ptr, ptr + t16, ptr + t16 + P + T, kt};
        for (int64_t h = 0; h < H; h++) {
            gather(&g, qkv, C, BP, T, P, n, b, h, p0);
            to_tiles(g.v, g.s, g.s16, vt);
            for (int64_t i = 0; i < t16; i++)  /* a block's spare rows read the last row's */
                dor[i] = dout + ((i < T ? i : T - 1) + n * T) * C + h * HD;
            for (int64_t j = 0; j < g.np; j++) {
                dk[j] = dqkv + (b * P + p0 + j) * 3 * C + C + h * HD;
                dv[j] = dk[j] + C;
            }
            for (int64_t i = 0; i < T; i++) {
                dq[i] = dqkv + (BP + n * T + i) * 3 * C + h * HD;
                dk[g.np + i] = dq[i] + C;
                dv[g.np + i] = dq[i] + 2 * C;
            }
            /* P and dS, QR queries at a time; zero where a key is not visible */
            for (int64_t i0 = 0; i0 < T; i0 += QR) {
                const int64_t lim = g.np + i0 + QR < g.s ? g.np + i0 + QR : g.s, l16 = (lim + 15) / 16 * 16;
                float *pr0 = pm + i0 * s16max, *dr0 = ds + i0 * s16max;
                scores(g.q + i0, g.kt, l16, pr0, s16max);
                scores(dor + i0, vt, l16, dp, s16max);
                for (int r = 0; r < QR; r++) {
                    float *pr = pr0 + r * s16max, *dr = dr0 + r * s16max, *dpr = dp + r * s16max;
                    const int64_t i = i0 + r, vis = i < T ? g.np + i + 1 : 0;
                    const float l = i < T ? lse[n * ldl + i * H + h] : 0.0f;
                    const float delta = i < T ? dot(dor[i], out + n * ldo + i * C + h * HD) : 0.0f;
                    for (int64_t j = 0; j < vis; j++) {
                        pr[j] = expf(scale * pr[j] - l);
                        dr[j] = pr[j] * (dpr[j] - delta);
                    }
                    for (int64_t j = vis; j < s16max; j++) pr[j] = dr[j] = 0.0f;
                }
            }
            /* dQ = scale dS K, OR queries at a time over the keys the last of them sees */
            for (int64_t i0 = 0; i0 < T; i0 += OR) {
                const int64_t lim = g.np + i0 + OR < g.s ? g.np + i0 + OR : g.s;
                vec o[OR][NC];
                for (int r = 0; r < OR; r++)
                    for (int c = 0; c < NC; c++) o[r][c] = (vec){0};
                rows_sum(ds + i0 * s16max, s16max, g.k, lim, o);
                for (int r = 0; r < OR && i0 + r < T; r++)
                    for (int c = 0; c < NC; c++) st(dq[i0 + r] + c * VW, ld(dq[i0 + r] + c * VW) + scale * o[r][c]);
            }
            /* dK = scale dS^T Q, dV = P^T dO, OR keys at a time over the queries that see them */
            for (int64_t j0 = 0; j0 < g.s; j0 += OR) {
                const int nr = g.s - j0 < OR ? (int)(g.s - j0) : OR;
                const int64_t i0 = j0 < g.np ? 0 : j0 - g.np;  /* first query that sees key j0 */
                cols_sum(ds, s16max, j0, nr, g.q, i0, T, scale, dk);
                cols_sum(pm, s16max, j0, nr, dor, i0, T, 1.0f, dv);
            }
        }
    }
    free(kt);
    free(ptr);
    free(gptr);
    return 0;
}
