/* The generator's small per-step helpers in C, beside the product (core/qkernel.c): the 7-bit
 * grid of the product's inputs and the temperature-only draw. With the C kernel built, serving
 * imports no numba at all (~110 MB of LLVM and numba in the resident set); core/numba_kernel.py
 * and core/numba_draw.py hold the same two as numba functions for installs without a C compiler.
 *
 * Compiled into the extension module core._qkernel (setup.py) with -ffp-contract=off, so every
 * float operation is the one written, as in numba (no fused multiply-adds): both write the same
 * bytes (tests/core/test_kernels.py and tests/core/test_sampling.py compare them).
 */
#include <math.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define HALF_LEVELS 63.5f
#define ROUNDER 8388608.0f /* 2^23: (y + 2^23) - 2^23 is rint(y), ties to even, for 0 <= y < 2^23 */

static inline uint8_t grid_level(float v) {
    v = v > -1.0f ? v : -1.0f; /* (a NaN fails the comparison and becomes -1, as in numba) */
    v = v < 1.0f ? v : 1.0f;
    float y = (v + 1.0f) * HALF_LEVELS;
    return (uint8_t)(int32_t)((y + ROUNDER) - ROUNDER); /* not folded: no -ffast-math */
}

/* out[b, offset + i] = round((clamp(x[b, i], -1, 1) + 1) * 63.5), ties to even (numba's
 * quantize_into); x is (batch, k) row-major, out (batch, kpad). SSE2 (every x86-64) takes 16
 * at a time: maxps(v, -1) returns -1 for a NaN as the comparison above does, and cvtps2dq
 * rounds to nearest even, as rint does. */
void lstmbot_quantize(const float *restrict x, int64_t batch, int64_t k, uint8_t *restrict out, int64_t kpad,
                      int64_t offset) {
    for (int64_t b = 0; b < batch; b++) {
        const float *restrict src = x + b * k;
        uint8_t *restrict dst = out + b * kpad + offset;
        int64_t i = 0;
#if defined(__SSE2__)
        const __m128 low = _mm_set1_ps(-1.0f), high = _mm_set1_ps(1.0f), levels = _mm_set1_ps(HALF_LEVELS);
        for (; i + 16 <= k; i += 16) {
            __m128i q[4];
            for (int j = 0; j < 4; j++) {
                __m128 v = _mm_min_ps(_mm_max_ps(_mm_loadu_ps(src + i + 4 * j), low), high);
                q[j] = _mm_cvtps_epi32(_mm_mul_ps(_mm_add_ps(v, high), levels));
            }
            __m128i words = _mm_packs_epi32(q[0], q[1]), more = _mm_packs_epi32(q[2], q[3]);
            _mm_storeu_si128((__m128i *)(dst + i), _mm_packus_epi16(words, more));
        }
#endif
        for (; i < k; i++) dst[i] = grid_level(src[i]);
    }
}

/* One token per row of logits (rows, vocab): softmax(z / T) drawn with uniforms[r] against the
 * cumulative sum, the `masked` token never; rows with temps[r] < greedy_below take the top
 * token. `cdf` is scratch of vocab doubles. Returns 0, or -1 for a row with NaN or +inf or no
 * usable token (numba's draw_plain raises ValueError there; core/c_kernel.py does too). */
int64_t lstmbot_draw_plain(const float *logits, int64_t rows, int64_t vocab, const double *temps,
                           const double *uniforms, int64_t masked, double greedy_below, double *cdf,
                           int64_t *picks) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * vocab;
        double peak = -INFINITY;
        int64_t best = -1;
        for (int64_t v = 0; v < vocab; v++) {
            double z = (double)row[v];
            if (isnan(z) || z == INFINITY) return -1;
            if (v != masked && z > peak) {
                peak = z;
                best = v;
            }
        }
        if (best < 0) return -1;
        double t = temps[r];
        if (t < greedy_below) {
            picks[r] = best;
            continue;
        }
        double total = 0.0;
        for (int64_t v = 0; v < vocab; v++) {
            /* (z - peak) <= 0, so a small T can only reach exp(-inf) = 0, never overflow. */
            if (v != masked) total += exp(((double)row[v] - peak) / t);
            cdf[v] = total;
        }
        /* Kept strictly below the total: u * total can round up to it, and the count would
         * then step past the last possible token onto a masked one. */
        double u = uniforms[r] * total;
        double below = nextafter(total, 0.0);
        u = u < below ? u : below;
        int64_t pick = 0;
        while (pick < vocab - 1 && cdf[pick] <= u) pick++;
        picks[r] = pick;
    }
    return 0;
}
