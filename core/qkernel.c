/* The generator's LSTM step in C: the int8 matrix product (AMX tiles, AVX-512 VNNI or AVX2) and
 * the cell update (AVX-512 or AVX2), for x86-64.
 *
 * The product: out[b, j] = (sum_k W[j, k] * x[b, k]) * scale[j] - corr[j] + table[index[b], j]
 * for j < cols, where W holds int8 weights and x unsigned 7-bit activations (every LSTM h lies
 * in [-1, 1]; x = round((h + 1) * 63.5), see core/numba_kernel.py, which also folds the offset into
 * `corr`). 7 bits make vpmaddubsw exact: a pair of products is at most 2 * 127 * 127 = 32258,
 * which fits its int16 sum without saturating, so the int32 sums are exact and a row's result
 * depends neither on the order of the additions nor on the other rows of the batch.
 *
 * Layout (QuantMatrix in core/numba_kernel.py writes it): blocks of 16 output rows; within a block,
 * for each 4 inputs, the 16 rows' 4 weights (64 bytes), so a block is one contiguous stream and
 * one 4-byte broadcast of x meets 16 rows in two vpmaddubsw. rows is a multiple of 16 and kpad
 * of 8, the padding zero; x is (batch, kpad).
 *
 * Built by `pip install` into the extension module core._qkernel, whose Python entry points are in
 * core/qpython.c (called from core/c_kernel.py). Where the CPU has no AVX2, plain loops compute
 * the same integers, and the same floats: every path writes the same bytes
 * (tests/core/test_kernels.py runs all four).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LSTMBOT_X86 1
/* The AMX kernel needs a compiler that knows the tile instructions (GCC 11, clang 12) and Linux,
 * which hands out the tile state only on request (arch_prctl); elsewhere it is left out. */
#if defined(__linux__) && ((defined(__clang__) && __clang_major__ >= 12) || \
                           (!defined(__clang__) && __GNUC__ >= 11))
#include <cpuid.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
#define LSTMBOT_AMX 1
#endif
#endif

#define BLOCK 16 /* output rows per block */

/* The sums of rows j .. j+15 for one batch row, scaled into out (only the j < cols). */
static void finish_plain(const int32_t *sums, const float *scale, const float *corr, int64_t j,
                         int64_t cols, const float *table_row, float *out_row) {
    for (int r = 0; r < BLOCK && j + r < cols; r++) {
        out_row[j + r] = (float)sums[r] * scale[j + r] - corr[j + r] + table_row[j + r];
    }
}

static void qmatmul_plain(const int8_t *packed, const float *scale, const float *corr, int64_t j0,
                          int64_t j1, int64_t cols, int64_t kpad, const uint8_t *x, int64_t batch,
                          const float *table, const int64_t *index, float *out) {
    for (int64_t j = j0; j < j1; j += BLOCK) {
        const int8_t *block = packed + j * kpad;
        for (int64_t b = 0; b < batch; b++) {
            int32_t sums[BLOCK] = {0};
            const uint8_t *xb = x + b * kpad;
            for (int64_t k = 0; k < kpad; k += 4) {
                const int8_t *p = block + k * BLOCK;
                for (int r = 0; r < BLOCK; r++) {
                    for (int i = 0; i < 4; i++) sums[r] += (int32_t)p[r * 4 + i] * (int32_t)xb[k + i];
                }
            }
            finish_plain(sums, scale, corr, j, cols, table + index[b] * cols, out + b * cols);
        }
    }
}

#ifdef LSTMBOT_X86
/* Two accumulators of eight rows each into out; the scalar tail for a block that crosses cols
 * uses the same operations (no fused multiply-add in either), so every output is computed alike. */
__attribute__((target("avx2"))) static inline void finish_avx2(__m256i lo, __m256i hi,
                                                               const float *scale, const float *corr,
                                                               int64_t j, int64_t cols,
                                                               const float *table_row, float *out_row) {
    if (j + BLOCK <= cols) {
        for (int half = 0; half < 2; half++) {
            __m256 v = _mm256_cvtepi32_ps(half ? hi : lo);
            int64_t at = j + 8 * half;
            v = _mm256_sub_ps(_mm256_mul_ps(v, _mm256_loadu_ps(scale + at)), _mm256_loadu_ps(corr + at));
            _mm256_storeu_ps(out_row + at, _mm256_add_ps(v, _mm256_loadu_ps(table_row + at)));
        }
        return;
    }
    int32_t sums[BLOCK];
    _mm256_storeu_si256((__m256i *)sums, lo);
    _mm256_storeu_si256((__m256i *)(sums + 8), hi);
    finish_plain(sums, scale, corr, j, cols, table_row, out_row);
}

/* acc += the four pair-sums of (x quad) . (weights of eight rows), as int32 */
#define DOT4(acc, xq, w) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(xq, w), ones))
#define QUAD(xrow, k) _mm256_set1_epi32(*(const int32_t *)((xrow) + (k)))
#define LOADW(p) _mm256_loadu_si256((const __m256i *)(p))

/* A block of 16 rows against four batch rows at a time (eight accumulators: each weight vector
 * meets four broadcast quads), then the remaining rows one at a time. */
