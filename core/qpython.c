/* The extension module core._qkernel: Python entry points for the C kernel (qkernel.c, qsample.c,
 * qsearch.c), called from core/c_kernel.py.
 *
 * Each takes numpy arrays through the buffer protocol, checks their element type, dimensions and
 * C-contiguity (as a compiled signature would: the kernels trust their pointers), and releases the
 * GIL while it computes. A call costs well under a microsecond of overhead, which matters: a
 * step of the shipped model makes about ten of them, and ctypes (~5 us a call with its argument
 * checks) made a one-row step ~50% slower than numba's dispatch. Neither numba nor numpy's C API
 * is needed (numba and LLVM cost ~110 MB of resident memory; see core/lstm_step.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void lstmbot_qmatmul(const int8_t *packed, const float *scale, const float *corr, int64_t rows, int64_t cols,
                     int64_t kpad, const uint8_t *x, int64_t batch, const float *table, const int64_t *index,
                     float *out, int backwards);
extern const int lstmbot_backwards_below;
void lstmbot_lstm_cell(const float *z, const float *c, float *h_out, float *c_out, int64_t batch, int64_t units);
void lstmbot_quantize(const float *x, int64_t batch, int64_t k, uint8_t *out, int64_t kpad, int64_t offset);
int64_t lstmbot_draw_plain(const float *logits, int64_t rows, int64_t vocab, const double *temps,
                           const double *uniforms, int64_t masked, double greedy_below, double *cdf,
                           int64_t *picks);
void lstmbot_matching_statistics(const int32_t *text, int64_t n, const int64_t *suffixes, const int32_t *query,
                                 int64_t m, const int64_t *buckets, int64_t vocab, int64_t depth, int64_t *out);

/* Element kinds: numpy's buffer format characters for each (int64 is "l" on LP64, "q" elsewhere). */
enum kind { I8, U8, I32, I64, F32, F64 };
static const char *const KIND_NAME[] = {"int8", "uint8", "int32", "int64", "float32", "float64"};
static const Py_ssize_t KIND_SIZE[] = {1, 1, 4, 8, 4, 8};

static int format_is(const char *format, enum kind kind) {
    if (format == NULL) format = "B";
    if (*format == '@' || *format == '=' || *format == '<') format++;
    if (format[0] == '\0' || format[1] != '\0') return 0;
    switch (kind) {
        case I8: return format[0] == 'b';
        case U8: return format[0] == 'B';
        case I32: return format[0] == 'i' || (format[0] == 'l' && sizeof(long) == 4);
        case I64: return format[0] == 'q' || (format[0] == 'l' && sizeof(long) == 8);
        case F32: return format[0] == 'f';
        case F64: return format[0] == 'd';
    }
    return 0;
}

/* Up to 12 arrays per call, released together. */
typedef struct {
    Py_buffer views[12];
    int count;
} held_t;

static void release(held_t *held) {
    for (int i = 0; i < held->count; i++) PyBuffer_Release(&held->views[i]);
    held->count = 0;
}

/* The data of a C-contiguous array of `kind` with `ndim` dimensions (writable if asked), kept in
 * `held`; NULL with TypeError otherwise. shape receives its dimensions. */
static void *take(held_t *held, PyObject *obj, enum kind kind, int ndim, int writable, const char *name,
                  Py_ssize_t *shape) {
    Py_buffer *view = &held->views[held->count];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s %d-d %s array", name,
                     writable ? " writable" : "", ndim, KIND_NAME[kind]);
        return NULL;
    }
    held->count++;
    if (view->ndim != ndim || view->itemsize != KIND_SIZE[kind] || !format_is(view->format, kind)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %d-d %s array, got %d-d format '%s'", name, ndim,
                     KIND_NAME[kind], view->ndim, view->format ? view->format : "B");
        return NULL;
    }
    for (int d = 0; d < ndim; d++) shape[d] = view->shape[d];
    return view->buf;
}

static int want_args(Py_ssize_t nargs, Py_ssize_t wanted, const char *name) {
    if (nargs == wanted) return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, wanted, nargs);
    return 0;
}

static PyObject *shape_error(held_t *held, const char *message) {
    release(held);
    PyErr_SetString(PyExc_ValueError, message);
    return NULL;
}

/* The columns (kpad) of a packed matrix of `rows` rows (a multiple of 16) with `outputs` of them
 * used, and `corr_n` corrections; -1 when the arrays do not describe one. */
static Py_ssize_t packed_columns(Py_ssize_t packed_n, Py_ssize_t rows, Py_ssize_t corr_n, Py_ssize_t outputs) {
    if (rows <= 0 || rows % 16 || packed_n % rows || corr_n != rows || outputs > rows || outputs < 0) return -1;
    Py_ssize_t kpad = packed_n / rows;
    return kpad % 8 ? -1 : kpad;
}

