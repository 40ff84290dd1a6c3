/*
 * cointrail.analysis.clustering._unionfind: the compiled core of the address-clustering
 * union-find (the Python wrapper and the pure-Python fallback are in unionfind.py).
 *
 * Why C: clustering a whole chain means about a billion union operations, and each one must
 * see every earlier one (its roots, the cluster sizes the supercluster guard compares, the merge
 * it reports), so the work cannot be vectorised with numpy; a Python loop spends about a
 * microsecond of interpreter time on every link, where the compiled loop below is bounded by
 * memory latency (a few random reads per link, with the parents of the links ahead prefetched).
 * Only the CPython C API is used; the pure-Python path does the same steps in the same order
 * (path halving included), so both leave identical arrays, which the tests check.
 *
 * Layout: `nodes` is a C-contiguous (capacity, 2) array, uint32 ("compact") or int64 ("wide"):
 * nodes[x, 0] is the parent of x and nodes[x, 1] the size of x's set, valid only while x is a
 * root (the size sits in the root's own cache line, so reading it after a find is free). A root
 * is the smallest id of its set: a union links the younger root under the older one, so
 * parent[x] <= x always holds, which is what makes the one-pass `find_all` exact.
 *
 * union_batch(nodes, n, a, b, guard_size, guard_mask, merges) -> (n_merges, held)
 *   a, b: int64 arrays of m ids in [0, n), checked before anything is changed (ValueError).
 *   guard_size > 0: a link whose mask byte is non-zero (every link when guard_mask is None)
 *   that would join two sets both of size >= guard_size is not applied; it is reported in
 *   `held`, bytes of 5 int64 per record: link index, root of a, root of b, size a, size b.
 *   merges: None or a writable int64 array of >= 3m items, filled with (younger root, older
 *   root, link index) for each union that joined two sets, in link order.
 * find_all(nodes, n): points every element straight at its root, in place.
 * find_many(nodes, n, xs, out): out[i] = root of xs[i] (int64 arrays), with path halving.
 *
 * The GIL is released while the arrays are worked on; a UnionFind must not be shared between
 * threads without a lock.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Bumped when the interface changes; unionfind.py ignores a build with another value. */
#define ABI_VERSION 1

/* Links ahead whose first parent is prefetched: enough to cover a DRAM miss at ~2-4 ns/link. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 16
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------ element access */

/* `wide` is a compile-time constant at every call site below (each kernel is instantiated
 * once for uint32 and once for int64 storage), so these compile to plain loads and stores. */
ALWAYS_INLINE int64_t ld(const void *nodes, int64_t i, const int wide)
{
    return wide ? ((const int64_t *)nodes)[i] : (int64_t)((const uint32_t *)nodes)[i];
}

ALWAYS_INLINE void st(void *nodes, int64_t i, int64_t v, const int wide)
{
    if (wide)
        ((int64_t *)nodes)[i] = v;
    else
        ((uint32_t *)nodes)[i] = (uint32_t)v;
}

ALWAYS_INLINE void prefetch_node(const void *nodes, int64_t x, const int wide)
{
    __builtin_prefetch((const char *)nodes + (size_t)x * (wide ? 16 : 8), 1, 0);
}

/* Root of x, halving the path on the way (every node visited is pointed at its grandparent). */
ALWAYS_INLINE int64_t find_root(void *nodes, int64_t x, const int wide)
{
    int64_t p = ld(nodes, 2 * x, wide);
    while (p != x) {
        int64_t g = ld(nodes, 2 * p, wide);
        if (g == p)
            return p;
        st(nodes, 2 * x, g, wide);
        x = g;
        p = ld(nodes, 2 * x, wide);
    }
    return x;
}

/* ------------------------------------------------------------------ kernels */

typedef struct {
    int64_t *items;
    size_t len; /* in int64 items */
    size_t cap;
} HeldBuf;