__attribute__((target("avx2"))) static void qmatmul_avx2(const int8_t *packed, const float *scale,
                                                         const float *corr, int64_t j0, int64_t j1,
                                                         int64_t cols, int64_t kpad,
                                                         const uint8_t *x, int64_t batch,
                                                         const float *table, const int64_t *index,
                                                         float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t j = j0; j < j1; j += BLOCK) {
        const int8_t *block = packed + j * kpad;
        int64_t b = 0;
        for (; b + 4 <= batch; b += 4) {
            const uint8_t *x0 = x + b * kpad, *x1 = x0 + kpad, *x2 = x1 + kpad, *x3 = x2 + kpad;
            __m256i a0 = _mm256_setzero_si256(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0,
                    b3 = a0;
            const int8_t *p = block;
            for (int64_t k = 0; k < kpad; k += 4, p += 4 * BLOCK) {
                __m256i lo = LOADW(p), hi = LOADW(p + 32), q;
                q = QUAD(x0, k);
                DOT4(a0, q, lo);
                DOT4(b0, q, hi);
                q = QUAD(x1, k);
                DOT4(a1, q, lo);
                DOT4(b1, q, hi);
                q = QUAD(x2, k);
                DOT4(a2, q, lo);
                DOT4(b2, q, hi);
                q = QUAD(x3, k);
                DOT4(a3, q, lo);
                DOT4(b3, q, hi);
            }
            finish_avx2(a0, b0, scale, corr, j, cols, table + index[b] * cols, out + b * cols);
            finish_avx2(a1, b1, scale, corr, j, cols, table + index[b + 1] * cols, out + (b + 1) * cols);
            finish_avx2(a2, b2, scale, corr, j, cols, table + index[b + 2] * cols, out + (b + 2) * cols);
            finish_avx2(a3, b3, scale, corr, j, cols, table + index[b + 3] * cols, out + (b + 3) * cols);
        }
        for (; b < batch; b++) {
            /* One row streams the block: two quads per iteration, four independent chains. */
            const uint8_t *x0 = x + b * kpad;
            __m256i a0 = _mm256_setzero_si256(), b0 = a0, c0 = a0, d0 = a0;
            const int8_t *p = block;
            for (int64_t k = 0; k < kpad; k += 8, p += 8 * BLOCK) {
                __m256i q = QUAD(x0, k), r = QUAD(x0, k + 4);
                DOT4(a0, q, LOADW(p));
                DOT4(b0, q, LOADW(p + 32));
                DOT4(c0, r, LOADW(p + 64));
                DOT4(d0, r, LOADW(p + 96));
            }
            finish_avx2(_mm256_add_epi32(a0, c0), _mm256_add_epi32(b0, d0), scale, corr, j, cols,
                        table + index[b] * cols, out + b * cols);
        }
    }
}

/* AVX-512 VNNI: a block's 16 rows x 4 inputs (64 bytes) are exactly one zmm register, and
 * vpdpbusd adds the four u8 x s8 products of each row's lane straight into int32: the same exact
 * integers as above, with one instruction where AVX2 needs three, on twice the width. */
#define VNNI_TARGET "avx512f,avx512bw,avx512vnni,avx2"
#define DOT4Z(acc, xq, w) acc = _mm512_dpbusd_epi32(acc, xq, w)
#define QUADZ(xrow, k) _mm512_set1_epi32(*(const int32_t *)((xrow) + (k)))
#define LOADZ(p) _mm512_loadu_si512((const void *)(p))

__attribute__((target(VNNI_TARGET))) static inline void finish_vnni(__m512i sums, const float *scale,
                                                                    const float *corr, int64_t j,
                                                                    int64_t cols,
                                                                    const float *table_row,
                                                                    float *out_row) {
    finish_avx2(_mm512_castsi512_si256(sums), _mm512_extracti64x4_epi64(sums, 1), scale, corr, j, cols,
                table_row, out_row);
}

/* The last batch % 4 rows (1 to 3; a lone request is the common case): R rows against FEW_BLOCKS
 * blocks at once, each (row, block) on two chains (inputs k and k + 4 of every 8), so vpdpbusd
 * has 8 to 24 independent chains instead of 2 and issues every cycle instead of waiting on its
 * latency. The sum of each (row, block) is the same integers added in another order: exact, so
 * the same bytes. Measured on one core here (Xeon with AMX, 2 MB L2), the shipped model's
 * 1024 x 2048 product alone: 1 / 2 / 3 rows 40 / 59 / 78 us before, 31 / 35 / 47 us now (four
 * blocks read side by side; one block on eight chains was no quicker than before at 2 rows).
 * Where a step's weights stream from L3 (a lone row of the whole shipped model: 3 MB), the
 * stream bounds the step either way (bench/generate.py prints that floor). */
#define FEW_BLOCKS 4
__attribute__((target(VNNI_TARGET), always_inline)) static inline void few_rows_blocks(
    const int8_t *block, int64_t kpad, const uint8_t *x, const int R, const int Q,
    __m512i sums[3][FEW_BLOCKS]) {
    __m512i acc[3][FEW_BLOCKS][2];
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) acc[r][q][0] = acc[r][q][1] = _mm512_setzero_si512();
    const int8_t *p = block;
    for (int64_t k = 0; k < kpad; k += 8, p += 8 * BLOCK) { /* kpad is a multiple of 8 */
        for (int r = 0; r < R; r++) {
            __m512i even = QUADZ(x + r * kpad, k), odd = QUADZ(x + r * kpad, k + 4);
            for (int q = 0; q < Q; q++) {
                DOT4Z(acc[r][q][0], even, LOADZ(p + q * BLOCK * kpad));
                DOT4Z(acc[r][q][1], odd, LOADZ(p + q * BLOCK * kpad + 64));
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int q = 0; q < Q; q++) sums[r][q] = _mm512_add_epi32(acc[r][q][0], acc[r][q][1]);
}

__attribute__((target(VNNI_TARGET))) static void few_rows_vnni(const int8_t *packed, const float *scale,
                                                               const float *corr, int64_t j0, int64_t j1,
                                                               int64_t cols, int64_t kpad, const uint8_t *x,
                                                               int rows, const float *table,
                                                               const int64_t *index, float *out) {
    __m512i sums[3][FEW_BLOCKS];
    for (int64_t j = j0; j < j1; j += FEW_BLOCKS * BLOCK) {
        const int8_t *block = packed + j * kpad;
        int q_count = j + FEW_BLOCKS * BLOCK <= j1 ? FEW_BLOCKS : (int)((j1 - j) / BLOCK);
        /* constant R and Q: the compiler keeps every chain in a register */
        if (q_count == FEW_BLOCKS) {
            if (rows == 1) few_rows_blocks(block, kpad, x, 1, FEW_BLOCKS, sums);
            else if (rows == 2) few_rows_blocks(block, kpad, x, 2, FEW_BLOCKS, sums);
            else few_rows_blocks(block, kpad, x, 3, FEW_BLOCKS, sums);
        } else {
            for (int q = 0; q < q_count; q++) {
                __m512i one[3][FEW_BLOCKS];
                if (rows == 1) few_rows_blocks(block + q * BLOCK * kpad, kpad, x, 1, 1, one);
                else if (rows == 2) few_rows_blocks(block + q * BLOCK * kpad, kpad, x, 2, 1, one);
                else few_rows_blocks(block + q * BLOCK * kpad, kpad, x, 3, 1, one);
                for (int r = 0; r < rows; r++) sums[r][q] = one[r][0];
            }
        }
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < q_count; q++)
                finish_vnni(sums[r][q], scale, corr, j + q * BLOCK, cols, table + index[r] * cols,
                            out + r * cols);
    }
}

