/* Vectors and key tiles shared by the attention kernels (decode_attention.c, group_attention.c).
 *
 * VW floats per vector, one register of the compiler's target: 16 for AVX-512, 8 for AVX, else 4
 * (SSE, NEON). Wider vectors than the target's registers (16 floats in x86-64-v3 code) made GCC 12
 * move every one through memory: the decode-attention kernel then ran several times slower than
 * the PyTorch ops it replaces. Keys are kept in tiles of 16 transposed keys, (T16 / 16, D, 16) per row and head
 * (tinyreason/kernels/_cext.py's key_tiles), so a score is a multiply-add over the head for 16
 * keys at once; the vectorized paths take head size HD.
 */
#include <stdint.h>

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
typedef float vec __attribute__((vector_size(VW * 4)));

static inline vec ld(const float *p) { vec v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void st(float *p, vec v) { __builtin_memcpy(p, &v, sizeof v); }

#define HD 64        /* the head size of the vectorized paths */
#define NC (HD / VW) /* vectors per head */
#define TV (16 / VW) /* vectors per 16 keys of a tile */
#define TILE(j, d, D) (((j) / 16) * (D) * 16 + (d) * 16 + (j) % 16) /* key j, feature d in a row's tiles */
