/* The novelty index's search in C (core/novelty.py): for each position of a sample, the longest
 * prefix of the rest of it that occurs in the book, by binary search over the book's suffix
 * array within the bucket of the query's first one or two tokens. Integers only: the same
 * answers as core/numba_novelty.py, which serves where the C kernel was not built.
 * Compiled into the extension module core._qkernel (setup.py).
 */
#include <stdint.h>

/* Length of the common prefix of text[start:] and query[q:], and in *order: 1 when the text
 * suffix sorts before the query, -1 after it, 0 when the whole query matched. */
static int64_t common_prefix(const int32_t *text, int64_t n, int64_t start, const int32_t *query,
                             int64_t m, int64_t q, int *order) {
    int64_t k = 0;
    while (start + k < n && q + k < m) {
        int32_t a = text[start + k], b = query[q + k];
        if (a != b) {
            *order = a < b ? 1 : -1;
            return k;
        }
        k++;
    }
    *order = q + k == m ? 0 : 1; /* the text ran out first: a proper prefix sorts first */
    return k;
}

void lstmbot_matching_statistics(const int32_t *text, int64_t n, const int64_t *suffixes,
                                 const int32_t *query, int64_t m, const int64_t *buckets, int64_t vocab,
                                 int64_t depth, int64_t *out) {
    int64_t width = vocab + 1; /* depth 2: key t0 * width + t1 + 1, t1 = -1 where the text ends */
    for (int64_t i = 0; i < m; i++) {
        out[i] = 0;
        int64_t t0 = query[i];
        if (t0 < 0 || t0 >= vocab) continue; /* a token the book never has */
        int64_t lo, hi, best;
        if (depth == 1) {
            lo = buckets[t0];
            hi = buckets[t0 + 1];
            best = 1;
        } else {
            if (buckets[t0 * width] == buckets[(t0 + 1) * width]) continue;
            int64_t t1 = i + 1 < m ? query[i + 1] : -1;
            if (t1 < 0 || t1 >= vocab) {
                out[i] = 1;
                continue;
            }
            int64_t key = t0 * width + t1 + 1;
            lo = buckets[key];
            hi = buckets[key + 1];
            best = 2;
        }
        if (lo == hi) {
            out[i] = best - 1; /* the prefix but its last token occurs */
            continue;
        }
        while (lo < hi) { /* the first suffix in the bucket that does not sort before query[i:] */
            int64_t mid = (lo + hi) / 2;
            int order;
            int64_t k = common_prefix(text, n, suffixes[mid], query, m, i, &order);
            best = k > best ? k : best;
            if (order == 0) break; /* full match: nothing longer is possible */
            if (order > 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        out[i] = best;
    }
}