/* One block's 16 output rows for batch rows b0 .. fours - 1 (a multiple of 4 of them). */
__attribute__((target(VNNI_TARGET))) static inline void one_block_vnni(
    const int8_t *block, const float *scale, const float *corr, int64_t j, int64_t cols, int64_t kpad,
    const uint8_t *x, int64_t b0, int64_t fours, const float *table, const int64_t *index, float *out) {
    int64_t b = b0;
    for (; b + 8 <= fours; b += 8) {
        /* Eight batch rows: eight independent accumulator chains (vpdpbusd's latency needs
         * more than four to issue one per cycle), each weight vector loaded once for eight. */
        const uint8_t *x0 = x + b * kpad, *x1 = x0 + kpad, *x2 = x1 + kpad, *x3 = x2 + kpad,
                      *x4 = x3 + kpad, *x5 = x4 + kpad, *x6 = x5 + kpad, *x7 = x6 + kpad;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
                a6 = a0, a7 = a0;
        const int8_t *p = block;
        for (int64_t k = 0; k < kpad; k += 4, p += 4 * BLOCK) {
            __m512i w = LOADZ(p);
            DOT4Z(a0, QUADZ(x0, k), w);
            DOT4Z(a1, QUADZ(x1, k), w);
            DOT4Z(a2, QUADZ(x2, k), w);
            DOT4Z(a3, QUADZ(x3, k), w);
            DOT4Z(a4, QUADZ(x4, k), w);
            DOT4Z(a5, QUADZ(x5, k), w);
            DOT4Z(a6, QUADZ(x6, k), w);
            DOT4Z(a7, QUADZ(x7, k), w);
        }
        __m512i sums[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
        for (int r = 0; r < 8; r++) {
            finish_vnni(sums[r], scale, corr, j, cols, table + index[b + r] * cols,
                        out + (b + r) * cols);
        }
    }
    for (; b + 4 <= fours; b += 4) {
        const uint8_t *x0 = x + b * kpad, *x1 = x0 + kpad, *x2 = x1 + kpad, *x3 = x2 + kpad;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        const int8_t *p = block;
        for (int64_t k = 0; k < kpad; k += 4, p += 4 * BLOCK) {
            __m512i w = LOADZ(p);
            DOT4Z(a0, QUADZ(x0, k), w);
            DOT4Z(a1, QUADZ(x1, k), w);
            DOT4Z(a2, QUADZ(x2, k), w);
            DOT4Z(a3, QUADZ(x3, k), w);
        }
        finish_vnni(a0, scale, corr, j, cols, table + index[b] * cols, out + b * cols);
        finish_vnni(a1, scale, corr, j, cols, table + index[b + 1] * cols, out + (b + 1) * cols);
        finish_vnni(a2, scale, corr, j, cols, table + index[b + 2] * cols, out + (b + 2) * cols);
        finish_vnni(a3, scale, corr, j, cols, table + index[b + 3] * cols, out + (b + 3) * cols);
    }
}

#define TWO(r)                              \
    {                                       \
        __m512i u = QUADZ(x##r, k);         \
        DOT4Z(a##r, u, w0);                 \
        DOT4Z(c##r, u, w1);                 \
    }

/* Two blocks (32 output rows) for batch rows 0 .. eights - 1, eight at a time: each broadcast
 * quad of inputs feeds both blocks' weight vectors, so a vpdpbusd costs 10/16 of a load where
 * one block costs 9/8. */
__attribute__((target(VNNI_TARGET))) static inline void two_blocks_vnni(
    const int8_t *block, const float *scale, const float *corr, int64_t j, int64_t cols, int64_t kpad,
    const uint8_t *x, int64_t eights, const float *table, const int64_t *index, float *out) {
    for (int64_t b = 0; b < eights; b += 8) {
        const uint8_t *x0 = x + b * kpad, *x1 = x0 + kpad, *x2 = x1 + kpad, *x3 = x2 + kpad,
                      *x4 = x3 + kpad, *x5 = x4 + kpad, *x6 = x5 + kpad, *x7 = x6 + kpad;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
                a7 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0, c4 = a0, c5 = a0, c6 = a0, c7 = a0;
        const int8_t *p = block, *q = block + BLOCK * kpad;
        for (int64_t k = 0; k < kpad; k += 4, p += 4 * BLOCK, q += 4 * BLOCK) {
            __m512i w0 = LOADZ(p), w1 = LOADZ(q);
            TWO(0) TWO(1) TWO(2) TWO(3) TWO(4) TWO(5) TWO(6) TWO(7)
        }
        __m512i sums[8] = {a0, a1, a2, a3, a4, a5, a6, a7}, more[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        for (int r = 0; r < 8; r++) {
            const float *row = table + index[b + r] * cols;
            finish_vnni(sums[r], scale, corr, j, cols, row, out + (b + r) * cols);
            finish_vnni(more[r], scale, corr, j + BLOCK, cols, row, out + (b + r) * cols);
        }
    }
}

__attribute__((target(VNNI_TARGET))) static void qmatmul_vnni(const int8_t *packed, const float *scale,
                                                              const float *corr, int64_t j0,
                                                              int64_t j1, int64_t cols, int64_t kpad,
                                                              const uint8_t *x, int64_t batch,
                                                              const float *table,
                                                              const int64_t *index, float *out) {
    int64_t fours = batch & ~(int64_t)3, eights = batch & ~(int64_t)7;
    int64_t j = j0;
    for (; eights && j + BLOCK < j1; j += 2 * BLOCK) {
        const int8_t *block = packed + j * kpad;
        two_blocks_vnni(block, scale, corr, j, cols, kpad, x, eights, table, index, out);
        one_block_vnni(block, scale, corr, j, cols, kpad, x, eights, fours, table, index, out);
        one_block_vnni(block + BLOCK * kpad, scale, corr, j + BLOCK, cols, kpad, x, eights, fours, table,
                       index, out);
    }
    for (; fours && j < j1; j += BLOCK) {
        one_block_vnni(packed + j * kpad, scale, corr, j, cols, kpad, x, 0, fours, table, index, out);
    }
    if (batch > fours) {
        few_rows_vnni(packed, scale, corr, j0, j1, cols, kpad, x + fours * kpad, (int)(batch - fours),
                      table, index + fours, out + fours * cols);
    }
}

#ifdef LSTMBOT_AMX
/* AMX (Intel's tile unit, Sapphire Rapids and later): vpdpbusd on whole tiles. A tile is up to
 * 16 rows of 64 bytes; tdpbusd C += A . B takes A as 16 batch rows x 64 unsigned inputs and B as
 * 16 rows of 64 bytes, each row the 4 signed weights of 16 outputs for 4 consecutive inputs:
 * exactly one block's layout above, so B for inputs k .. k+63 of a block is the 1024 contiguous
 * bytes at block + 16 * k (stride 64), and the weights need no second copy. C is 16 x 16 int32:
 * the same exact sums as vpdpbusd's, finished by the same float code, so the same bytes.
 *
 * Blocking: 2 x 2 tiles of C (32 batch rows x 32 outputs) per pass over k, four loads for four
 * tile products (tiles 0-3 C, 4-5 A, 6-7 B). Inputs past the last multiple of 64 (kpad is only a
 * multiple of 8) are added with vpdpbusd after the tiles are stored. Batch rows past the last
 * multiple of 16 are padded to a tile with zero rows, so they share the one pass over the weights
 * (a second pass for them with VNNI made a batch of 40 slower than one of 64). Under 8 rows
 * (AMX_MIN_BATCH) the tiles would be mostly padding and the VNNI kernel is quicker (at batch 8 the
 * two take the same time on the shipped model's shapes).
 *
 * Measured on one core of a Xeon with AMX, the shipped model's three products, batch 64: 880 us
 * with VNNI, ~310 us here; the weights (3 MB) no longer fit its 2 MB L2, and the product is
 * bound by the stream from L3 more than by the tiles (~65 us of tdpbusd). */
#define AMX_TARGET "amx-tile,amx-int8," VNNI_TARGET
#define AMX_MIN_BATCH 8

/* Kernel calls that used the tiles: the benchmarks read it to say which path ran. */
static atomic_long amx_calls;

long lstmbot_qkernel_amx_calls(void) { return atomic_load_explicit(&amx_calls, memory_order_relaxed); }

typedef struct {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config_t;

/* Inputs kmain .. kpad - 1 of the first `rows` of one C tile's 16 batch rows (vpdpbusd, as qmatmul_vnni), then the
 * scaling into out: the same IEEE operations as finish_avx2, lane for lane, on 16 lanes at once
 * (its two 8-lane halves made the product ~15% slower at batch 64). */
__attribute__((target(AMX_TARGET))) static void finish_amx(const int32_t *sums, int rows,
                                                           const int8_t *block,
                                                           int64_t kmain, int64_t kpad,
                                                           const uint8_t *xg, const float *scale,
                                                           const float *corr, int64_t j,
                                                           int64_t cols, const float *table,
                                                           const int64_t *index, float *out) {
    for (int m = 0; m < rows; m++) {
        __m512i acc = _mm512_load_si512((const void *)(sums + 16 * m));
        const uint8_t *xr = xg + m * kpad;
        for (int64_t k = kmain; k < kpad; k += 4) DOT4Z(acc, QUADZ(xr, k), LOADZ(block + k * BLOCK));
        if (j + BLOCK <= cols) {
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale + j));
            v = _mm512_sub_ps(v, _mm512_loadu_ps(corr + j));
            _mm512_storeu_ps(out + m * cols + j, _mm512_add_ps(v, _mm512_loadu_ps(table + index[m] * cols + j)));
        } else { /* the last block of outputs that are not a multiple of 16 */
            finish_vnni(acc, scale, corr, j, cols, table + index[m] * cols, out + m * cols);
        }
    }
}

/* One pass over k for C tiles (a, b) in {0, 1} x {0, 1} present where `two_b` / `two_j`:
 * A tiles from batch groups xa, xb; B tiles from blocks w0, w1. */
#define AMX_PASS(two_b, two_j)                                          \
    for (int64_t k = 0; k < kmain; k += 64) {                           \
        for (int64_t l = 0; l < ahead; l += 64) _mm_prefetch(soon + (k >> 6) * ahead + l, _MM_HINT_T1); \
        _tile_loadd(4, xa + k, kpad);                                   \
        _tile_loadd(6, w0 + k * BLOCK, 64);                             \
        _tile_dpbusd(0, 4, 6);                                          \
        if (two_j) {                                                    \
            _tile_loadd(7, w1 + k * BLOCK, 64);                         \
            _tile_dpbusd(1, 4, 7);                                      \
        }                                                               \
        if (two_b) {                                                    \
            _tile_loadd(5, xb + k, kpad);                               \
            _tile_dpbusd(2, 5, 6);                                      \
            if (two_j) _tile_dpbusd(3, 5, 7);                           \
        }                                                               \
    }

__attribute__((target(AMX_TARGET))) static void qmatmul_amx(const int8_t *packed, const float *scale,
                                                            const float *corr, int64_t j0,
                                                            int64_t j1, int64_t cols, int64_t kpad,
                                                            const uint8_t *x, int64_t batch,
                                                            const float *table,
                                                            const int64_t *index, float *out) {
    if (batch < AMX_MIN_BATCH) {
        qmatmul_vnni(packed, scale, corr, j0, j1, cols, kpad, x, batch, table, index, out);
        return;
    }
    /* Groups of 16 batch rows; the last rows (batch % 16) are copied into a group padded with
     * zero rows, whose sums are dropped: they share the pass over the weights with the others. */
    int64_t full = batch / 16, tail = batch % 16, groups = full + (tail > 0);
    uint8_t *padded = NULL;
    if (tail) {
        padded = aligned_alloc(64, 16 * kpad);
        if (padded == NULL) {
            qmatmul_vnni(packed, scale, corr, j0, j1, cols, kpad, x, batch, table, index, out);
            return;
        }
        memcpy(padded, x + full * 16 * kpad, tail * kpad);
        memset(padded + tail * kpad, 0, (16 - tail) * kpad);
    }
    atomic_fetch_add_explicit(&amx_calls, 1, memory_order_relaxed);
    /* Loaded on every call: the tile configuration is per thread, and other code in this thread
     * (another library's AMX kernels) may have changed it since. */
    tile_config_t config = {0};
    config.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        config.rows[t] = 16;
        config.colsb[t] = 64;
    }
    _tile_loadconfig(&config);
    int64_t kmain = kpad & ~(int64_t)63;
    int32_t sums[4][256] __attribute__((aligned(64)));
    for (int64_t j = j0; j < j1; j += 2 * BLOCK) {
        int two_j = j + BLOCK < j1;
        const int8_t *w0 = packed + j * kpad, *w1 = w0 + BLOCK * kpad;
        /* The next pair of blocks is prefetched into L2 while this one is computed, a share at
         * each step of k of each pass (the hardware prefetchers alone left the tile loads
         * waiting on L3: ~25% slower at batch 64; two or four pairs ahead were no quicker). */
        int64_t passes = (groups + 1) / 2, steps = passes * (kmain / 64);
        int64_t ahead = j + 4 * BLOCK <= j1 && steps ? (2 * BLOCK * kpad / steps + 63) & ~(int64_t)63 : 0;
        for (int64_t g = 0; g < groups; g += 2) {
            int two_b = g + 1 < groups;
            const char *soon = (const char *)(w0 + 2 * BLOCK * kpad) + (g / 2) * (kmain / 64) * ahead;
            const uint8_t *xa = g < full ? x + g * 16 * kpad : padded;
            const uint8_t *xb = g + 1 < full ? xa + 16 * kpad : padded;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            if (two_b && two_j) {
                AMX_PASS(1, 1)
            } else if (two_j) {
                AMX_PASS(0, 1)
            } else if (two_b) {
                AMX_PASS(1, 0)
            } else {
                AMX_PASS(0, 0)
            }
            _tile_stored(0, sums[0], 64);
            _tile_stored(1, sums[1], 64);
            _tile_stored(2, sums[2], 64);
            _tile_stored(3, sums[3], 64);
            for (int tb = 0; tb <= two_b; tb++) {
                int64_t b = (g + tb) * 16;
                int rows = g + tb < full ? 16 : (int)tail;
                for (int tj = 0; tj <= two_j; tj++) {
                    finish_amx(sums[2 * tb + tj], rows, tj ? w1 : w0, kmain, kpad, tb ? xb : xa, scale,
                               corr, j + tj * BLOCK, cols, table, index + b, out + b * cols);
                }
            }
        }
    }
    _tile_release();
    free(padded);
}
#endif
#endif

typedef void (*kernel_fn)(const int8_t *, const float *, const float *, int64_t, int64_t, int64_t,
                          int64_t, const uint8_t *, int64_t, const float *, const int64_t *, float *);

#ifdef LSTMBOT_AMX
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18
#endif

/* 1: this process may use AMX tiles; 0: the CPU has no AMX-INT8 (or the module was built
 * without the AMX kernel); a negative errno: the CPU has it but Linux refused the tile state
 * (arch_prctl ARCH_REQ_XCOMP_PERM; a kernel older than 5.16 answers EINVAL). Asked once. */
#ifndef LSTMBOT_AMX
long lstmbot_qkernel_amx_calls(void) { return 0; }
#endif

int lstmbot_qkernel_amx(void) {
#ifdef LSTMBOT_AMX
    static _Atomic int answer = 2; /* 2: not asked yet */
    int known = atomic_load(&answer);
    if (known != 2) return known;
    unsigned int eax, ebx, ecx, edx;
    int found = 0;
    /* CPUID.(7, 0):EDX bit 24 AMX-TILE, bit 25 AMX-INT8 */
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx >> 24 & 1) && (edx >> 25 & 1)) {
        found = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 1 : -errno;
    }
    atomic_store(&answer, found);
    return found;
#else
    return 0;
#endif
}

/* 4: AMX (tiles for batches of 8 rows and more, AVX-512 VNNI below), 3: AVX-512 VNNI, 2: AVX2,
 * 1: plain C; the generator reports it (and the benchmarks print it). LSTMBOT_QKERNEL_ISA=3
 * (or 2, or 1) caps it, so tests can run every path on one machine. */
int lstmbot_qkernel_isa(void) {
    int cap = 4;
    const char *wanted = getenv("LSTMBOT_QKERNEL_ISA");
    if (wanted != NULL && wanted[0] >= '1' && wanted[0] <= '4') cap = wanted[0] - '0';
#ifdef LSTMBOT_X86
    __builtin_cpu_init();
    if (cap >= 3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        return cap >= 4 && lstmbot_qkernel_amx() == 1 ? 4 : 3;
    /* the AVX2 cell update also uses FMA */
    if (cap >= 2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
    return 1;
}

/* --- the cell update ---------------------------------------------------------------------
 * h, c from the gate sums z (Keras order i, f, c, o: z[b] is four blocks of `units`), with
 * sigmoid(x) = 0.5 tanh(x/2) + 0.5 and tanh as Eigen's rational approximation (a few float32
 * ulp; core/numba_kernel.py has the same in numba), eight units at a time with AVX2 and FMA; the
 * scalar code (plain path, AVX2 tail) fuses the same operations with fmaf, so it writes the same
 * bytes. (On x86 the plain path calls libm for fmaf: its cell is ~3x slower for it, and only
 * CPUs without AVX2 run it.) */
/* The approximation's constants, one place for all three widths: |x| is clamped to TANH_CLAMP,
 * then tanh(x) = x * P(x^2) / Q(x^2), each polynomial by Horner's rule from its first entry. */
#define TANH_CLAMP 7.9053111f
static const float TANH_P[7] = {-2.76076847742355e-16f, 2.00018790482477e-13f, -8.60467152213735e-11f,
                                5.12229709037114e-08f,  1.48572235717979e-05f, 6.37261928875436e-04f,
                                4.89352455891786e-03f};
static const float TANH_Q[4] = {1.19825839466702e-06f, 1.18534705686654e-04f, 2.26843463243900e-03f,
                                4.89352518554385e-03f};

static inline float rational_tanh(float x) {
    x = x < -TANH_CLAMP ? -TANH_CLAMP : x;
    x = x > TANH_CLAMP ? TANH_CLAMP : x;
    float x2 = x * x;
    float p = TANH_P[0];
    for (int k = 1; k < 7; k++) p = fmaf(p, x2, TANH_P[k]);
    float q = TANH_Q[0];
    for (int k = 1; k < 4; k++) q = fmaf(q, x2, TANH_Q[k]);
    return x * p / q;
}

/* One unit of the cell: the AVX2 lanes' operations one for one (fmaf where they fuse), so the
 * plain path and the AVX2 tail write the same bytes as the vector lanes. */
static inline void cell_unit(const float *zb, int64_t units, int64_t u, float c, float *h_out,
                             float *c_out) {
    float i = fmaf(0.5f, rational_tanh(0.5f * zb[u]), 0.5f);
    float f = fmaf(0.5f, rational_tanh(0.5f * zb[units + u]), 0.5f);
    float g = rational_tanh(zb[2 * units + u]);
    float o = fmaf(0.5f, rational_tanh(0.5f * zb[3 * units + u]), 0.5f);
    float cell = fmaf(f, c, i * g);
    *c_out = cell;
    *h_out = o * rational_tanh(cell);
}

static void cell_plain(const float *z, const float *c, float *h_out, float *c_out, int64_t batch,
                       int64_t units) {
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t u = 0; u < units; u++) {
            int64_t at = b * units + u;
            cell_unit(z + b * 4 * units, units, u, c[at], h_out + at, c_out + at);
        }
    }
}

#ifdef LSTMBOT_X86
/* rational_tanh on eight floats: the same polynomial, as fused multiply-adds. */
__attribute__((target("avx2,fma"))) static inline __m256 tanh8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-TANH_CLAMP)), _mm256_set1_ps(TANH_CLAMP));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(TANH_P[0]);
    for (int k = 1; k < 7; k++) p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(TANH_P[k]));
    __m256 q = _mm256_set1_ps(TANH_Q[0]);
    for (int k = 1; k < 4; k++) q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(TANH_Q[k]));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