/* One layer's arrays fit together: h, c, h_out and c_out (batch, units); the gates' table rows
 * 4 * units wide; [below, h] within the matrix's kpad columns. */
static int layer_fits(Py_ssize_t kpad, Py_ssize_t below_cols, Py_ssize_t batch, Py_ssize_t units, const Py_ssize_t *cs,
                      const Py_ssize_t *ts, const Py_ssize_t *ho, const Py_ssize_t *co) {
    return kpad >= 0 && below_cols + units <= kpad && cs[0] == batch && cs[1] == units && ts[1] == 4 * units &&
           ho[0] == batch && ho[1] == units && co[0] == batch && co[1] == units;
}

PyDoc_STRVAR(qmatmul_doc, "qmatmul(packed, scale, corr, cols, x, table, index, out, backwards=False)\n--\n\n"
                          "out[b, j] = (sum_k q[j, k] * x[b, k]) * scale[j] - corr[j] + table[index[b], j].\n"
                          "`backwards`: the weights read from the last rows to the first (the same bytes).");

static PyObject *py_qmatmul(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9 && !want_args(nargs, 8, "qmatmul")) return NULL;
    int backwards = nargs == 9 ? PyObject_IsTrue(args[8]) : 0;
    if (backwards < 0) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t packed_n[1], rows[1], corr_n[1], xs[2], ts[2], idx_n[1], os[2];
    long long cols = PyLong_AsLongLong(args[3]);
    if (cols == -1 && PyErr_Occurred()) return NULL;
    const int8_t *packed = take(&held, args[0], I8, 1, 0, "packed", packed_n);
    const float *scale = packed ? take(&held, args[1], F32, 1, 0, "scale", rows) : NULL;
    const float *corr = scale ? take(&held, args[2], F32, 1, 0, "corr", corr_n) : NULL;
    const uint8_t *x = corr ? take(&held, args[4], U8, 2, 0, "x", xs) : NULL;
    const float *table = x ? take(&held, args[5], F32, 2, 0, "table", ts) : NULL;
    const int64_t *index = table ? take(&held, args[6], I64, 1, 0, "index", idx_n) : NULL;
    float *out = index ? take(&held, args[7], F32, 2, 1, "out", os) : NULL;
    if (out == NULL) {
        release(&held);
        return NULL;
    }
    if (packed_columns(packed_n[0], rows[0], corr_n[0], cols) != xs[1] || os[0] != xs[0] || os[1] != cols ||
        idx_n[0] != xs[0] || ts[1] != cols)
        return shape_error(&held, "qmatmul: the arrays' shapes do not fit together");
    for (Py_ssize_t b = 0; b < xs[0]; b++) /* a row index out of the table would read past it */
        if (index[b] < 0 || index[b] >= ts[0]) return shape_error(&held, "qmatmul: a table index is out of range");
    Py_BEGIN_ALLOW_THREADS
    lstmbot_qmatmul(packed, scale, corr, rows[0], cols, xs[1], x, xs[0], table, index, out, backwards);
    Py_END_ALLOW_THREADS
    release(&held);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(cell_doc, "lstm_cell(z, c, h_out, c_out)\n--\n\n"
                       "The LSTM cell from its gate sums z (batch, 4 * units) and c (batch, units).");

static PyObject *py_lstm_cell(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 4, "lstm_cell")) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t zs[2], cs[2], hs[2], c2[2];
    const float *z = take(&held, args[0], F32, 2, 0, "z", zs);
    const float *c = z ? take(&held, args[1], F32, 2, 0, "c", cs) : NULL;
    float *h_out = c ? take(&held, args[2], F32, 2, 1, "h_out", hs) : NULL;
    float *c_out = h_out ? take(&held, args[3], F32, 2, 1, "c_out", c2) : NULL;
    if (c_out == NULL) {
        release(&held);
        return NULL;
    }
    if (zs[0] != cs[0] || zs[1] != 4 * cs[1] || hs[0] != cs[0] || hs[1] != cs[1] || c2[0] != cs[0] ||
        c2[1] != cs[1])
        return shape_error(&held, "lstm_cell: the arrays' shapes do not fit together");
    Py_BEGIN_ALLOW_THREADS
    lstmbot_lstm_cell(z, c, h_out, c_out, cs[0], cs[1]);
    Py_END_ALLOW_THREADS
    release(&held);
    Py_RETURN_NONE;
}

/* [below, h] on the 7-bit grid, the product (gates' table rows added), the cell: one layer's
 * step, the GIL released. 0, or -1 with MemoryError set. */
