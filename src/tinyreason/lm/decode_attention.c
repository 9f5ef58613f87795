/* One decode step of GPT-2 attention with a shared prompt prefix, fp32, one call per layer.
 *
 * For every active row a and head h: write the new key/value into the row's cache at slot t,
 * then attend from the row's query to its group's prompt keys (real slots only: prompts are
 * left-padded, slots [pstart, P)) and to the row's generated keys [0, t], one softmax over
 * both, and write the head's output into out (A, H*D) - the layout the next linear reads.
 * Replaces ~25 small PyTorch ops per layer (cache writes, batched matmuls, softmax,
 * transposes) whose per-op cost dominates decoding of small models on a CPU core; see
 * tinyreason/lm/decode_kernel.py. Compiled at first use with -O3 -march=native -ffast-math:
 * no infinity or NaN is produced here (masked slots are skipped, not set to -inf).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static float dot(const float *x, const float *y, int64_t n) {
    float acc = 0.0f;
    for (int64_t i = 0; i < n; i++) acc += x[i] * y[i];  /* vectorized: -ffast-math reassociates */
    return acc;
}

int decode_attention(const float *qkv, int64_t A, int64_t H, int64_t D,
                     float *kc, float *vc, int64_t tcap, int64_t t,
                     const float *kp, const float *vp, int64_t P,
                     const int64_t *grp, const int64_t *pstart, float scale, float *out) {
    const int64_t C = H * D;
    float *s = (float *)malloc(sizeof(float) * (size_t)(P + t + 1));
    float *q = (float *)malloc(sizeof(float) * (size_t)D);
    if (!s || !q) { free(s); free(q); return 1; }
    for (int64_t a = 0; a < A; a++) {
        const int64_t g = grp[a], p0 = pstart[g];
        for (int64_t h = 0; h < H; h++) {
            const float *src = qkv + a * 3 * C + h * D;  /* q, then k at +C, v at +2C */
            float *kr = kc + ((a * H + h) * tcap) * D, *vr = vc + ((a * H + h) * tcap) * D;
            const float *kpr = kp + ((g * H + h) * P) * D, *vpr = vp + ((g * H + h) * P) * D;
            for (int64_t d = 0; d < D; d++) {
                q[d] = src[d] * scale;
                kr[t * D + d] = src[C + d];
                vr[t * D + d] = src[2 * C + d];
            }
            float m = -3.0e38f;
            int64_t n = 0;
            for (int64_t j = p0; j < P; j++) { s[n] = dot(q, kpr + j * D, D); m = s[n] > m ? s[n] : m; n++; }
            for (int64_t j = 0; j <= t; j++) { s[n] = dot(q, kr + j * D, D); m = s[n] > m ? s[n] : m; n++; }
            float sum = 0.0f;
            for (int64_t j = 0; j < n; j++) { s[j] = expf(s[j] - m); sum += s[j]; }
            float *o = out + a * C + h * D;
            for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
            n = 0;
            for (int64_t j = p0; j < P; j++, n++) {
                const float w = s[n], *v = vpr + j * D;
                for (int64_t d = 0; d < D; d++) o[d] += w * v[d];
            }
            for (int64_t j = 0; j <= t; j++, n++) {
                const float w = s[n], *v = vr + j * D;
                for (int64_t d = 0; d < D; d++) o[d] += w * v[d];
            }
            const float inv = 1.0f / sum;
            for (int64_t d = 0; d < D; d++) o[d] *= inv;
        }
    }
    free(s);
    free(q);
    return 0;
}