/* Units u .. units - 1 of one batch row: eight at a time, then one at a time. */
__attribute__((target("avx2,fma"))) static inline void cell_row_avx2(const float *zb, const float *cb,
                                                                     float *hob, float *cob,
                                                                     int64_t units, int64_t u) {
    const __m256 half = _mm256_set1_ps(0.5f);
    for (; u + 8 <= units; u += 8) {
        __m256 i = _mm256_fmadd_ps(half, tanh8(_mm256_mul_ps(half, _mm256_loadu_ps(zb + u))), half);
        __m256 f = _mm256_fmadd_ps(half, tanh8(_mm256_mul_ps(half, _mm256_loadu_ps(zb + units + u))), half);
        __m256 g = tanh8(_mm256_loadu_ps(zb + 2 * units + u));
        __m256 o = _mm256_fmadd_ps(half, tanh8(_mm256_mul_ps(half, _mm256_loadu_ps(zb + 3 * units + u))), half);
        __m256 cell = _mm256_fmadd_ps(f, _mm256_loadu_ps(cb + u), _mm256_mul_ps(i, g));
        _mm256_storeu_ps(cob + u, cell);
        _mm256_storeu_ps(hob + u, _mm256_mul_ps(o, tanh8(cell)));
    }
    for (; u < units; u++) cell_unit(zb, units, u, cb[u], hob + u, cob + u);
}