static int layer_step(const int8_t *packed, const float *scale, const float *corr, Py_ssize_t rows,
                      Py_ssize_t kpad, const float *below, Py_ssize_t below_cols, const float *h, const float *c,
                      const float *table, const int64_t *index, float *h_out, float *c_out, Py_ssize_t batch,
                      Py_ssize_t units, int backwards) {
    uint8_t *x = calloc((size_t)(batch * kpad) + 1, 1);
    float *z = malloc(sizeof(float) * (size_t)(batch * 4 * units) + 1);
    if (x == NULL || z == NULL) {
        free(x);
        free(z);
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    lstmbot_quantize(below, batch, below_cols, x, kpad, 0);
    lstmbot_quantize(h, batch, units, x, kpad, below_cols);
    lstmbot_qmatmul(packed, scale, corr, rows, 4 * units, kpad, x, batch, table, index, z, backwards);
    lstmbot_lstm_cell(z, c, h_out, c_out, batch, units);
    Py_END_ALLOW_THREADS
    free(x);
    free(z);
    return 0;
}

PyDoc_STRVAR(layer_doc, "lstm_layer(packed, scale, corr, below, h, c, table, index, h_out, c_out, backwards)\n--\n\n"
                        "One LSTM layer's step: [below, h] onto the 7-bit grid, the product with the\n"
                        "gates' table rows added, the cell; the new h and c into h_out and c_out.\n"
                        "`backwards`: the product reads its weights from the last rows to the first\n"
                        "(the same bytes; see lstm_run).");

/* What lstm_layer (core/lstm_step.py) did in six calls and four temporary arrays, in one: at batch
 * 1 a step of the shipped model spent ~40 us in Python around ~60 us of products (1 x 400 chars:
 * 46 ms on an AVX2 CPU where the products alone take 29 ms). The same functions in the same
 * order, so the same bytes. */
static PyObject *py_lstm_layer(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 11, "lstm_layer")) return NULL;
    int backwards = PyObject_IsTrue(args[10]);
    if (backwards < 0) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t packed_n[1], rows[1], corr_n[1], bs[2], hs[2], cs[2], ts[2], idx_n[1], ho[2], co[2];
    const int8_t *packed = take(&held, args[0], I8, 1, 0, "packed", packed_n);
    const float *scale = packed ? take(&held, args[1], F32, 1, 0, "scale", rows) : NULL;
    const float *corr = scale ? take(&held, args[2], F32, 1, 0, "corr", corr_n) : NULL;
    /* `below` has no columns for the first layer: its buffer may then be any pointer */
    const float *below = corr ? take(&held, args[3], F32, 2, 0, "below", bs) : NULL;
    int ok = corr != NULL && !PyErr_Occurred();
    const float *h = ok ? take(&held, args[4], F32, 2, 0, "h", hs) : NULL;
    const float *c = h ? take(&held, args[5], F32, 2, 0, "c", cs) : NULL;
    const float *table = c ? take(&held, args[6], F32, 2, 0, "table", ts) : NULL;
    const int64_t *index = table ? take(&held, args[7], I64, 1, 0, "index", idx_n) : NULL;
    float *h_out = index ? take(&held, args[8], F32, 2, 1, "h_out", ho) : NULL;
    float *c_out = h_out ? take(&held, args[9], F32, 2, 1, "c_out", co) : NULL;
    if (c_out == NULL) {
        release(&held);
        return NULL;
    }
    Py_ssize_t batch = hs[0], units = hs[1];
    Py_ssize_t kpad = packed_columns(packed_n[0], rows[0], corr_n[0], 4 * units);
    if (!layer_fits(kpad, bs[1], batch, units, cs, ts, ho, co) || bs[0] != batch || idx_n[0] != batch)
        return shape_error(&held, "lstm_layer: the arrays' shapes do not fit together");
    for (Py_ssize_t b = 0; b < batch; b++) /* a row index out of the table would read past it */
        if (index[b] < 0 || index[b] >= ts[0]) return shape_error(&held, "lstm_layer: a table index is out of range");
    int failed = layer_step(packed, scale, corr, rows[0], kpad, below, bs[1], h, c, table, index, h_out, c_out,
                            batch, units, backwards);
    release(&held);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

/* The draw's two settings (draw_plain, lstm_run): the token never drawn, and the temperature
 * under which the draw is greedy. 0, or -1 with the error set. */
static int draw_settings(PyObject *masked_obj, PyObject *greedy_obj, long long *masked, double *greedy_below) {
    *masked = PyLong_AsLongLong(masked_obj);
    if (*masked == -1 && PyErr_Occurred()) return -1;
    *greedy_below = PyFloat_AsDouble(greedy_obj);
    return *greedy_below == -1.0 && PyErr_Occurred() ? -1 : 0;
}