static int held_push(HeldBuf *h, int64_t i, int64_t ra, int64_t rb, int64_t sa, int64_t sb)
{
    if (h->len + 5 > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 5 * 64;
        int64_t *items = realloc(h->items, cap * sizeof(int64_t));
        if (!items)
            return -1;
        h->items = items;
        h->cap = cap;
    }
    int64_t *r = h->items + h->len;
    r[0] = i;
    r[1] = ra;
    r[2] = rb;
    r[3] = sa;
    r[4] = sb;
    h->len += 5;
    return 0;
}

/* Applies the links in order; returns the number of merges, or -1 when out of memory (the
 * links before the failing one are applied). */
ALWAYS_INLINE Py_ssize_t union_kernel(void *nodes, const int64_t *a, const int64_t *b,
                                      Py_ssize_t m, int64_t guard, const uint8_t *mask,
                                      int64_t *merges, HeldBuf *held, const int wide)
{
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (i + PREFETCH_AHEAD < m) {
            prefetch_node(nodes, a[i + PREFETCH_AHEAD], wide);
            prefetch_node(nodes, b[i + PREFETCH_AHEAD], wide);
        }
        int64_t ra = find_root(nodes, a[i], wide);
        int64_t rb = find_root(nodes, b[i], wide);
        if (ra == rb)
            continue;
        int64_t sa = ld(nodes, 2 * ra + 1, wide);
        int64_t sb = ld(nodes, 2 * rb + 1, wide);
        if (guard > 0 && sa >= guard && sb >= guard && (!mask || mask[i])) {
            if (held_push(held, i, ra, rb, sa, sb) < 0)
                return -1;
            continue;
        }
        int64_t older = ra < rb ? ra : rb;
        int64_t younger = ra < rb ? rb : ra;
        st(nodes, 2 * younger, older, wide);
        st(nodes, 2 * older + 1, sa + sb, wide);
        if (merges) {
            merges[3 * k] = younger;
            merges[3 * k + 1] = older;
            merges[3 * k + 2] = i;
        }
        k++;
    }
    return k;
}

static Py_ssize_t union_narrow(void *nodes, const int64_t *a, const int64_t *b, Py_ssize_t m,
                               int64_t guard, const uint8_t *mask, int64_t *merges, HeldBuf *held)
{
    return union_kernel(nodes, a, b, m, guard, mask, merges, held, 0);
}

static Py_ssize_t union_wide(void *nodes, const int64_t *a, const int64_t *b, Py_ssize_t m,
                             int64_t guard, const uint8_t *mask, int64_t *merges, HeldBuf *held)
{
    return union_kernel(nodes, a, b, m, guard, mask, merges, held, 1);
}

/* One forward pass: parent[x] <= x, so parent[parent[x]] is already x's root when x is reached. */
ALWAYS_INLINE void find_all_kernel(void *nodes, int64_t n, const int wide)
{
    for (int64_t x = 0; x < n; x++) {
        int64_t p = ld(nodes, 2 * x, wide);
        if (p != x)
            st(nodes, 2 * x, ld(nodes, 2 * p, wide), wide);
    }
}

static void find_all_narrow(void *nodes, int64_t n) { find_all_kernel(nodes, n, 0); }
static void find_all_wide(void *nodes, int64_t n) { find_all_kernel(nodes, n, 1); }

ALWAYS_INLINE void find_many_kernel(void *nodes, const int64_t *xs, int64_t *out, Py_ssize_t m,
                                    const int wide)
{
    for (Py_ssize_t i = 0; i < m; i++) {
        if (i + PREFETCH_AHEAD < m)
            prefetch_node(nodes, xs[i + PREFETCH_AHEAD], wide);
        out[i] = find_root(nodes, xs[i], wide);
    }
}

static void find_many_narrow(void *nodes, const int64_t *xs, int64_t *out, Py_ssize_t m)
{
    find_many_kernel(nodes, xs, out, m, 0);
}

static void find_many_wide(void *nodes, const int64_t *xs, int64_t *out, Py_ssize_t m)
{
    find_many_kernel(nodes, xs, out, m, 1);
}