/* Eight units at a time; a tail of units % 8 goes through the scalar code (always the same
 * units, so a row's result never depends on the batch). */
__attribute__((target("avx2,fma"))) static void cell_avx2(const float *z, const float *c,
                                                          float *h_out, float *c_out,
                                                          int64_t batch, int64_t units) {
    for (int64_t b = 0; b < batch; b++) {
        cell_row_avx2(z + b * 4 * units, c + b * units, h_out + b * units, c_out + b * units, units, 0);
    }
}

/* tanh8 on sixteen floats: the same IEEE operations lane by lane, so the same bytes. */
__attribute__((target(VNNI_TARGET ",fma"))) static inline __m512 tanh16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-TANH_CLAMP)), _mm512_set1_ps(TANH_CLAMP));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(TANH_P[0]);
    for (int k = 1; k < 7; k++) p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(TANH_P[k]));
    __m512 q = _mm512_set1_ps(TANH_Q[0]);
    for (int k = 1; k < 4; k++) q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(TANH_Q[k]));
    return _mm512_div_ps(_mm512_mul_ps(x, p), q);
}

/* Sixteen units at a time, then the AVX2 row code for the rest. */
__attribute__((target(VNNI_TARGET ",fma"))) static void cell_avx512(const float *z, const float *c,
                                                                   float *h_out, float *c_out,
                                                                   int64_t batch, int64_t units) {
    const __m512 half = _mm512_set1_ps(0.5f);
    for (int64_t b = 0; b < batch; b++) {
        const float *zb = z + b * 4 * units;
        const float *cb = c + b * units;
        float *hob = h_out + b * units;
        float *cob = c_out + b * units;
        int64_t u = 0;
        for (; u + 16 <= units; u += 16) {
            __m512 i = _mm512_fmadd_ps(half, tanh16(_mm512_mul_ps(half, _mm512_loadu_ps(zb + u))), half);
            __m512 f = _mm512_fmadd_ps(half, tanh16(_mm512_mul_ps(half, _mm512_loadu_ps(zb + units + u))), half);
            __m512 g = tanh16(_mm512_loadu_ps(zb + 2 * units + u));
            __m512 o = _mm512_fmadd_ps(half, tanh16(_mm512_mul_ps(half, _mm512_loadu_ps(zb + 3 * units + u))), half);
            __m512 cell = _mm512_fmadd_ps(f, _mm512_loadu_ps(cb + u), _mm512_mul_ps(i, g));
            _mm512_storeu_ps(cob + u, cell);
            _mm512_storeu_ps(hob + u, _mm512_mul_ps(o, tanh16(cell)));
        }
        cell_row_avx2(zb, cb, hob, cob, units, u);
    }
}
#endif