#define NOT_DRAWABLE "logits must be finite or -inf (masked), with at least one finite per row"

/* --- whole steps --------------------------------------------------------------------------
 * A model's arrays for whole steps, checked once: each layer (packed, scale, corr, table, h, c,
 * h_out, c_out), from the bottom (the first takes the tokens as its table rows, the others row
 * 0), then the dense layer (packed, scale, corr, bias) into logits. The same functions in the
 * same order as lstm_layer and qmatmul called one by one, so the same bytes. */
#define MAX_LAYERS 8

typedef struct {
    const int8_t *packed;
    const float *scale, *corr, *table;
    float *h[2], *c[2]; /* [0] the state a step reads, [1] where it writes; a run swaps them */
    Py_ssize_t rows, kpad, units, table_rows;
    uint8_t *x; /* [below, h] on the grid, (batch, kpad); its padding columns stay zero */
} layer_spec_t;

typedef struct {
    layer_spec_t layer[MAX_LAYERS];
    Py_ssize_t n_layers, batch, outputs;
    const int8_t *packed;
    const float *scale, *corr, *bias;
    Py_ssize_t rows, kpad;
    uint8_t *x;      /* the top h on the grid, (batch, kpad) */
    float *z;        /* one layer's gates, (batch, 4 * widest units) */
    int64_t *zeros;  /* table row 0 for every batch row */
    held_t held[MAX_LAYERS + 1];
} model_t;

static void model_free(model_t *m) {
    for (Py_ssize_t i = 0; i < m->n_layers; i++) free(m->layer[i].x);
    for (int i = 0; i <= MAX_LAYERS; i++) release(&m->held[i]);
    free(m->x);
    free(m->z);
    free(m->zeros);
}

/* Check `layers` and `dense` for `batch` rows and `outputs` logits; `writable_state`: h and c are
 * written too (a run of several steps swaps them with h_out and c_out). 0, or -1 with an error
 * set (the caller frees m either way). */
