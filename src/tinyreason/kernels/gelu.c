/* GPT-2's tanh-GELU, forward and backward, fp32, for the trainers' MLPs.
 *
 * gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). With e = exp(2u) and
 * r = 1 / (e + 1): 1 + tanh(u) = 2 e r and 1 - tanh(u)^2 = 4 e r^2, so neither needs a
 * difference of nearly equal numbers. u is clamped to [-15, 15] (tanh(15) is 1 in float; no
 * overflow in expf). The loops vectorize (GCC calls glibc's vector expf under -ffast-math;
 * benchmarks/update_kernels.py, figures in docs/benchmarks.md).
 */
#include <math.h>
#include <stdint.h>

#define K0 0.7978845608028654f /* sqrt(2 / pi) */
#define K1 0.044715f

static inline float clamp15(float u) { return u > 15.0f ? 15.0f : (u < -15.0f ? -15.0f : u); }

static inline float gelu1(float v) {
    const float e = expf(2.0f * clamp15(K0 * (v + K1 * v * v * v)));
    return v * e / (e + 1.0f);
}

void gelu_tanh(const float *x, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = gelu1(x[i]);
}

/* dx = g * gelu'(x) = g * (e r + 2 x e r^2 du/dx), du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2) */
void gelu_tanh_backward(const float *g, const float *x, int64_t n, float *dx) {
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        const float e = expf(2.0f * clamp15(K0 * (v + K1 * v * v * v))), r = 1.0f / (e + 1.0f);
        const float du = K0 * (1.0f + 3.0f * K1 * v * v);
        dx[i] = g[i] * e * r * (1.0f + 2.0f * v * r * du);
    }
}