/* Index of the first id outside [0, n), or -1 (the common case costs one vectorised pass). */
static Py_ssize_t first_out_of_range(const int64_t *v, Py_ssize_t m, int64_t n)
{
    uint64_t bad = 0;
    for (Py_ssize_t i = 0; i < m; i++)
        bad |= (uint64_t)v[i] >= (uint64_t)n;
    if (!bad)
        return -1;
    for (Py_ssize_t i = 0; i < m; i++)
        if ((uint64_t)v[i] >= (uint64_t)n)
            return i;
    return -1;
}

/* ------------------------------------------------------------------ buffers */

enum { KIND_NODES, KIND_INT64, KIND_MASK };

/* Gets a C-contiguous buffer of the expected element type; for KIND_NODES sets *wide. */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable, int kind, const char *name,
                      int *wide)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<')
        f++;
    int ok = f[0] != '\0' && f[1] == '\0';
    char c = f[0];
    int is_i64 = view->itemsize == 8 && (c == 'q' || (c == 'l' && sizeof(long) == 8));
    int is_u32 = view->itemsize == 4 && (c == 'I' || (c == 'L' && sizeof(long) == 4));
    switch (kind) {
    case KIND_NODES:
        ok = ok && (is_i64 || is_u32);
        if (ok)
            *wide = is_i64;
        break;
    case KIND_INT64:
        ok = ok && is_i64;
        break;
    default:
        ok = ok && view->itemsize == 1 && (c == '?' || c == 'B' || c == 'b');
        break;
    }
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: unexpected element type '%s' (itemsize %zd)", name,
                     view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static int check_nodes(Py_buffer *nodes, Py_ssize_t n)
{
    if (n < 0 || nodes->len / (2 * nodes->itemsize) < n) {
        PyErr_Format(PyExc_ValueError, "nodes holds fewer than n=%zd elements", n);
        return -1;
    }
    return 0;
}

static int check_ids(const int64_t *v, Py_ssize_t m, Py_ssize_t n, const char *name)
{
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS
    bad = first_out_of_range(v, m, n);
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "%s[%zd] = %lld is not an id in [0, %zd)", name, bad,
                     (long long)v[bad], n);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ module functions */

static PyObject *py_union_batch(PyObject *self, PyObject *args)
{
    PyObject *nodes_obj, *a_obj, *b_obj, *mask_obj, *merges_obj;
    Py_ssize_t n;
    long long guard;
    if (!PyArg_ParseTuple(args, "OnOOLOO:union_batch", &nodes_obj, &n, &a_obj, &b_obj, &guard,
                          &mask_obj, &merges_obj))
        return NULL;
    Py_buffer nodes = {0}, a = {0}, b = {0}, mask = {0}, merges = {0};
    int wide = 0, dummy = 0;
    PyObject *result = NULL;
    HeldBuf held = {NULL, 0, 0};
    if (get_buffer(nodes_obj, &nodes, 1, KIND_NODES, "nodes", &wide) < 0)
        return NULL;
    if (get_buffer(a_obj, &a, 0, KIND_INT64, "a", &dummy) < 0)
        goto done;
    if (get_buffer(b_obj, &b, 0, KIND_INT64, "b", &dummy) < 0)
        goto done;
    if (mask_obj != Py_None && get_buffer(mask_obj, &mask, 0, KIND_MASK, "guard_mask", &dummy) < 0)
        goto done;
    if (merges_obj != Py_None &&
        get_buffer(merges_obj, &merges, 1, KIND_INT64, "merges", &dummy) < 0)
        goto done;
    Py_ssize_t m = a.len / 8;
    if (check_nodes(&nodes, n) < 0)
        goto done;
    if (b.len != a.len) {
        PyErr_SetString(PyExc_ValueError, "a and b differ in length");
        goto done;
    }
    if (mask.obj && mask.len != m) {
        PyErr_SetString(PyExc_ValueError, "guard_mask differs in length from a and b");
        goto done;
    }
    if (merges.obj && merges.len / 8 < 3 * m) {
        PyErr_SetString(PyExc_ValueError, "merges holds fewer than 3 * len(a) items");
        goto done;
    }
    if (check_ids(a.buf, m, n, "a") < 0 || check_ids(b.buf, m, n, "b") < 0)
        goto done;
    Py_ssize_t k;
    Py_BEGIN_ALLOW_THREADS
    k = (wide ? union_wide : union_narrow)(nodes.buf, a.buf, b.buf, m, guard,
                                           mask.obj ? mask.buf : NULL,
                                           merges.obj ? merges.buf : NULL, &held);
    Py_END_ALLOW_THREADS
    if (k < 0) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *held_bytes =
        PyBytes_FromStringAndSize((const char *)held.items, (Py_ssize_t)(held.len * 8));
    if (held_bytes)
        result = Py_BuildValue("(nN)", k, held_bytes);
done:
    free(held.items);
    PyBuffer_Release(&nodes);
    if (a.obj)
        PyBuffer_Release(&a);
    if (b.obj)
        PyBuffer_Release(&b);
    if (mask.obj)
        PyBuffer_Release(&mask);
    if (merges.obj)
        PyBuffer_Release(&merges);
    return result;
}