static int model_parse(model_t *m, PyObject *layers_obj, PyObject *dense, Py_ssize_t batch, Py_ssize_t outputs,
                       int writable_state, const char *name) {
    memset(m, 0, sizeof(*m));
    m->batch = batch;
    m->outputs = outputs;
    PyObject *layers = PySequence_Fast(layers_obj, "layers must be a sequence");
    if (layers == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(layers), below_cols = 0, widest = 0;
    if (n < 1 || n > MAX_LAYERS) {
        Py_DECREF(layers);
        PyErr_Format(PyExc_ValueError, "%s: no layers (or more than %d)", name, MAX_LAYERS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++, m->n_layers = i) {
        PyObject *layer = PySequence_Fast_GET_ITEM(layers, i);
        if (!PyTuple_Check(layer) || PyTuple_GET_SIZE(layer) != 8) {
            Py_DECREF(layers);
            PyErr_Format(PyExc_TypeError, "%s: each layer is a tuple of 8 arrays", name);
            return -1;
        }
        held_t *lh = &m->held[i];
        layer_spec_t *L = &m->layer[i];
        Py_ssize_t pn[1], rows[1], cn[1], ts[2], hs[2], cs[2], ho[2], co[2];
        L->packed = take(lh, PyTuple_GET_ITEM(layer, 0), I8, 1, 0, "packed", pn);
        L->scale = L->packed ? take(lh, PyTuple_GET_ITEM(layer, 1), F32, 1, 0, "scale", rows) : NULL;
        L->corr = L->scale ? take(lh, PyTuple_GET_ITEM(layer, 2), F32, 1, 0, "corr", cn) : NULL;
        L->table = L->corr ? take(lh, PyTuple_GET_ITEM(layer, 3), F32, 2, 0, "table", ts) : NULL;
        L->h[0] = L->table ? take(lh, PyTuple_GET_ITEM(layer, 4), F32, 2, writable_state, "h", hs) : NULL;
        L->c[0] = L->h[0] ? take(lh, PyTuple_GET_ITEM(layer, 5), F32, 2, writable_state, "c", cs) : NULL;
        L->h[1] = L->c[0] ? take(lh, PyTuple_GET_ITEM(layer, 6), F32, 2, 1, "h_out", ho) : NULL;
        L->c[1] = L->h[1] ? take(lh, PyTuple_GET_ITEM(layer, 7), F32, 2, 1, "c_out", co) : NULL;
        if (L->c[1] == NULL) {
            Py_DECREF(layers);
            return -1;
        }
        L->units = hs[1];
        L->rows = rows[0];
        L->table_rows = ts[0];
        L->kpad = packed_columns(pn[0], rows[0], cn[0], 4 * L->units);
        if (!layer_fits(L->kpad, below_cols, batch, L->units, cs, ts, ho, co) || hs[0] != batch ||
            (i > 0 && ts[0] < 1)) {
            Py_DECREF(layers);
            PyErr_Format(PyExc_ValueError, "%s: a layer's arrays do not fit together", name);
            return -1;
        }
        L->x = calloc((size_t)(batch * L->kpad) + 1, 1);
        if (L->x == NULL) {
            Py_DECREF(layers);
            PyErr_NoMemory();
            return -1;
        }
        below_cols = L->units;
        if (L->units > widest) widest = L->units;
    }
    Py_DECREF(layers);
    if (!PyTuple_Check(dense) || PyTuple_GET_SIZE(dense) != 4) {
        PyErr_Format(PyExc_TypeError, "%s: dense is a tuple of 4 arrays", name);
        return -1;
    }
    held_t *dh = &m->held[MAX_LAYERS];
    Py_ssize_t pn[1], rows[1], cn[1], ts[2];
    m->packed = take(dh, PyTuple_GET_ITEM(dense, 0), I8, 1, 0, "packed", pn);
    m->scale = m->packed ? take(dh, PyTuple_GET_ITEM(dense, 1), F32, 1, 0, "scale", rows) : NULL;
    m->corr = m->scale ? take(dh, PyTuple_GET_ITEM(dense, 2), F32, 1, 0, "corr", cn) : NULL;
    m->bias = m->corr ? take(dh, PyTuple_GET_ITEM(dense, 3), F32, 2, 0, "bias", ts) : NULL;
    if (m->bias == NULL) return -1;
    m->rows = rows[0];
    m->kpad = packed_columns(pn[0], rows[0], cn[0], outputs);
    if (m->kpad < 0 || below_cols > m->kpad || ts[0] < 1 || ts[1] != outputs) {
        PyErr_Format(PyExc_ValueError, "%s: the dense arrays do not fit together", name);
        return -1;
    }
    m->x = calloc((size_t)(batch * m->kpad) + 1, 1);
    m->z = malloc(sizeof(float) * (size_t)(batch * 4 * widest) + 1);
    m->zeros = calloc((size_t)batch + 1, sizeof(int64_t));
    if (m->x == NULL || m->z == NULL || m->zeros == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Whether every token indexes the first layer's table. */
static int tokens_fit(const model_t *m, const int64_t *tokens) {
    for (Py_ssize_t b = 0; b < m->batch; b++)
        if (tokens[b] < 0 || tokens[b] >= m->layer[0].table_rows) return 0;
    return 1;
}

/* Layers `first` .. the top from each one's h[0], c[0] into h[1], c[1] (layer 0 takes `tokens`
 * as its table rows, the others row 0; a layer above `first` reads the new h of the one below),
 * then the logits; every product read backwards where asked (lstmbot_qmatmul). */
static void layers_from(const model_t *m, Py_ssize_t first, const int64_t *tokens, float *logits, int backwards) {
    Py_ssize_t batch = m->batch;
    const float *below = first > 0 ? m->layer[first - 1].h[1] : NULL;
    Py_ssize_t below_cols = first > 0 ? m->layer[first - 1].units : 0;
    for (Py_ssize_t i = first; i < m->n_layers; i++) {
        const layer_spec_t *L = &m->layer[i];
        lstmbot_quantize(below, batch, below_cols, L->x, L->kpad, 0);
        lstmbot_quantize(L->h[0], batch, L->units, L->x, L->kpad, below_cols);
        lstmbot_qmatmul(L->packed, L->scale, L->corr, L->rows, 4 * L->units, L->kpad, L->x, batch, L->table,
                        i == 0 ? tokens : m->zeros, m->z, backwards);
        lstmbot_lstm_cell(m->z, L->c[0], L->h[1], L->c[1], batch, L->units);
        below = L->h[1];
        below_cols = L->units;
    }
    lstmbot_quantize(below, batch, below_cols, m->x, m->kpad, 0);
    lstmbot_qmatmul(m->packed, m->scale, m->corr, m->rows, m->outputs, m->kpad, m->x, batch, m->bias, m->zeros,
                    logits, backwards);
}

/* One step from each layer's h[0], c[0] into h[1], c[1], then the logits (no GIL needed). */
static void model_step(const model_t *m, const int64_t *tokens, float *logits) {
    layers_from(m, 0, tokens, logits, 0);
}

/* --- steps in rounds (lstm_run) -----------------------------------------------------------
 * Layer 0's product needs only its own h: W0 . h0(t) (the gates of step t + 1 before the token's
 * table row is added) can be read as soon as h0(t) is known, beside the upper layers' products of
 * step t. So a run reads, each step, the upper layers (B) and layer 0 for the next step (A) in
 * either order, and alternates: A B, then B' A' backwards (lstmbot_qmatmul's `backwards`), then
 * A B, ... Each step first reads what the step before read last, while it is still in L2. Step
 * by step the order is forced (A, B, then the next A: the token in between), and at batch 1
 * with 3 MB of weights and a 2 MB L2, A and B each came from L3 at every step.
 *
 * A's product goes through a table row of -0.0, which adds nothing to any float (x + -0.0 is x,
 * -0.0 included), so `pending` holds the finishing's sums * scale - corr exactly; the step then
 * adds the token's table row as the finishing would have: the same bytes as model_step. */
typedef struct {
    float *pending;         /* A: layer 0's gates for the next step, without the token's row */
    const float *neg_zero;  /* one table row of -0.0 */
} rounds_t;

static void layer0_ahead(const model_t *m, const rounds_t *r, const float *h0, int backwards) {
    const layer_spec_t *L = &m->layer[0];
    lstmbot_quantize(h0, m->batch, L->units, L->x, L->kpad, 0);
    lstmbot_qmatmul(L->packed, L->scale, L->corr, L->rows, 4 * L->units, L->kpad, L->x, m->batch, r->neg_zero,
                    m->zeros, r->pending, backwards);
}

/* model_step(tokens) in a round: layer 0 from `pending` and the tokens' rows, the upper layers,
 * the logits, and unless `last`, the next step's A (first when forwards, last when backwards).
 * Reads each layer's h[0], c[0] and writes h[1], c[1], as model_step. */
static void model_round(const model_t *m, const rounds_t *r, const int64_t *tokens, float *logits,
                        int backwards, int last) {
    Py_ssize_t batch = m->batch;
    const layer_spec_t *L0 = &m->layer[0];
    Py_ssize_t gates = 4 * L0->units;
    for (Py_ssize_t b = 0; b < batch; b++) {
        const float *row = L0->table + tokens[b] * gates, *ahead = r->pending + b * gates;
        float *z = m->z + b * gates;
        for (Py_ssize_t u = 0; u < gates; u++) z[u] = ahead[u] + row[u];
    }
    lstmbot_lstm_cell(m->z, L0->c[0], L0->h[1], L0->c[1], batch, L0->units);
    if (!backwards && !last) layer0_ahead(m, r, L0->h[1], 0);
    layers_from(m, 1, tokens, logits, backwards);
    if (backwards && !last) layer0_ahead(m, r, L0->h[1], 1);
}

PyDoc_STRVAR(step_doc, "lstm_step(tokens, layers, dense, logits)\n--\n\n"
                       "A whole step: each layer of `layers`, a sequence of (packed, scale, corr, table,\n"
                       "h, c, h_out, c_out), from the bottom (the first takes `tokens` as its table rows,\n"
                       "the others row 0), then `dense`, (packed, scale, corr, bias), into logits.");

/* A whole step of the model in one call: at batch 1 the Python between the products (a layer's
 * arrays, the dense product's padding, the loop) was ~20% of a step. */
static PyObject *py_lstm_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 4, "lstm_step")) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t tn[1], ls[2];
    const int64_t *tokens = take(&held, args[0], I64, 1, 0, "tokens", tn);
    float *logits = tokens ? take(&held, args[3], F32, 2, 1, "logits", ls) : NULL;
    if (logits == NULL) {
        release(&held);
        return NULL;
    }
    model_t m;
    int failed = model_parse(&m, args[1], args[2], tn[0], ls[1], 0, "lstm_step");
    if (!failed && (ls[0] != tn[0] || !tokens_fit(&m, tokens))) {
        PyErr_SetString(PyExc_ValueError, "lstm_step: the tokens or logits do not fit the layers");
        failed = 1;
    }
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        model_step(&m, tokens, logits);
        Py_END_ALLOW_THREADS
    }
    model_free(&m);
    release(&held);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(run_doc, "lstm_run(tokens, logits, layers, dense, temps, uniforms, masked, greedy_below, cdf)\n--\n\n"
                      "len(uniforms) times: draw one token per row from `logits` (draw_plain with that\n"
                      "step's uniforms) into that row of `tokens`, then step the model on them into\n"
                      "`logits`. Each step reads h, c and writes h_out, c_out, then they swap: after an\n"
                      "odd number of steps the state is in h_out, c_out.");

/* Plain-temperature generation, several steps in one call: at batch 1 the Python around each
 * step (the draw's arrays, the loop, the layers' tuples) was ~9 ms of a 1 x 400 of ~37 ms on the
 * AVX2 machine here. The same draw and the same step, in the same order, so the same tokens. */
static PyObject *py_lstm_run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 9, "lstm_run")) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t ts[2], ls[2], tn[1], us[2], cn[1];
    long long masked;
    double greedy_below;
    if (draw_settings(args[6], args[7], &masked, &greedy_below) != 0) return NULL;
    int64_t *tokens = take(&held, args[0], I64, 2, 1, "tokens", ts);
    float *logits = tokens ? take(&held, args[1], F32, 2, 1, "logits", ls) : NULL;
    const double *temps = logits ? take(&held, args[4], F64, 1, 0, "temps", tn) : NULL;
    const double *uniforms = temps ? take(&held, args[5], F64, 2, 0, "uniforms", us) : NULL;
    double *cdf = uniforms ? take(&held, args[8], F64, 1, 1, "cdf", cn) : NULL;
    if (cdf == NULL) {
        release(&held);
        return NULL;
    }
    Py_ssize_t steps = us[0], batch = us[1];
    if (ts[0] != steps || ts[1] != batch || ls[0] != batch || tn[0] != batch || cn[0] < ls[1])
        return shape_error(&held, "lstm_run: one token and uniform per step and row, a temperature per row");
    model_t m;
    int failed = model_parse(&m, args[2], args[3], batch, ls[1], 1, "lstm_run");
    if (!failed && m.layer[0].table_rows < ls[1]) {
        PyErr_SetString(PyExc_ValueError, "lstm_run: a drawn token would fall outside the first layer's table");
        failed = 1;
    }
    int64_t status = 0;
    rounds_t r = {NULL, NULL};
    /* Rounds where the weights' stream bounds a step (at more rows, adding the token's rows
     * apart from the product costs more than it saves: 64 x 400 was 3-5% slower) */
    int rounds = batch < lstmbot_backwards_below;
    if (!failed && rounds) {
        Py_ssize_t gates = 4 * m.layer[0].units;
        float *neg_zero = malloc(sizeof(float) * (size_t)gates);
        r.pending = malloc(sizeof(float) * (size_t)(batch * gates) + 1);
        r.neg_zero = neg_zero;
        if (neg_zero == NULL || r.pending == NULL) {
            PyErr_NoMemory();
            failed = 1;
        } else {
            for (Py_ssize_t u = 0; u < gates; u++) neg_zero[u] = -0.0f;
        }
    }
    if (!failed) {
        Py_BEGIN_ALLOW_THREADS
        if (rounds && steps > 0) layer0_ahead(&m, &r, m.layer[0].h[0], 1);
        for (Py_ssize_t s = 0; s < steps && status == 0; s++) {
            int64_t *drawn = tokens + s * batch;
            status = lstmbot_draw_plain(logits, batch, ls[1], temps, uniforms + s * batch, masked, greedy_below,
                                        cdf, drawn);
            if (status != 0) break;
            if (rounds) model_round(&m, &r, drawn, logits, (int)(s & 1), s == steps - 1);
            else model_step(&m, drawn, logits);
            for (Py_ssize_t i = 0; i < m.n_layers; i++) { /* the new state is the next step's input */
                layer_spec_t *L = &m.layer[i];
                float *h = L->h[0], *c = L->c[0];
                L->h[0] = L->h[1], L->c[0] = L->c[1];
                L->h[1] = h, L->c[1] = c;
            }
        }
        Py_END_ALLOW_THREADS
        if (status != 0) {
            PyErr_SetString(PyExc_ValueError, NOT_DRAWABLE);
            failed = 1;
        }
    }
    free(r.pending);
    free((void *)r.neg_zero);
    model_free(&m);
    release(&held);
    if (failed) return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(quantize_doc, "quantize_into(x, out, offset)\n--\n\n"
                           "out[:, offset:offset + k] = x (batch, k) on the 7-bit grid, ties to even.");