typedef void (*cell_fn)(const float *, const float *, float *, float *, int64_t, int64_t);

/* The product and the cell update of one instruction set, picked together once (a cell picked
 * apart from the product once fell back to cell_plain on VNNI machines, 9x slower). The 8- and
 * 16-wide cells are the same operations at two vector widths. */
typedef struct {
    kernel_fn product;
    cell_fn cell;
} path_t;

static const path_t paths[] = {
    {qmatmul_plain, cell_plain},
#ifdef LSTMBOT_X86
    {qmatmul_avx2, cell_avx2},
    {qmatmul_vnni, cell_avx512},
#endif
#ifdef LSTMBOT_AMX
    {qmatmul_amx, cell_avx512},
#endif
};

/* Picked on first use; concurrent first calls pick the same entry, and the atomic pointer
 * publishes both functions at once. */
static const path_t *the_path(void) {
    static _Atomic(const path_t *) chosen;
    const path_t *path = atomic_load_explicit(&chosen, memory_order_acquire);
    if (path == NULL) {
        path = &paths[lstmbot_qkernel_isa() - 1];
        atomic_store_explicit(&chosen, path, memory_order_release);
    }
    return path;
}

/* --- a second thread for big steps ----------------------------------------------------------
 * A big product is cut into chunks of weight blocks (a big cell update into chunks of batch
 * rows) that the calling thread and one helper thread claim in turn, so each core streams part
 * of the weights. The caller never waits for the helper to start: if it is slow to wake, or
 * descheduled on a busy machine, the caller claims the remaining chunks itself and waits only
 * for a chunk the helper is computing. Steps follow one another every ~100 us, far quicker than
 * a thread wakes from sleep, so the helper spins (pause instructions) for a while after each
 * job before it sleeps on a condition variable. One caller at a time uses the helper; a
 * concurrent caller (another model's worker thread) computes on its own thread. */