static PyObject *py_find_all(PyObject *self, PyObject *args)
{
    PyObject *nodes_obj;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On:find_all", &nodes_obj, &n))
        return NULL;
    Py_buffer nodes;
    int wide = 0;
    if (get_buffer(nodes_obj, &nodes, 1, KIND_NODES, "nodes", &wide) < 0)
        return NULL;
    if (check_nodes(&nodes, n) < 0) {
        PyBuffer_Release(&nodes);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    (wide ? find_all_wide : find_all_narrow)(nodes.buf, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&nodes);
    Py_RETURN_NONE;
}

static PyObject *py_find_many(PyObject *self, PyObject *args)
{
    PyObject *nodes_obj, *xs_obj, *out_obj;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OnOO:find_many", &nodes_obj, &n, &xs_obj, &out_obj))
        return NULL;
    Py_buffer nodes = {0}, xs = {0}, out = {0};
    int wide = 0, dummy = 0, ok = 0;
    if (get_buffer(nodes_obj, &nodes, 1, KIND_NODES, "nodes", &wide) < 0)
        return NULL;
    if (get_buffer(xs_obj, &xs, 0, KIND_INT64, "xs", &dummy) < 0)
        goto done;
    if (get_buffer(out_obj, &out, 1, KIND_INT64, "out", &dummy) < 0)
        goto done;
    Py_ssize_t m = xs.len / 8;
    if (check_nodes(&nodes, n) < 0)
        goto done;
    if (out.len < xs.len) {
        PyErr_SetString(PyExc_ValueError, "out is shorter than xs");
        goto done;
    }
    if (check_ids(xs.buf, m, n, "xs") < 0)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    (wide ? find_many_wide : find_many_narrow)(nodes.buf, xs.buf, out.buf, m);
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    PyBuffer_Release(&nodes);
    if (xs.obj)
        PyBuffer_Release(&xs);
    if (out.obj)
        PyBuffer_Release(&out);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"union_batch", py_union_batch, METH_VARARGS,
     "union_batch(nodes, n, a, b, guard_size, guard_mask, merges) -> (n_merges, held)"},
    {"find_all", py_find_all, METH_VARARGS,
     "find_all(nodes, n): point every element at its root, in place."},
    {"find_many", py_find_many, METH_VARARGS,
     "find_many(nodes, n, xs, out): out[i] = root of xs[i]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_unionfind",
    "Compiled core of cointrail's union-find (see unionfind.py).", -1, methods, NULL, NULL, NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__unionfind(void)
{
    PyObject *mod = PyModule_Create(&module);
    if (mod && PyModule_AddIntConstant(mod, "ABI_VERSION", ABI_VERSION) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