static PyObject *py_quantize_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 3, "quantize_into")) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t xs[2], os[2];
    long long offset = PyLong_AsLongLong(args[2]);
    if (offset == -1 && PyErr_Occurred()) return NULL;
    const float *x = take(&held, args[0], F32, 2, 0, "x", xs);
    uint8_t *out = x ? take(&held, args[1], U8, 2, 1, "out", os) : NULL;
    if (out == NULL) {
        release(&held);
        return NULL;
    }
    if (os[0] != xs[0] || offset < 0 || offset + xs[1] > os[1])
        return shape_error(&held, "quantize_into: x does not fit in out at that offset");
    /* Small (a few thousand values): the GIL is kept, releasing it would cost more. */
    lstmbot_quantize(x, xs[0], xs[1], out, os[1], offset);
    release(&held);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(draw_doc, "draw_plain(logits, temps, uniforms, masked, greedy_below, cdf, picks)\n--\n\n"
                       "One token per row into picks; ValueError for a row with no usable token.");

static PyObject *py_draw_plain(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 7, "draw_plain")) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t ls[2], tn[1], un[1], cn[1], pn[1];
    long long masked;
    double greedy_below;
    if (draw_settings(args[3], args[4], &masked, &greedy_below) != 0) return NULL;
    const float *logits = take(&held, args[0], F32, 2, 0, "logits", ls);
    const double *temps = logits ? take(&held, args[1], F64, 1, 0, "temps", tn) : NULL;
    const double *uniforms = temps ? take(&held, args[2], F64, 1, 0, "uniforms", un) : NULL;
    double *cdf = uniforms ? take(&held, args[5], F64, 1, 1, "cdf", cn) : NULL;
    int64_t *picks = cdf ? take(&held, args[6], I64, 1, 1, "picks", pn) : NULL;
    if (picks == NULL) {
        release(&held);
        return NULL;
    }
    if (tn[0] != ls[0] || un[0] != ls[0] || pn[0] != ls[0] || cn[0] < ls[1])
        return shape_error(&held, "draw_plain: one temperature, uniform and pick per row, a cdf per token");
    int64_t status = lstmbot_draw_plain(logits, ls[0], ls[1], temps, uniforms, masked, greedy_below, cdf, picks);
    release(&held);
    if (status != 0) {
        PyErr_SetString(PyExc_ValueError, NOT_DRAWABLE);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(matching_doc, "matching_statistics(text, suffixes, query, buckets, vocab, depth, out)\n--\n\n"
                           "out[i]: the longest prefix of query[i:] found in text (core/novelty.py).");

static PyObject *py_matching_statistics(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (!want_args(nargs, 7, "matching_statistics")) return NULL;
    held_t held = {.count = 0};
    Py_ssize_t tn[1], sn[1], qn[1], bn[1], on[1];
    long long vocab = PyLong_AsLongLong(args[4]);
    if (vocab == -1 && PyErr_Occurred()) return NULL;
    long long depth = PyLong_AsLongLong(args[5]);
    if (depth == -1 && PyErr_Occurred()) return NULL;
    const int32_t *text = take(&held, args[0], I32, 1, 0, "text", tn);
    const int64_t *suffixes = text ? take(&held, args[1], I64, 1, 0, "suffixes", sn) : NULL;
    const int32_t *query = suffixes ? take(&held, args[2], I32, 1, 0, "query", qn) : NULL;
    const int64_t *buckets = query ? take(&held, args[3], I64, 1, 0, "buckets", bn) : NULL;
    int64_t *out = buckets ? take(&held, args[6], I64, 1, 1, "out", on) : NULL;
    if (out == NULL) {
        release(&held);
        return NULL;
    }
    long long keys = depth == 2 ? vocab * (vocab + 1) : vocab;
    if (sn[0] != tn[0] || on[0] != qn[0] || vocab < 1 || (depth != 1 && depth != 2) || bn[0] != keys + 1)
        return shape_error(&held, "matching_statistics: the index's arrays do not fit together");
    Py_BEGIN_ALLOW_THREADS
    lstmbot_matching_statistics(text, tn[0], suffixes, query, qn[0], buckets, vocab, depth, out);
    Py_END_ALLOW_THREADS
    release(&held);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"qmatmul", (PyCFunction)(void (*)(void))py_qmatmul, METH_FASTCALL, qmatmul_doc},
    {"lstm_cell", (PyCFunction)(void (*)(void))py_lstm_cell, METH_FASTCALL, cell_doc},
    {"lstm_layer", (PyCFunction)(void (*)(void))py_lstm_layer, METH_FASTCALL, layer_doc},
    {"lstm_step", (PyCFunction)(void (*)(void))py_lstm_step, METH_FASTCALL, step_doc},
    {"lstm_run", (PyCFunction)(void (*)(void))py_lstm_run, METH_FASTCALL, run_doc},
    {"quantize_into", (PyCFunction)(void (*)(void))py_quantize_into, METH_FASTCALL, quantize_doc},
    {"draw_plain", (PyCFunction)(void (*)(void))py_draw_plain, METH_FASTCALL, draw_doc},
    {"matching_statistics", (PyCFunction)(void (*)(void))py_matching_statistics, METH_FASTCALL, matching_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_qkernel",
    "The generator's int8 product and LSTM cell, the 7-bit grid, the draw and the novelty search in C "
    "(see core/c_kernel.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__qkernel(void) { return PyModule_Create(&module); }