typedef void (*chunk_fn)(const void *ctx, int64_t chunk);

typedef struct {
    chunk_fn run;
    const void *ctx; /* on the caller's stack: it waits for every chunk before returning */
    int64_t chunks;
} job_t;

#define SPIN_ROUNDS 100000    /* ~2 ms of pause instructions before the helper sleeps */
#define MIN_SPLIT_MACS 65536  /* smaller products are not worth sharing */
#define MIN_SPLIT_CELLS 8192  /* nor smaller cell updates (batch * units) */
#define CHUNKS 16
#define CLOSED 0xffffUL       /* chunk index meaning "no chunk left to claim" */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
/* (ticket << 16) | next chunk to claim: one atomic word, so a late helper can never claim a
 * chunk of a job other than the one whose ticket it saw. */
static atomic_ulong claims = CLOSED;
static atomic_long chunks_done;
static job_t job;
static int helper_running;
static int threads_wanted = 1;

static inline void cpu_relax(void) {
#ifdef LSTMBOT_X86
    _mm_pause();
#endif
}

static void run_chunks(unsigned long ticket) {
    unsigned long state = atomic_load_explicit(&claims, memory_order_acquire);
    for (;;) {
        if ((state >> 16) != ticket || (int64_t)(state & CLOSED) >= job.chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&claims, &state, state + 1, memory_order_acq_rel,
                                                   memory_order_acquire)) {
            continue;
        }
        job.run(job.ctx, (int64_t)(state & CLOSED));
        atomic_fetch_add_explicit(&chunks_done, 1, memory_order_release);
        state = atomic_load_explicit(&claims, memory_order_acquire);
    }
}

static void *helper_main(void *unused) {
    (void)unused;
    unsigned long seen = atomic_load(&claims) >> 16;
    for (;;) {
        unsigned long ticket;
        int spins = 0;
        while ((ticket = atomic_load_explicit(&claims, memory_order_acquire) >> 16) == seen &&
               spins < SPIN_ROUNDS) {
            cpu_relax();
            spins++;
        }
        if (ticket == seen) {
            pthread_mutex_lock(&wake_lock);
            while ((ticket = atomic_load_explicit(&claims, memory_order_acquire) >> 16) == seen) {
                pthread_cond_wait(&wake_cond, &wake_lock);
            }
            pthread_mutex_unlock(&wake_lock);
        }
        seen = ticket;
        run_chunks(ticket);
    }
    return NULL;
}

/* A forked child has no helper thread (only the forking thread survives a fork). */
static void after_fork_in_child(void) {
    pthread_mutex_init(&pool_lock, NULL);
    pthread_mutex_init(&wake_lock, NULL);
    pthread_cond_init(&wake_cond, NULL);
    helper_running = 0;
}

static int start_helper(void) {
    static int atfork_done;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_in_child);
        atfork_done = 1;
    }
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&thread, &attr, helper_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

