/* One token per row from softmax(logits / T) and its log-prob, fp32 logits (A, V): the sampler's
 * plain case (no top-k / top-p). Same distribution as the PyTorch path (log_softmax, exp, cumsum
 * and a search for u * total, sampler.py `_draw`), in two passes over a row instead of ~12
 * tensor ops per token. u (A,) are uniform draws in [0, 1) from torch's generator (one per row,
 * as `_draw` takes). The cumulative sum and the total are accumulated in double in the same order,
 * so u * total < total is always reached at an entry with mass. Compiled with the decode kernels.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int sample_rows(const float *logits, int64_t A, int64_t V, float inv_temp, const float *u, int64_t *tok,
                float *lp) {
    float *e = (float *)malloc(sizeof(float) * (size_t)V);
    if (!e) return 1;
    for (int64_t a = 0; a < A; a++) {
        const float *z = logits + a * V;
        float m = -3.0e38f; /* -ffast-math: no infinity literals; a -inf logit gets exp 0, never picked */
        for (int64_t i = 0; i < V; i++) m = z[i] * inv_temp > m ? z[i] * inv_temp : m;
        double total = 0.0;
        for (int64_t i = 0; i < V; i++) { e[i] = expf(z[i] * inv_temp - m); total += e[i]; }
        const double target = (double)u[a] * total;
        double c = 0.0;
        int64_t k = V - 1;
        for (int64_t i = 0; i < V; i++) {
            c += e[i];
            if (c > target) { k = i; break; }
        }
        tok[a] = k;
        lp[a] = z[k] * inv_temp - m - (float)log(total);
    }
    free(e);
    return 0;
}