/* Every chunk of run(ctx, 0 .. chunks - 1), shared with the helper when `big` and allowed. */
static void run_all(chunk_fn run, const void *ctx, int64_t chunks, int big) {
    if (threads_wanted < 2 || !big || chunks < 2 || pthread_mutex_trylock(&pool_lock) != 0) {
        for (int64_t c = 0; c < chunks; c++) run(ctx, c);
        return;
    }
    if (!helper_running) helper_running = start_helper();
    /* Close the previous job's claims before its fields are overwritten (all its chunks are
     * done: the previous caller waited for them). */
    unsigned long ticket = (atomic_load(&claims) >> 16) + 1;
    atomic_store_explicit(&claims, ((ticket - 1) << 16) | CLOSED, memory_order_release);
    job = (job_t){run, ctx, chunks};
    atomic_store_explicit(&chunks_done, 0, memory_order_relaxed);
    pthread_mutex_lock(&wake_lock);
    atomic_store_explicit(&claims, ticket << 16, memory_order_release);
    pthread_cond_signal(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
    run_chunks(ticket);
    while (atomic_load_explicit(&chunks_done, memory_order_acquire) < chunks) cpu_relax();
    pthread_mutex_unlock(&pool_lock);
}

/* 1 (the default): every step on the calling thread; 2: big products and cell updates shared
 * with the helper thread (quicker only where nothing else needs the second core). Any other
 * value leaves the setting as it is. Returns the setting now in force. */
int lstmbot_qkernel_threads(int wanted) {
    if (wanted == 1 || wanted == 2) threads_wanted = wanted;
    return threads_wanted;
}

typedef struct {
    kernel_fn kernel;
    const int8_t *packed;
    const float *scale, *corr;
    int64_t rows, cols, kpad, batch, chunk_rows;
    const uint8_t *x;
    const float *table;
    const int64_t *index;
    float *out;
} product_t;

static void product_chunk(const void *ctx, int64_t chunk) {
    const product_t *p = ctx;
    int64_t j0 = chunk * p->chunk_rows;
    int64_t j1 = j0 + p->chunk_rows < p->rows ? j0 + p->chunk_rows : p->rows;
    p->kernel(p->packed, p->scale, p->corr, j0, j1, p->cols, p->kpad, p->x, p->batch, p->table,
              p->index, p->out);
}

/* Rows a kernel call covers when a product runs backwards: the spans go from the last to the
 * first, each read forwards (the hardware prefetchers follow ascending addresses). */
#define BACKWARDS_SPAN (4 * BLOCK)
const int lstmbot_backwards_below = 8; /* rows: see lstmbot_qmatmul */

/* The product; `backwards`: its output rows in descending spans, the same sums and so the same
 * bytes (each row's sum is exact and depends on no other row). Why: a lone row's step reads
 * every weight once (3 MB for the shipped model) and a core's L2 holds less (2 MB on Intel's
 * server cores), so read in the same order at every step each weight has been evicted by the
 * time it is read again, and every step streams from L3. Steps that alternate the direction
 * (core/qpython.c, lstm_run) first read what the step before read last, still in L2. */
void lstmbot_qmatmul(const int8_t *packed, const float *scale, const float *corr, int64_t rows,
                     int64_t cols, int64_t kpad, const uint8_t *x, int64_t batch, const float *table,
                     const int64_t *index, float *out, int backwards) {
    kernel_fn kernel = the_path()->product;
    int big = rows * kpad * batch >= MIN_SPLIT_MACS;
    if (threads_wanted < 2 || !big) {
        /* Backwards only for few rows and one thread: two threads' L2s hold the weights between
         * them (each its own chunks, the same at every step), and from lstmbot_backwards_below
         * rows the product is bound by its arithmetic and the AMX kernel prefetches the blocks
         * after the ones it reads (a backwards span has none after it): 64 x 400 lost 3-5%. */
        backwards = backwards && batch < lstmbot_backwards_below;
        if (!backwards) {
            /* One call for all the rows (the chunks would run one after another in the same
             * order): the AMX kernel then loads its tile configuration once per product. */
            kernel(packed, scale, corr, 0, rows, cols, kpad, x, batch, table, index, out);
            return;
        }
        for (int64_t j = (rows - 1) / BACKWARDS_SPAN * BACKWARDS_SPAN; j >= 0; j -= BACKWARDS_SPAN) {
            int64_t end = j + BACKWARDS_SPAN < rows ? j + BACKWARDS_SPAN : rows;
            kernel(packed, scale, corr, j, end, cols, kpad, x, batch, table, index, out);
        }
        return;
    }
    int64_t blocks = rows / BLOCK;
    int64_t chunk_rows = ((blocks + CHUNKS - 1) / CHUNKS) * BLOCK;
    product_t p = {kernel, packed, scale, corr, rows, cols, kpad, batch, chunk_rows, x, table, index, out};
    run_all(product_chunk, &p, (rows + chunk_rows - 1) / chunk_rows, big);
}

typedef struct {
    cell_fn cell;
    const float *z, *c;
    float *h_out, *c_out;
    int64_t batch, units, chunk_rows;
} cell_job_t;

static void cell_chunk(const void *ctx, int64_t chunk) {
    const cell_job_t *j = ctx;
    int64_t b0 = chunk * j->chunk_rows;
    int64_t n = b0 + j->chunk_rows < j->batch ? j->chunk_rows : j->batch - b0;
    j->cell(j->z + b0 * 4 * j->units, j->c + b0 * j->units, j->h_out + b0 * j->units,
            j->c_out + b0 * j->units, n, j->units);
}

void lstmbot_lstm_cell(const float *z, const float *c, float *h_out, float *c_out, int64_t batch,
                       int64_t units) {
    cell_fn cell = the_path()->cell;
    if (batch <= 0) return;
    int64_t chunk_rows = (batch + CHUNKS - 1) / CHUNKS;
    cell_job_t j = {cell, z, c, h_out, c_out, batch, units, chunk_rows};
    run_all(cell_chunk, &j, (batch + chunk_rows - 1) / chunk_rows, batch * units >= MIN_SPLIT_CELLS);
}

