/*
 * cointrail.store._ingestcore: the compiled core of UtxoIngestor (store/ingest.py).
 *
 * Why C: ingesting a block means, per input, a lookup-and-delete in the index of unspent
 * outputs, and per output, an insert there plus a lookup (or insert) in the address-id map,
 * then a row appended to five column buffers. In Python that loop was half of the sync time
 * (about 20 us per transaction: tuple and int objects for every row, dict probes) and its
 * two maps cost 150-215 bytes per unspent output and ~150 bytes per address, which puts the
 * full Bitcoin chain (180 M unspent outputs, 1.2 B addresses) at ~200 GB of RAM. Here the
 * loop runs over the decoder's numpy columns without creating a Python object per row, the
 * column buffers are handed to Arrow without a copy, and both maps are flat open-addressing
 * tables of fixed-width slots:
 *
 * - unspent outputs: 32-byte slots {txid prefix (8 bytes), value, tx_id | vout,
 *   addr_id + 1 | script type | flags}, linear probing, deletion by backward shift (no
 *   tombstones, so churn never bloats the table), split into 1024 partitions that grow one at
 *   a time (x1.25 at 80 % load), so a resize never holds two copies of the whole table. Two
 *   txids that share their first 8 bytes are told apart exactly as the Python `UtxoIndex`
 *   does: on insert, an existing key has its full txid fetched (`txid_of`), and colliding
 *   outputs move to a small side dict keyed by the full txid; BIP 30 duplicates overwrite.
 * - addresses: 8-byte slots {addr_id + 1 (36 bits), 28-bit fingerprint}, 4096 partitions
 *   chosen by 12 more bits of a keyed SipHash-1-3 of (address type, payload); a slot's home
 *   is derived from its fingerprint alone, so a partition grows (and undo deletes by backward
 *   shift) without re-reading any key. Every fingerprint match is verified against the
 *   address's real payload in a fixed-width record file (`<store>.addrkeys`, memory-mapped,
 *   44 bytes per addr_id: type, length, payload zero-padded to 42 bytes): the map is exact,
 *   and the payloads live in the page cache rather than in the process's own memory.
 *
 * Every block is all or nothing: the changes to the unspent-output table are journalled and
 * undone, addresses created by a failed block are removed again (their records tell where),
 * and the column buffers are cut back to where the block started. The record file needs no
 * durability of its own: when an ingest (re)starts, every record is checked against the
 * store's committed addresses table and rewritten if it differs, and the file is truncated
 * to the committed count. One core at a time maps it (an exclusive flock); another one keeps
 * its records in memory.
 *
 * Only the CPython C API and libcrypto (SHA-256 and RIPEMD-160, for p2pk outputs, which are
 * attributed to the p2pkh address of their key) are used. The pure-Python ingest in ingest.py
 * stays the reference and the fallback; the tests check that both write identical rows.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ripemd.h>
#include <openssl/sha.h>

#define CORE_VERSION 2

/* Script type codes: the order of ScriptType in script.py (checked by ingest.py). */
enum {
    T_PUBKEY = 0,
    T_PUBKEYHASH,
    T_SCRIPTHASH,
    T_MULTISIG,
    T_NULLDATA,
    T_WITNESS_V0_KEYHASH,
    T_WITNESS_V0_SCRIPTHASH,
    T_WITNESS_V1_TAPROOT,
    T_WITNESS_UNKNOWN,
    T_WITNESS_MWEB_HOGADDR,
    T_NONSTANDARD,
    T_ANCHOR,
    T_WITNESS_MWEB_PEGIN,
    N_TYPES
};
static const char *TYPE_NAMES[N_TYPES] = {
    "pubkey", "pubkeyhash", "scripthash", "multisig", "nulldata", "witness_v0_keyhash",
    "witness_v0_scripthash", "witness_v1_taproot", "witness_unknown", "witness_mweb_hogaddr",
    "nonstandard", "anchor", "witness_mweb_pegin",
};

/* ------------------------------------------------------------------------------ hashing */

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND                                                                              \
    do {                                                                                      \
        v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);                         \
        v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                              \
        v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                              \
        v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);                         \
    } while (0)

/* SipHash-1-3 (as CPython's str hash) of n bytes with key (k0, k1). */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *in, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t b = ((uint64_t)n) << 56, m;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&m, in + i, 8);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    m = 0;
    memcpy(&m, in + i, n - i);
    b |= m;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t mulhi64(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

static void hash160(const uint8_t *in, size_t n, uint8_t out[20])
{
    uint8_t h[32];
    SHA256_CTX c;
    RIPEMD160_CTX r;
    SHA256_Init(&c);
    SHA256_Update(&c, in, n);
    SHA256_Final(h, &c);
    RIPEMD160_Init(&r);
    RIPEMD160_Update(&r, h, 32);
    RIPEMD160_Final(out, &r);
}

/* ------------------------------------------------------------------ exported buffers */

/* A growable byte buffer that Arrow can wrap without a copy (buffer protocol). While a view
 * is exported, the bytes it covers are never written again: growing copies to a new buffer
 * (the old one lives as long as the view), and the batch is cleared only by replacing it. */
typedef struct {
    PyObject_HEAD
    char *ptr;
    Py_ssize_t len;
    Py_ssize_t cap;
    Py_ssize_t exports;
} BufObject;

static PyTypeObject Buf_Type;

static BufObject *buf_new(Py_ssize_t cap)
{
    BufObject *b = PyObject_New(BufObject, &Buf_Type);
    if (b == NULL)
        return NULL;
    if (cap < 64)
        cap = 64;
    b->ptr = malloc((size_t)cap);
    b->len = 0;
    b->cap = cap;
    b->exports = 0;
    if (b->ptr == NULL) {
        Py_DECREF(b);
        PyErr_NoMemory();
        return NULL;
    }
    return b;
}

static void buf_dealloc(BufObject *b)
{
    free(b->ptr);
    PyObject_Free(b);
}

static int buf_getbuffer(BufObject *b, Py_buffer *view, int flags)
{
    if (PyBuffer_FillInfo(view, (PyObject *)b, b->ptr, b->len, 1, flags) < 0)
        return -1;
    b->exports++;
    return 0;
}

static void buf_releasebuffer(BufObject *b, Py_buffer *view)
{
    (void)view;
    b->exports--;
}

static Py_ssize_t buf_length(BufObject *b) { return b->len; }

static PyBufferProcs buf_as_buffer = {
    (getbufferproc)buf_getbuffer,
    (releasebufferproc)buf_releasebuffer,
};

static PySequenceMethods buf_as_sequence = {.sq_length = (lenfunc)buf_length};

static PyTypeObject Buf_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cointrail.store._ingestcore.Buffer",
    .tp_basicsize = sizeof(BufObject),
    .tp_dealloc = (destructor)buf_dealloc,
    .tp_as_buffer = &buf_as_buffer,
    .tp_as_sequence = &buf_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes of one column of an ingest batch (read-only buffer protocol).",
};

/* Make room for `extra` more bytes. */
static int buf_reserve(BufObject **pb, Py_ssize_t extra)
{
    BufObject *b = *pb;
    if (b->len + extra <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap;
    while (cap < b->len + extra)
        cap = cap + cap / 2 + 64;
    if (b->exports == 0) {
        char *p = realloc(b->ptr, (size_t)cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->ptr = p;
        b->cap = cap;
        return 0;
    }
    BufObject *n = buf_new(cap);
    if (n == NULL)
        return -1;
    memcpy(n->ptr, b->ptr, (size_t)b->len);
    n->len = b->len;
    Py_DECREF(b);
    *pb = n;
    return 0;
}

/* An empty buffer for the next batch: the same one when nobody holds a view of it. */
static int buf_clear(BufObject **pb)
{
    BufObject *b = *pb;
    if (b->exports == 0) {
        b->len = 0;
        return 0;
    }
    BufObject *n = buf_new(b->cap);
    if (n == NULL)
        return -1;
    Py_DECREF(b);
    *pb = n;
    return 0;
}

/* ------------------------------------------------------------------ column buffers */

enum { K_BOOL = 0, K_I8 = 1, K_I32 = 4, K_I64 = 8, K_BIN = -1 };

typedef struct {
    int kind;
    int nullable;
    BufObject *data;
    BufObject *offsets; /* K_BIN: int32 offsets, rows + 1 of them */
    BufObject *valid;   /* nullable: validity bitmap (Arrow's LSB order) */
} Col;

#define MAX_COLS 13

typedef struct {
    int ncols;
    Col cols[MAX_COLS];
    Py_ssize_t n;
    Py_ssize_t mark;
} Tab;

enum { TB_TXS, TB_OUTPUTS, TB_INPUTS, TB_COINBASES, TB_ADDRESSES, N_TABS };

/* Column kinds per table, in the order of schema.py (checked by ingest.py). */
static const int TAB_KINDS[N_TABS][MAX_COLS + 1] = {
    /* txs: tx_id txid height version lock_time size vsize is_coinbase input_count output_count
       input_value? output_value fee? */
    {K_I64, K_BIN, K_I32, K_I32, K_I64, K_I32, K_I32, K_BOOL, K_I32, K_I32, K_I64, K_I64, K_I64,
     99},
    /* outputs: tx_id n value addr_id? script_type script? */
    {K_I64, K_I32, K_I64, K_I64, K_I8, K_BIN, 99},
    /* inputs: tx_id n prev_tx_id prev_n value addr_id? script_type sequence sig_flags */
    {K_I64, K_I32, K_I64, K_I32, K_I64, K_I64, K_I8, K_I64, K_I8, 99},
    /* coinbases: tx_id script_sig */
    {K_I64, K_BIN, 99},
    /* addresses: addr_id type payload text first_tx_id first_height */
    {K_I64, K_I8, K_BIN, K_BIN, K_I64, K_I32, 99},
};
static const int TAB_NULLABLE[N_TABS][MAX_COLS] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1},
    {0, 0, 0, 1, 0, 1},
    {0, 0, 0, 0, 0, 1, 0, 0, 0},
    {0, 0},
    {0, 0, 0, 0, 0, 0},
};
static const char *TAB_NAMES[N_TABS] = {"txs", "outputs", "inputs", "coinbases", "addresses"};

static int col_init(Col *c, int kind, int nullable)
{
    c->kind = kind;
    c->nullable = nullable;
    c->offsets = c->valid = NULL;
    c->data = buf_new(4096);
    if (c->data == NULL)
        return -1;
    if (kind == K_BIN) {
        c->offsets = buf_new(4096);
        if (c->offsets == NULL)
            return -1;
        memset(c->offsets->ptr, 0, 4);
        c->offsets->len = 4;
    }
    if (nullable) {
        c->valid = buf_new(512);
        if (c->valid == NULL)
            return -1;
    }
    return 0;
}

static void col_free(Col *c)
{
    Py_CLEAR(c->data);
    Py_CLEAR(c->offsets);
    Py_CLEAR(c->valid);
}

static int tab_init(Tab *t, int which)
{
    t->n = t->mark = 0;
    t->ncols = 0;
    while (TAB_KINDS[which][t->ncols] != 99) {
        if (col_init(&t->cols[t->ncols], TAB_KINDS[which][t->ncols],
                     TAB_NULLABLE[which][t->ncols]) < 0)
            return -1;
        t->ncols++;
    }
    return 0;
}

static void tab_free(Tab *t)
{
    for (int i = 0; i < t->ncols; i++)
        col_free(&t->cols[i]);
    t->ncols = 0;
}

/* Room for `rows` more rows in every fixed-width part (binary data is reserved per value). */
static int tab_reserve(Tab *t, Py_ssize_t rows)
{
    for (int i = 0; i < t->ncols; i++) {
        Col *c = &t->cols[i];
        Py_ssize_t need;
        if (c->kind == K_BIN) {
            if (buf_reserve(&c->offsets, rows * 4) < 0)
                return -1;
            need = 0;
        } else if (c->kind == K_BOOL) {
            need = (t->n + rows + 7) / 8 + 1 - c->data->len;
        } else {
            need = rows * c->kind;
        }
        if (need > 0 && buf_reserve(&c->data, need) < 0)
            return -1;
        if (c->nullable) {
            need = (t->n + rows + 7) / 8 + 1 - c->valid->len;
            if (need > 0 && buf_reserve(&c->valid, need) < 0)
                return -1;
        }
    }
    return 0;
}

static inline void set_bit(BufObject *b, Py_ssize_t row, int on)
{
    uint8_t *p = (uint8_t *)b->ptr + (row >> 3);
    uint8_t bit = (uint8_t)(1u << (row & 7));
    if (on)
        *p |= bit;
    else
        *p &= (uint8_t)~bit;
    b->len = (row >> 3) + 1;
}

/* Appenders: the row is t->n (the table's row count is advanced by tab_next). Fixed-width
 * space must have been reserved by tab_reserve. */
static inline void put_i64(Tab *t, int col, int64_t v)
{
    BufObject *b = t->cols[col].data;
    memcpy(b->ptr + b->len, &v, 8);
    b->len += 8;
}

static inline void put_i32(Tab *t, int col, int32_t v)
{
    BufObject *b = t->cols[col].data;
    memcpy(b->ptr + b->len, &v, 4);
    b->len += 4;
}

static inline void put_i8(Tab *t, int col, int8_t v)
{
    BufObject *b = t->cols[col].data;
    b->ptr[b->len++] = (char)v;
}

static inline void put_bool(Tab *t, int col, int v) { set_bit(t->cols[col].data, t->n, v); }

static inline void put_valid(Tab *t, int col, int v) { set_bit(t->cols[col].valid, t->n, v); }

/* Nullable int64: a zero value under a cleared validity bit for NULL. */
static inline void put_i64n(Tab *t, int col, int64_t v, int valid)
{
    put_i64(t, col, valid ? v : 0);
    put_valid(t, col, valid);
}

static int put_bin(Tab *t, int col, const void *p, Py_ssize_t n, int valid)
{
    Col *c = &t->cols[col];
    if (n > 0 && valid) {
        if (c->data->len + n > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "ingest batch column over 2 GiB; flush sooner");
            return -1;
        }
        if (buf_reserve(&c->data, n) < 0)
            return -1;
        memcpy(c->data->ptr + c->data->len, p, (size_t)n);
        c->data->len += n;
    }
    int32_t end = (int32_t)c->data->len;
    memcpy(c->offsets->ptr + c->offsets->len, &end, 4);
    c->offsets->len += 4;
    if (c->nullable)
        put_valid(t, col, valid);
    return 0;
}

static inline void tab_next(Tab *t) { t->n++; }

/* Cut a table back to `rows` rows (a failed block). */
static void tab_truncate(Tab *t, Py_ssize_t rows)
{
    t->n = rows;
    for (int i = 0; i < t->ncols; i++) {
        Col *c = &t->cols[i];
        if (c->kind == K_BIN) {
            c->offsets->len = (rows + 1) * 4;
            int32_t end;
            memcpy(&end, c->offsets->ptr + rows * 4, 4);
            c->data->len = end;
        } else if (c->kind == K_BOOL) {
            c->data->len = (rows + 7) / 8;
        } else {
            c->data->len = rows * c->kind;
        }
        if (c->nullable)
            c->valid->len = (rows + 7) / 8;
    }
}

static int tab_clear(Tab *t)
{
    t->n = t->mark = 0;
    for (int i = 0; i < t->ncols; i++) {
        Col *c = &t->cols[i];
        if (buf_clear(&c->data) < 0)
            return -1;
        if (c->offsets != NULL) {
            if (buf_clear(&c->offsets) < 0)
                return -1;
            memset(c->offsets->ptr, 0, 4);
            c->offsets->len = 4;
        }
        if (c->valid != NULL && buf_clear(&c->valid) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ partition memory */

/* Partitions of 64 KiB and more get their own mapping: freeing one after a resize returns it
 * to the system at once, so the process holds the tables and nothing else (heap allocations
 * of that size would leave freed partitions behind as fragments). */
#define MAP_MIN (64 * 1024)

static void *part_calloc(size_t n, size_t size)
{
    size_t bytes = n * size;
    if (bytes < MAP_MIN)
        return calloc(n, size);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void part_free(void *p, size_t n, size_t size)
{
    if (p == NULL)
        return;
    if (n * size < MAP_MIN)
        free(p);
    else
        munmap(p, n * size);
}

/* ---------------------------------------------------------------- unspent outputs */

typedef struct {
    uint64_t prefix; /* first 8 bytes of the txid, little-endian */
    int64_t value;
    uint64_t a; /* tx_id (40 bits) | vout << 40 (24 bits) */
    uint64_t b; /* addr_id + 1 (40 bits, 0: none) | type << 40 | flags */
} USlot;

#define ID_BITS 40
#define ID_MASK ((1ULL << ID_BITS) - 1)
#define VOUT_LIMIT (1U << 24)
#define U_OCC (1ULL << 63)
#define U_AMBIG (1ULL << 62)
#define UP_BITS 10
#define N_UPARTS (1 << UP_BITS)
#define U_MIN_CAP 8
#define SMALL_PART 256 /* partitions below this many slots double; larger ones grow by 1.25x */

typedef struct {
    USlot *s;
    uint64_t cap;
    uint64_t used; /* occupied slots, ambiguity markers included */
} UPart;

static inline uint32_t u_vout(const USlot *s) { return (uint32_t)(s->a >> ID_BITS); }
static inline int64_t u_tx(const USlot *s) { return (int64_t)(s->a & ID_MASK); }

enum { J_INS = 1, J_SET, J_DEL, J_SIDE };

typedef struct {
    int op;
    USlot slot;    /* J_INS: the key; J_SET: the old slot; J_DEL: the removed slot */
    PyObject *key; /* J_SIDE: side-dict key; old value (NULL: absent) */
    PyObject *old;
} JRec;

/* ------------------------------------------------------------------------ addresses */

#define AP_BITS 12
#define N_APARTS (1 << AP_BITS)
#define FP_BITS 28
#define FP_MASK ((1ULL << FP_BITS) - 1)
#define AID_LIMIT ((1ULL << (64 - FP_BITS)) - 1) /* addr_id + 1 must fit in 36 bits */
#define A_MIN_CAP 8
#define A_MAX_CAP (1ULL << FP_BITS)

typedef struct {
    uint64_t *s; /* (addr_id + 1) << FP_BITS | fingerprint; 0: empty */
    uint64_t cap;
    uint64_t used;
} APart;

#define REC_SIZE 44
#define MAX_PAYLOAD (REC_SIZE - 2)
#define HDR_SIZE 64
static const char REC_MAGIC[16] = "cointrail-addrk1";

/* ------------------------------------------------------------------------------ core */

typedef struct {
    PyObject_HEAD
    PyObject *txid_of;
    uint64_t k0, k1, umask, amask;
    /* unspent outputs */
    UPart *up;
    uint64_t utxo_count, collisions;
    PyObject *side; /* (txid + vout as 4 bytes LE) -> packed USlot bytes */
    JRec *journal;
    size_t jlen, jcap;
    int journaling;
    uint64_t count_mark, coll_mark; /* utxo_begin: what utxo_undo restores */
    /* addresses and their records */
    APart *ap;
    int fd;
    uint8_t *map;
    size_t map_len;
    uint8_t *recs;
    uint64_t rec_cap;
    uint64_t file_records; /* records present in the file when it was opened */
    uint64_t rec_rewritten;
    uint64_t addr_hits, addr_false; /* verified hits; fingerprint matches of another address */
    /* ids and the batch */
    int64_t next_tx_id, next_addr_id, batch_first_tx_id;
    Tab tabs[N_TABS];
    int ready;
    /* add_block's scratch: each output's address record and hash, made by the prefetch pass */
    uint8_t *scr_recs;
    uint64_t *scr_hash;
    Py_ssize_t scr_cap;
} Core;

static PyObject *MissingOutput;

/* ----------------------------------------------------------- unspent-output table */

static inline uint64_t u_hash(const Core *c, uint64_t prefix, uint32_t vout)
{
    return fmix64(prefix ^ c->k0 ^ ((uint64_t)vout * 0x9E3779B97F4A7C15ULL)) & c->umask;
}

static inline UPart *u_part(Core *c, uint64_t h) { return &c->up[h >> (64 - UP_BITS)]; }

static inline uint64_t u_home(uint64_t h, uint64_t cap) { return mulhi64(h << UP_BITS, cap); }

static int u_part_alloc(UPart *p, uint64_t cap)
{
    p->s = part_calloc(cap, sizeof(USlot));
    if (p->s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->cap = cap;
    p->used = 0;
    return 0;
}

static void u_place(Core *c, UPart *p, const USlot *slot)
{
    uint64_t i = u_home(u_hash(c, slot->prefix, u_vout(slot)), p->cap);
    while (p->s[i].b & U_OCC)
        i = (i + 1 == p->cap) ? 0 : i + 1;
    p->s[i] = *slot;
    p->used++;
}

static int u_grow(Core *c, UPart *p)
{
    UPart old = *p;
    uint64_t cap = old.cap < SMALL_PART ? old.cap * 2 : old.cap + old.cap / 4;
    if (u_part_alloc(p, cap) < 0) {
        *p = old;
        return -1;
    }
    for (uint64_t i = 0; i < old.cap; i++)
        if (old.s[i].b & U_OCC)
            u_place(c, p, &old.s[i]);
    part_free(old.s, old.cap, sizeof(USlot));
    return 0;
}

/* The slot holding (prefix, vout), or NULL. */
static USlot *u_find(Core *c, uint64_t prefix, uint32_t vout, UPart **pp)
{
    uint64_t h = u_hash(c, prefix, vout);
    UPart *p = u_part(c, h);
    *pp = p;
    uint64_t i = u_home(h, p->cap);
    for (;;) {
        USlot *s = &p->s[i];
        if (!(s->b & U_OCC))
            return NULL;
        if (s->prefix == prefix && u_vout(s) == vout)
            return s;
        i = (i + 1 == p->cap) ? 0 : i + 1;
    }
}

static int u_insert(Core *c, const USlot *slot)
{
    UPart *p = u_part(c, u_hash(c, slot->prefix, u_vout(slot)));
    if ((p->used + 1) * 5 > p->cap * 4 && u_grow(c, p) < 0)
        return -1;
    u_place(c, p, slot);
    return 0;
}

/* Remove the slot at index i of p (backward shift: no tombstones). */
static void u_delete_at(Core *c, UPart *p, uint64_t i)
{
    uint64_t cap = p->cap, j = i;
    for (;;) {
        j = (j + 1 == cap) ? 0 : j + 1;
        USlot *s = &p->s[j];
        if (!(s->b & U_OCC))
            break;
        uint64_t k = u_home(u_hash(c, s->prefix, u_vout(s)), cap);
        /* s may fill the hole at i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        p->s[i] = *s;
        i = j;
    }
    memset(&p->s[i], 0, sizeof(USlot));
    p->used--;
}

static int journal_push(Core *c, int op, const USlot *slot, PyObject *key, PyObject *old)
{
    if (!c->journaling)
        return 0;
    if (c->jlen == c->jcap) {
        size_t cap = c->jcap ? c->jcap * 2 : 256;
        JRec *j = realloc(c->journal, cap * sizeof(JRec));
        if (j == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->journal = j;
        c->jcap = cap;
    }
    JRec *r = &c->journal[c->jlen++];
    r->op = op;
    if (slot != NULL)
        r->slot = *slot;
    else
        memset(&r->slot, 0, sizeof(USlot));
    Py_XINCREF(key);
    Py_XINCREF(old);
    r->key = key;
    r->old = old;
    return 0;
}

static void journal_clear(Core *c)
{
    for (size_t i = 0; i < c->jlen; i++) {
        Py_CLEAR(c->journal[i].key);
        Py_CLEAR(c->journal[i].old);
    }
    c->jlen = 0;
}

/* Revert every journalled change, newest first. Cannot fail: re-inserting a removed slot
 * finds room because removals never shrink a partition. */
static void journal_undo(Core *c)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    for (size_t n = c->jlen; n-- > 0;) {
        JRec *r = &c->journal[n];
        UPart *p;
        USlot *s;
        switch (r->op) {
        case J_INS:
            s = u_find(c, r->slot.prefix, u_vout(&r->slot), &p);
            if (s != NULL)
                u_delete_at(c, p, (uint64_t)(s - p->s));
            break;
        case J_SET:
            s = u_find(c, r->slot.prefix, u_vout(&r->slot), &p);
            if (s != NULL)
                *s = r->slot;
            break;
        case J_DEL:
            p = u_part(c, u_hash(c, r->slot.prefix, u_vout(&r->slot)));
            u_place(c, p, &r->slot);
            break;
        case J_SIDE:
            if (r->old == NULL) {
                if (PyDict_DelItem(c->side, r->key) < 0)
                    PyErr_Clear();
            } else if (PyDict_SetItem(c->side, r->key, r->old) < 0) {
                PyErr_Clear();
            }
            break;
        }
    }
    journal_clear(c);
    PyErr_Restore(exc_type, exc_value, exc_tb);
}

static PyObject *side_key(const uint8_t *txid, uint32_t vout)
{
    uint8_t k[36];
    memcpy(k, txid, 32);
    k[32] = (uint8_t)vout;
    k[33] = (uint8_t)(vout >> 8);
    k[34] = (uint8_t)(vout >> 16);
    k[35] = (uint8_t)(vout >> 24);
    return PyBytes_FromStringAndSize((const char *)k, 36);
}

/* side[key] = value (journalled); value NULL deletes. */
static int side_set(Core *c, PyObject *key, const USlot *value)
{
    PyObject *old = PyDict_GetItemWithError(c->side, key); /* borrowed */
    if (old == NULL && PyErr_Occurred())
        return -1;
    if (journal_push(c, J_SIDE, NULL, key, old) < 0)
        return -1;
    if (value == NULL)
        return old == NULL ? 0 : PyDict_DelItem(c->side, key);
    PyObject *v = PyBytes_FromStringAndSize((const char *)value, sizeof(USlot));
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(c->side, key, v);
    Py_DECREF(v);
    return rc;
}

/* The full txid of a tx_id: from the unflushed batch, else asked of Python (the store). */
static int txid_of(Core *c, int64_t tx_id, uint8_t out[32])
{
    Tab *t = &c->tabs[TB_TXS];
    if (tx_id >= c->batch_first_tx_id && tx_id < c->batch_first_tx_id + t->n) {
        memcpy(out, t->cols[1].data->ptr + (tx_id - c->batch_first_tx_id) * 32, 32);
        return 0;
    }
    if (c->txid_of == Py_None) {
        PyErr_Format(PyExc_LookupError, "no txid_of callback to resolve tx_id %lld",
                     (long long)tx_id);
        return -1;
    }
    PyObject *r = PyObject_CallFunction(c->txid_of, "L", (long long)tx_id);
    if (r == NULL)
        return -1;
    char *p;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(r, &p, &n) < 0 || n != 32) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "txid_of must return 32 bytes");
        Py_DECREF(r);
        return -1;
    }
    memcpy(out, p, 32);
    Py_DECREF(r);
    return 0;
}

static inline void u_make(USlot *s, uint64_t prefix, uint32_t vout, int64_t tx_id, int64_t value,
                          int64_t addr_id, int type)
{
    s->prefix = prefix;
    s->value = value;
    s->a = (uint64_t)tx_id | ((uint64_t)vout << ID_BITS);
    s->b = U_OCC | ((uint64_t)(type & 0xff) << ID_BITS) | (uint64_t)(addr_id + 1);
}

static int u_check(int64_t tx_id, uint32_t vout, int64_t addr_id)
{
    if (tx_id < 0 || (uint64_t)tx_id > ID_MASK || vout >= VOUT_LIMIT || addr_id < -1 ||
        addr_id + 1 > (int64_t)ID_MASK) {
        PyErr_Format(PyExc_OverflowError,
                     "unspent output out of the index's range (tx_id %lld, vout %u, addr_id "
                     "%lld)", (long long)tx_id, vout, (long long)addr_id);
        return -1;
    }
    return 0;
}

/* Add one spendable output (UtxoIndex.add for one output). */
static int utxo_add(Core *c, const uint8_t *txid, uint32_t vout, int64_t tx_id, int64_t value,
                    int64_t addr_id, int type)
{
    if (u_check(tx_id, vout, addr_id) < 0)
        return -1;
    uint64_t prefix;
    memcpy(&prefix, txid, 8);
    USlot fresh;
    u_make(&fresh, prefix, vout, tx_id, value, addr_id, type);
    UPart *p;
    USlot *s = u_find(c, prefix, vout, &p);
    if (s == NULL) {
        if (journal_push(c, J_INS, &fresh, NULL, NULL) < 0 || u_insert(c, &fresh) < 0)
            return -1;
        c->utxo_count++;
        return 0;
    }
    if (s->b & U_AMBIG) { /* this key's outputs live in the side dict, by full txid */
        PyObject *key = side_key(txid, vout);
        if (key == NULL)
            return -1;
        PyObject *had = PyDict_GetItemWithError(c->side, key);
        int rc = -1;
        if (had == NULL && PyErr_Occurred())
            goto done;
        if (had != NULL) { /* BIP 30 duplicate: the newer transaction's output stays */
            USlot old;
            memcpy(&old, PyBytes_AS_STRING(had), sizeof(USlot));
            rc = u_tx(&old) > tx_id ? 0 : side_set(c, key, &fresh);
            goto done;
        }
        rc = side_set(c, key, &fresh);
        if (rc == 0)
            c->utxo_count++;
    done:
        Py_DECREF(key);
        return rc;
    }
    uint8_t old_txid[32];
    USlot old = *s;
    if (txid_of(c, u_tx(&old), old_txid) < 0)
        return -1;
    /* the callback may not touch this table, but look the slot up again to be safe */
    s = u_find(c, prefix, vout, &p);
    if (s == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the unspent-output table changed during txid_of");
        return -1;
    }
    if (memcmp(old_txid, txid, 32) == 0) { /* BIP 30 duplicate txid: the newer one replaces */
        if (u_tx(&old) > tx_id)
            return 0;
        if (journal_push(c, J_SET, &old, NULL, NULL) < 0)
            return -1;
        *s = fresh;
        return 0;
    }
    /* two txids share 8 bytes: both move to the side dict, the key becomes a marker */
    PyObject *k_old = side_key(old_txid, vout), *k_new = side_key(txid, vout);
    int rc = -1;
    if (k_old != NULL && k_new != NULL && journal_push(c, J_SET, &old, NULL, NULL) == 0) {
        s->b |= U_AMBIG;
        if (side_set(c, k_old, &old) == 0 && side_set(c, k_new, &fresh) == 0) {
            c->collisions++;
            c->utxo_count++;
            rc = 0;
        }
    }
    Py_XDECREF(k_old);
    Py_XDECREF(k_new);
    return rc;
}

/* Remove and return the output (txid, vout): 1 found, 0 unknown, -1 error. */
static int utxo_spend(Core *c, const uint8_t *txid, uint32_t vout, USlot *out)
{
    if (vout >= VOUT_LIMIT)
        return 0;
    uint64_t prefix;
    memcpy(&prefix, txid, 8);
    UPart *p;
    USlot *s = u_find(c, prefix, vout, &p);
    if (s == NULL)
        return 0;
    if (s->b & U_AMBIG) {
        PyObject *key = side_key(txid, vout);
        if (key == NULL)
            return -1;
        PyObject *found = PyDict_GetItemWithError(c->side, key);
        int rc = 0;
        if (found != NULL) {
            memcpy(out, PyBytes_AS_STRING(found), sizeof(USlot));
            rc = side_set(c, key, NULL) < 0 ? -1 : 1;
            if (rc == 1)
                c->utxo_count--;
        } else if (PyErr_Occurred()) {
            rc = -1;
        }
        Py_DECREF(key);
        return rc;
    }
    *out = *s;
    if (journal_push(c, J_DEL, s, NULL, NULL) < 0)
        return -1;
    u_delete_at(c, p, (uint64_t)(s - p->s));
    c->utxo_count--;
    return 1;
}

/* ------------------------------------------------------------------- address table */

static inline uint64_t a_home(uint64_t fp, uint64_t cap) { return (fp * cap) >> FP_BITS; }

static inline uint64_t a_hash(const Core *c, const uint8_t *rec)
{
    return siphash13(c->k0 ^ 0x5bd1e9955bd1e995ULL, c->k1, rec, 2 + (size_t)rec[1]) & c->amask;
}

static inline APart *a_part(Core *c, uint64_t h) { return &c->ap[h >> (64 - AP_BITS)]; }

static inline uint64_t a_fp(uint64_t h) { return (h >> (64 - AP_BITS - FP_BITS)) & FP_MASK; }

static int a_part_alloc(APart *p, uint64_t cap)
{
    p->s = part_calloc(cap, sizeof(uint64_t));
    if (p->s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    p->cap = cap;
    p->used = 0;
    return 0;
}

static void a_place(APart *p, uint64_t v)
{
    uint64_t i = a_home(v & FP_MASK, p->cap);
    while (p->s[i])
        i = (i + 1 == p->cap) ? 0 : i + 1;
    p->s[i] = v;
    p->used++;
}

static int a_grow(APart *p)
{
    APart old = *p;
    uint64_t cap = old.cap < SMALL_PART ? old.cap * 2 : old.cap + old.cap / 4;
    if (cap > A_MAX_CAP) {
        PyErr_SetString(PyExc_OverflowError, "address table partition full");
        return -1;
    }
    if (a_part_alloc(p, cap) < 0) {
        *p = old;
        return -1;
    }
    for (uint64_t i = 0; i < old.cap; i++)
        if (old.s[i])
            a_place(p, old.s[i]);
    part_free(old.s, old.cap, sizeof(uint64_t));
    return 0;
}

static inline const uint8_t *rec_at(const Core *c, int64_t id)
{
    return c->recs + (uint64_t)id * REC_SIZE;
}

/* The addr_id of the address whose record is `rec` (hash h), or -1. */
static int64_t a_lookup(Core *c, const uint8_t *rec, uint64_t h)
{
    APart *p = a_part(c, h);
    uint64_t fp = a_fp(h), i = a_home(fp, p->cap);
    for (;;) {
        uint64_t v = p->s[i];
        if (!v)
            return -1;
        if ((v & FP_MASK) == fp) {
            int64_t id = (int64_t)(v >> FP_BITS) - 1;
            if (memcmp(rec_at(c, id), rec, REC_SIZE) == 0) {
                c->addr_hits++;
                return id;
            }
            c->addr_false++;
        }
        i = (i + 1 == p->cap) ? 0 : i + 1;
    }
}

static int a_insert(Core *c, uint64_t h, int64_t id)
{
    APart *p = a_part(c, h);
    if ((p->used + 1) * 20 > p->cap * 17 && a_grow(p) < 0)
        return -1;
    a_place(p, ((uint64_t)(id + 1) << FP_BITS) | a_fp(h));
    return 0;
}

/* Remove addr_id `id` (its record tells its hash). */
static void a_remove(Core *c, int64_t id)
{
    uint64_t h = a_hash(c, rec_at(c, id));
    APart *p = a_part(c, h);
    uint64_t want = ((uint64_t)(id + 1) << FP_BITS) | a_fp(h);
    uint64_t cap = p->cap, i = a_home(a_fp(h), cap);
    while (p->s[i] != want) {
        if (!p->s[i])
            return;
        i = (i + 1 == cap) ? 0 : i + 1;
    }
    uint64_t j = i;
    for (;;) {
        j = (j + 1 == cap) ? 0 : j + 1;
        uint64_t v = p->s[j];
        if (!v)
            break;
        uint64_t k = a_home(v & FP_MASK, cap);
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        p->s[i] = v;
        i = j;
    }
    p->s[i] = 0;
    p->used--;
}

/* ------------------------------------------------------------------- record storage */

static void rec_unmap(Core *c)
{
    if (c->fd >= 0) {
        if (c->map != NULL)
            munmap(c->map, c->map_len);
    } else {
        free(c->map);
    }
    c->map = NULL;
    c->recs = NULL;
    c->map_len = 0;
    c->rec_cap = 0;
}

/* Map (or allocate) room for `cap` records. */
static int rec_map(Core *c, uint64_t cap)
{
    size_t len = HDR_SIZE + (size_t)cap * REC_SIZE;
    if (c->fd < 0) {
        uint8_t *p = realloc(c->map, len);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (len > c->map_len)
            memset(p + c->map_len, 0, len - c->map_len);
        c->map = p;
    } else {
        if (c->map != NULL)
            munmap(c->map, c->map_len);
        c->map = NULL;
        c->recs = NULL;
        c->rec_cap = 0;
        void *p = MAP_FAILED;
        if (ftruncate(c->fd, (off_t)len) == 0)
            p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
        if (p == MAP_FAILED) {
            /* the records are gone from memory: this core cannot go on */
            PyErr_SetFromErrno(PyExc_OSError);
            c->ready = 0;
            return -1;
        }
        c->map = p;
    }
    c->map_len = len;
    c->recs = c->map + HDR_SIZE;
    c->rec_cap = cap;
    return 0;
}

static int rec_reserve(Core *c, uint64_t records)
{
    if (records <= c->rec_cap)
        return 0;
    uint64_t cap = c->rec_cap + c->rec_cap / 4 + 65536;
    if (cap < records)
        cap = records;
    return rec_map(c, cap);
}

/* The record of an address of type `form` with `payload` (zero-padded, fixed width). */
static void make_rec(uint8_t rec[REC_SIZE], int form, const uint8_t *payload, size_t n)
{
    memset(rec, 0, REC_SIZE);
    rec[0] = (uint8_t)form;
    rec[1] = (uint8_t)n;
    memcpy(rec + 2, payload, n);
}

/* (address type, payload) of an output that has an address, as ingest.py's _address_form:
 * p2pk is its key's p2pkh. -1 if the script does not hold what its type says. */
static int address_rec(int type, const uint8_t *s, uint32_t n, uint8_t rec[REC_SIZE])
{
    uint8_t h[20], buf[MAX_PAYLOAD];
    switch (type) {
    case T_PUBKEY:
        if (!((n == 35 || n == 67) && s[0] == n - 2))
            return -1;
        hash160(s + 1, s[0], h);
        make_rec(rec, T_PUBKEYHASH, h, 20);
        return 0;
    case T_PUBKEYHASH:
        if (n != 25)
            return -1;
        make_rec(rec, T_PUBKEYHASH, s + 3, 20);
        return 0;
    case T_SCRIPTHASH:
        if (n != 23)
            return -1;
        make_rec(rec, T_SCRIPTHASH, s + 2, 20);
        return 0;
    case T_WITNESS_V0_KEYHASH:
    case T_WITNESS_V0_SCRIPTHASH:
    case T_WITNESS_V1_TAPROOT:
    case T_ANCHOR:
    case T_WITNESS_MWEB_HOGADDR:
    case T_WITNESS_MWEB_PEGIN:
        if (n < 4 || n > 42 || s[1] + 2u != n)
            return -1;
        make_rec(rec, type, s + 2, n - 2);
        return 0;
    case T_WITNESS_UNKNOWN:
        if (n < 4 || n > 42 || s[1] + 2u != n)
            return -1;
        buf[0] = s[0] == 0 ? 0 : (uint8_t)(s[0] - 0x50);
        memcpy(buf + 1, s + 2, n - 2);
        make_rec(rec, type, buf, n - 1);
        return 0;
    default:
        return -1;
    }
}

/* ---------------------------------------------------------------------- Core object */

static void core_free_tables(Core *c)
{
    if (c->up != NULL) {
        for (int i = 0; i < N_UPARTS; i++)
            part_free(c->up[i].s, c->up[i].cap, sizeof(USlot));
        free(c->up);
        c->up = NULL;
    }
    if (c->ap != NULL) {
        for (int i = 0; i < N_APARTS; i++)
            part_free(c->ap[i].s, c->ap[i].cap, sizeof(uint64_t));
        free(c->ap);
        c->ap = NULL;
    }
}

static int core_alloc_tables(Core *c)
{
    c->up = calloc(N_UPARTS, sizeof(UPart));
    c->ap = calloc(N_APARTS, sizeof(APart));
    if (c->up == NULL || c->ap == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < N_UPARTS; i++)
        if (u_part_alloc(&c->up[i], U_MIN_CAP) < 0)
            return -1;
    for (int i = 0; i < N_APARTS; i++)
        if (a_part_alloc(&c->ap[i], A_MIN_CAP) < 0)
            return -1;
    return 0;
}

static int Core_traverse(Core *c, visitproc visit, void *arg)
{
    Py_VISIT(c->txid_of);
    Py_VISIT(c->side);
    return 0;
}

static int Core_clear_refs(Core *c)
{
    Py_CLEAR(c->txid_of);
    Py_CLEAR(c->side);
    return 0;
}

static void Core_dealloc(Core *c)
{
    PyObject_GC_UnTrack(c);
    journal_clear(c);
    free(c->journal);
    core_free_tables(c);
    for (int i = 0; i < N_TABS; i++)
        tab_free(&c->tabs[i]);
    rec_unmap(c);
    if (c->fd >= 0)
        close(c->fd);
    PyMem_Free(c->scr_recs);
    PyMem_Free(c->scr_hash);
    Core_clear_refs(c);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Core *c = (Core *)type->tp_alloc(type, 0);
    if (c == NULL)
        return NULL;
    c->fd = -1;
    return (PyObject *)c;
}

static int Core_init(Core *c, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"txid_of", "seed", "utxo_hash_mask", "addr_hash_mask", NULL};
    PyObject *txid_of;
    Py_buffer seed = {0};
    unsigned long long umask = ~0ULL, amask = ~0ULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oy*|KK", kwlist, &txid_of, &seed, &umask,
                                     &amask))
        return -1;
    if (c->ready) {
        PyBuffer_Release(&seed);
        PyErr_SetString(PyExc_RuntimeError, "Core is already initialised");
        return -1;
    }
    if (seed.len != 16) {
        PyBuffer_Release(&seed);
        PyErr_SetString(PyExc_ValueError, "seed must be 16 bytes");
        return -1;
    }
    memcpy(&c->k0, seed.buf, 8);
    memcpy(&c->k1, (char *)seed.buf + 8, 8);
    PyBuffer_Release(&seed);
    c->umask = umask;
    c->amask = amask;
    Py_INCREF(txid_of);
    c->txid_of = txid_of;
    c->side = PyDict_New();
    if (c->side == NULL || core_alloc_tables(c) < 0)
        return -1;
    for (int i = 0; i < N_TABS; i++)
        if (tab_init(&c->tabs[i], i) < 0)
            return -1;
    if (rec_map(c, 0) < 0)
        return -1;
    c->ready = 1;
    return 0;
}

#define CHECK_READY(c)                                                                        \
    do {                                                                                      \
        if (!(c)->ready) {                                                                    \
            PyErr_SetString(PyExc_RuntimeError, "Core is not initialised");                   \
            return NULL;                                                                      \
        }                                                                                     \
    } while (0)

/* reset(next_tx_id, next_addr_id): empty both tables and the batch (before a load). */
static PyObject *Core_reset(Core *c, PyObject *args)
{
    long long next_tx, next_addr;
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "LL", &next_tx, &next_addr))
        return NULL;
    journal_clear(c);
    c->journaling = 0;
    core_free_tables(c);
    if (core_alloc_tables(c) < 0)
        return NULL;
    PyDict_Clear(c->side);
    c->utxo_count = c->collisions = 0;
    for (int i = 0; i < N_TABS; i++)
        if (tab_clear(&c->tabs[i]) < 0)
            return NULL;
    c->next_tx_id = c->batch_first_tx_id = next_tx;
    c->next_addr_id = 0; /* addresses are (re)loaded by load_addresses */
    (void)next_addr;
    Py_RETURN_NONE;
}

/* open_records(path): use `path` as the address record file (created if missing). Records
 * already there are checked by load_addresses against the store and rewritten if stale. */
static PyObject *Core_open_records(Core *c, PyObject *args)
{
    PyObject *path_obj;
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &path_obj))
        return NULL;
    if (c->next_addr_id != 0) {
        Py_DECREF(path_obj);
        PyErr_SetString(PyExc_RuntimeError, "open_records must come before any address");
        return NULL;
    }
    rec_unmap(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = open(PyBytes_AS_STRING(path_obj), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->fd < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
        Py_DECREF(path_obj);
        rec_map(c, 0);
        return NULL;
    }
    /* one core per file: another one (an ingestor still alive on the same store) keeps its
     * mapping, which truncating the file under it would break */
    if (flock(c->fd, LOCK_EX | LOCK_NB) < 0) {
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
        Py_DECREF(path_obj);
        close(c->fd);
        c->fd = -1;
        rec_map(c, 0);
        return NULL;
    }
    Py_DECREF(path_obj);
    struct stat st;
    if (fstat(c->fd, &st) < 0)
        goto os_error;
    uint8_t hdr[HDR_SIZE];
    uint64_t present = 0;
    if (st.st_size >= HDR_SIZE && pread(c->fd, hdr, HDR_SIZE, 0) == HDR_SIZE &&
        memcmp(hdr, REC_MAGIC, 16) == 0)
        present = (uint64_t)(st.st_size - HDR_SIZE) / REC_SIZE;
    c->file_records = present;
    c->rec_rewritten = 0;
    if (rec_map(c, present) < 0)
        goto fail;
    if (present == 0) {
        memset(c->map, 0, HDR_SIZE);
        memcpy(c->map, REC_MAGIC, 16);
        uint32_t rs = REC_SIZE;
        memcpy(c->map + 16, &rs, 4);
    }
    Py_RETURN_NONE;
os_error:
    PyErr_SetFromErrno(PyExc_OSError);
fail:
    if (c->map != NULL)
        munmap(c->map, c->map_len);
    close(c->fd);
    c->fd = -1;
    c->map = NULL;
    c->map_len = 0;
    if (rec_map(c, 0) == 0) /* go on with the records in memory */
        c->ready = 1;
    return NULL;
}

/* finish_load(): truncate the record file to the addresses loaded (the committed ones). */
static PyObject *Core_finish_load(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    if (c->fd >= 0 && rec_map(c, (uint64_t)c->next_addr_id) < 0)
        return NULL;
    c->file_records = (uint64_t)c->next_addr_id; /* what a later reload finds in the file */
    uint64_t rewritten = c->rec_rewritten;
    c->rec_rewritten = 0;
    return PyLong_FromUnsignedLongLong(rewritten);
}

typedef struct {
    Py_buffer v;
    int held;
} Held;

static int get_buf(PyObject *obj, Held *h, Py_ssize_t itemsize, Py_ssize_t n, const char *what)
{
    if (PyObject_GetBuffer(obj, &h->v, PyBUF_SIMPLE) < 0)
        return -1;
    h->held = 1;
    if (n >= 0 && h->v.len != n * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", what, h->v.len,
                     n * itemsize);
        return -1;
    }
    if (h->v.len % itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a multiple of %zd", what,
                     h->v.len, itemsize);
        return -1;
    }
    return 0;
}

static void release(Held *hs, int n)
{
    for (int i = 0; i < n; i++)
        if (hs[i].held) {
            PyBuffer_Release(&hs[i].v);
            hs[i].held = 0;
        }
}

/* load_utxos(txids, tx_ids, ns, values, addr_ids, types): bulk add of unspent outputs, any
 * order (txids: n x 32 bytes; tx_ids, values, addr_ids int64 with -1 for none; ns uint32;
 * types uint8). */
static PyObject *Core_load_utxos(Core *c, PyObject *args)
{
    PyObject *o[6];
    Held h[6];
    memset(h, 0, sizeof(h));
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "OOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5]))
        return NULL;
    if (get_buf(o[1], &h[1], 8, -1, "tx_ids") < 0)
        goto fail;
    Py_ssize_t n = h[1].v.len / 8;
    if (get_buf(o[0], &h[0], 32, n, "txids") < 0 || get_buf(o[2], &h[2], 4, n, "ns") < 0 ||
        get_buf(o[3], &h[3], 8, n, "values") < 0 || get_buf(o[4], &h[4], 8, n, "addr_ids") < 0 ||
        get_buf(o[5], &h[5], 1, n, "types") < 0)
        goto fail;
    const uint8_t *txids = h[0].v.buf, *types = h[5].v.buf;
    const int64_t *tx_ids = h[1].v.buf, *values = h[3].v.buf, *addrs = h[4].v.buf;
    const uint32_t *ns = h[2].v.buf;
    c->journaling = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (utxo_add(c, txids + 32 * i, ns[i], tx_ids[i], values[i], addrs[i], types[i]) < 0)
            goto fail;
    release(h, 6);
    Py_RETURN_NONE;
fail:
    release(h, 6);
    return NULL;
}

/* load_addresses(addr_ids, types, offsets, data): the store's addresses in addr_id order
 * (int64, int8, int32 offsets n + 1 into data). Records are checked and rewritten. */
static PyObject *Core_load_addresses(Core *c, PyObject *args)
{
    PyObject *o[4];
    Held h[4];
    memset(h, 0, sizeof(h));
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "OOOO", &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    if (get_buf(o[0], &h[0], 8, -1, "addr_ids") < 0)
        goto fail;
    Py_ssize_t n = h[0].v.len / 8;
    if (get_buf(o[1], &h[1], 1, n, "types") < 0 ||
        get_buf(o[2], &h[2], 4, n + 1, "offsets") < 0 || get_buf(o[3], &h[3], 1, -1, "data") < 0)
        goto fail;
    const int64_t *ids = h[0].v.buf;
    const int8_t *types = h[1].v.buf;
    const int32_t *offs = h[2].v.buf;
    const uint8_t *data = h[3].v.buf;
    if (rec_reserve(c, (uint64_t)c->next_addr_id + (uint64_t)n) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t id = c->next_addr_id;
        int32_t a = offs[i], b = offs[i + 1];
        if (ids[i] != id) {
            PyErr_Format(PyExc_ValueError, "addresses out of order: addr_id %lld where %lld "
                         "was expected", (long long)ids[i], (long long)id);
            goto fail;
        }
        if (a < 0 || b < a || b > h[3].v.len || b - a > MAX_PAYLOAD || (uint64_t)id >= AID_LIMIT) {
            PyErr_Format(PyExc_ValueError, "address %lld: payload of %d bytes", (long long)id,
                         (int)(b - a));
            goto fail;
        }
        uint8_t rec[REC_SIZE];
        make_rec(rec, types[i], data + a, (size_t)(b - a));
        uint8_t *dst = c->recs + (uint64_t)id * REC_SIZE;
        if ((uint64_t)id >= c->file_records || memcmp(dst, rec, REC_SIZE) != 0) {
            if ((uint64_t)id < c->file_records)
                c->rec_rewritten++;
            memcpy(dst, rec, REC_SIZE);
        }
        if (a_insert(c, a_hash(c, rec), id) < 0)
            goto fail;
        c->next_addr_id++;
    }
    release(h, 4);
    Py_RETURN_NONE;
fail:
    release(h, 4);
    return NULL;
}

/* ---------------------------------------------------------------------- add_block */

enum {
    BF_RAW, BF_TXIDS, BF_N_IN, BF_N_OUT, BF_SIZE, BF_BASE, BF_MWEB, BF_VER, BF_LOCK, BF_OVAL,
    BF_OTYPE,
    BF_OOFF, BF_OLEN, BF_IPOFF, BF_IVOUT, BF_ISEQ, BF_ISOFF, BF_ISLEN, BF_IWOFF, BF_IWLEN,
    N_FIELDS
};
static const char *FIELD_NAMES[N_FIELDS] = {
    "raw", "txids", "tx_n_in", "tx_n_out", "tx_size", "tx_base_size", "tx_mweb_size",
    "tx_version", "tx_lock_time", "out_value", "out_type", "out_script_offset", "out_script_len",
    "in_prev_txid_offset", "in_prev_vout", "in_sequence", "in_script_offset", "in_script_len",
    "in_witness_offset", "in_witness_len",
};
static const Py_ssize_t FIELD_SIZES[N_FIELDS] = {1, 32, 4, 4, 4, 4, 4, 4, 4, 8, 1,
                                                 4, 4, 4, 4, 4, 4, 4, 4, 4};
/* 0: per transaction, 1: per output, 2: per input, -1: raw */
static const int FIELD_AXIS[N_FIELDS] = {-1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2,
                                         2, 2};

/* ------------------------------------------------------------------- signature style */

/* The rules of cointrail.chain.utxo.sigstyle (which documents them); tests compare the two. */
enum { SIG_ECDSA = 1, SIG_HIGH_R = 2, SIG_NOT_ALL = 4, SIG_SCHNORR = 8, SIG_UNCOMPRESSED = 16 };

/* BIP 66's IsValidSignatureEncoding (strict DER plus the sighash byte). */
static int der_signature(const uint8_t *sig, uint64_t size)
{
    if (size < 9 || size > 73 || sig[0] != 0x30 || sig[1] != size - 3 || sig[2] != 0x02)
        return 0;
    uint64_t len_r = sig[3];
    if (len_r == 0 || 5 + len_r >= size)
        return 0;
    uint64_t len_s = sig[5 + len_r];
    if (len_r + len_s + 7 != size)
        return 0;
    if ((sig[4] & 0x80) || (len_r > 1 && sig[4] == 0 && !(sig[5] & 0x80)))
        return 0;
    if (sig[len_r + 4] != 0x02 || len_s == 0)
        return 0;
    if ((sig[len_r + 6] & 0x80) || (len_s > 1 && sig[len_r + 6] == 0 && !(sig[len_r + 7] & 0x80)))
        return 0;
    return 1;
}

static int item_flags(const uint8_t *item, uint64_t size)
{
    if (der_signature(item, size)) {
        int flags = SIG_ECDSA;
        if (item[3] == 33)
            flags |= SIG_HIGH_R;
        if (item[size - 1] != 0x01)
            flags |= SIG_NOT_ALL;
        return flags;
    }
    if (size == 65 && item[0] == 0x04)
        return SIG_UNCOMPRESSED;
    return 0;
}

/* A compact size at *p (p < end); -1 past the end. */
static int64_t wit_size(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *q = *p;
    uint64_t v;
    if (q >= end)
        return -1;
    if (*q < 0xfd) {
        v = *q;
        q += 1;
    } else {
        int w = *q == 0xfd ? 2 : *q == 0xfe ? 4 : 8;
        if (end - q < 1 + w)
            return -1;
        v = 0;
        for (int b = w; b >= 1; b--)
            v = (v << 8) | q[b];
        q += 1 + w;
    }
    if (v > 0x7fffffff)
        return -1;
    *p = q;
    return (int64_t)v;
}

static int sig_flags(const uint8_t *ss, uint32_t ss_len, const uint8_t *wit, uint32_t wit_len,
                     int spent_type)
{
    int flags = 0;
    const uint8_t *p = ss, *end = ss + ss_len;
    while (p < end) {
        uint8_t op = *p++;
        uint64_t size;
        if (op > 0x4e)
            break;
        if (op < 0x4c) {
            size = op;
        } else {
            int w = op == 0x4c ? 1 : op == 0x4d ? 2 : 4;
            if (end - p < w)
                break;
            size = 0;
            for (int b = w - 1; b >= 0; b--)
                size = (size << 8) | p[b];
            p += w;
        }
        if (size > (uint64_t)(end - p))
            break;
        flags |= item_flags(p, size);
        p += size;
    }
    if (wit_len == 0)
        return flags;
    const uint8_t *q = wit, *wend = wit + wit_len;
    int64_t count = wit_size(&q, wend);
    const uint8_t *items[3];
    uint64_t sizes[3];
    int64_t seen = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t size = wit_size(&q, wend);
        if (size < 0 || size > wend - q)
            break;
        if (spent_type == T_WITNESS_V1_TAPROOT) {
            if (seen < 3) {
                items[seen] = q;
                sizes[seen] = (uint64_t)size;
            }
            seen++;
        } else {
            flags |= item_flags(q, (uint64_t)size);
        }
        q += size;
    }
    if (spent_type == T_WITNESS_V1_TAPROOT) {
        if (seen == 2 && sizes[1] >= 1 && items[1][0] == 0x50)
            seen--; /* an annex */
        if (seen == 1 && (sizes[0] == 64 || sizes[0] == 65)) {
            flags |= SIG_SCHNORR;
            if (sizes[0] == 65 && items[0][64] != 0x01)
                flags |= SIG_NOT_ALL;
        }
    }
    return flags;
}

static int missing_output(const uint8_t *txid, Py_ssize_t tx_index, const uint8_t *prev,
                          uint32_t vout)
{
    PyObject *e = Py_BuildValue("(ny#y#I)", tx_index, (const char *)txid, (Py_ssize_t)32,
                                (const char *)prev, (Py_ssize_t)32, vout);
    if (e != NULL) {
        PyErr_SetObject(MissingOutput, e);
        Py_DECREF(e);
    }
    return -1;
}

/* Before a block's rows are made: each output's address record and hash into the scratch
 * (rec[0] = 0xff: the script has no valid address form), and a prefetch of every cache line
 * the block's lookups will read first: each input's unspent-output slot, each output's
 * address slot, then the record of the address found there. The lookups miss the caches
 * (the tables are far larger than them at full scale); issued together, the misses overlap
 * instead of coming one after another. A prefetch is a hint: a table that grows meanwhile
 * costs nothing but the hint. */
static int prefetch_block(Core *c, Held *f, PyObject *addresses)
{
    const uint8_t *raw = f[BF_RAW].v.buf;
    const uint32_t *n_in = f[BF_N_IN].v.buf;
    const uint8_t *otype = f[BF_OTYPE].v.buf;
    const uint32_t *ooff = f[BF_OOFF].v.buf, *olen = f[BF_OLEN].v.buf;
    const uint32_t *ipoff = f[BF_IPOFF].v.buf, *ivout = f[BF_IVOUT].v.buf;
    Py_ssize_t n_outs = f[BF_OVAL].v.len / 8, n_ins = f[BF_IVOUT].v.len / 4;
    if (n_outs > c->scr_cap) {
        Py_ssize_t cap = n_outs + n_outs / 2 + 64;
        uint8_t *recs = PyMem_Realloc(c->scr_recs, (size_t)cap * REC_SIZE);
        if (recs == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->scr_recs = recs;
        uint64_t *hash = PyMem_Realloc(c->scr_hash, (size_t)cap * sizeof(uint64_t));
        if (hash == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->scr_hash = hash;
        c->scr_cap = cap;
    }
    for (Py_ssize_t j = f[BF_SIZE].v.len ? n_in[0] : 0; j < n_ins; j++) {
        uint64_t prefix;
        memcpy(&prefix, raw + ipoff[j], 8);
        uint64_t h = u_hash(c, prefix, ivout[j]);
        UPart *p = u_part(c, h);
        __builtin_prefetch(&p->s[u_home(h, p->cap)]);
    }
    for (Py_ssize_t k = 0; k < n_outs; k++) {
        uint8_t *rec = c->scr_recs + k * REC_SIZE;
        if (PyList_GET_ITEM(addresses, k) == Py_None)
            continue;
        if (address_rec(otype[k], raw + ooff[k], olen[k], rec) < 0) {
            rec[0] = 0xff;
            continue;
        }
        uint64_t h = a_hash(c, rec);
        c->scr_hash[k] = h;
        APart *p = a_part(c, h);
        __builtin_prefetch(&p->s[a_home(a_fp(h), p->cap)]);
    }
    for (Py_ssize_t k = 0; k < n_outs; k++) {
        const uint8_t *rec = c->scr_recs + k * REC_SIZE;
        if (PyList_GET_ITEM(addresses, k) == Py_None || rec[0] == 0xff)
            continue;
        uint64_t h = c->scr_hash[k];
        APart *p = a_part(c, h);
        uint64_t v = p->s[a_home(a_fp(h), p->cap)];
        if (v && (v & FP_MASK) == a_fp(h))
            __builtin_prefetch(rec_at(c, (int64_t)(v >> FP_BITS) - 1));
    }
    return 0;
}

/* The rows of one block; all or nothing. */
static int add_block_rows(Core *c, Held *f, PyObject *addresses, int32_t height)
{
    const uint8_t *raw = f[BF_RAW].v.buf;
    Py_ssize_t raw_len = f[BF_RAW].v.len;
    const uint8_t *txids = f[BF_TXIDS].v.buf;
    const uint32_t *n_in = f[BF_N_IN].v.buf, *n_out = f[BF_N_OUT].v.buf;
    const uint32_t *size = f[BF_SIZE].v.buf, *base = f[BF_BASE].v.buf, *mweb = f[BF_MWEB].v.buf;
    const int32_t *ver = f[BF_VER].v.buf;
    const uint32_t *lock = f[BF_LOCK].v.buf;
    const int64_t *oval = f[BF_OVAL].v.buf;
    const uint8_t *otype = f[BF_OTYPE].v.buf;
    const uint32_t *ooff = f[BF_OOFF].v.buf, *olen = f[BF_OLEN].v.buf;
    const uint32_t *ipoff = f[BF_IPOFF].v.buf, *ivout = f[BF_IVOUT].v.buf;
    const uint32_t *iseq = f[BF_ISEQ].v.buf, *isoff = f[BF_ISOFF].v.buf, *islen = f[BF_ISLEN].v.buf;
    const uint32_t *iwoff = f[BF_IWOFF].v.buf, *iwlen = f[BF_IWLEN].v.buf;
    Py_ssize_t n_tx = f[BF_SIZE].v.len / 4, n_outs = f[BF_OVAL].v.len / 8;
    Tab *txs = &c->tabs[TB_TXS], *outs = &c->tabs[TB_OUTPUTS], *ins = &c->tabs[TB_INPUTS];
    Tab *cbs = &c->tabs[TB_COINBASES], *adr = &c->tabs[TB_ADDRESSES];
    Py_ssize_t k = 0, j = 0;

    for (Py_ssize_t i = 0; i < n_tx; i++) {
        int64_t tx_id = c->next_tx_id;
        const uint8_t *txid = txids + 32 * i;
        int coinbase = i == 0;
        int64_t in_value = 0, out_value = 0;
        if ((uint64_t)tx_id > ID_MASK) {
            PyErr_SetString(PyExc_OverflowError, "tx_id out of the index's range");
            return -1;
        }
        if (coinbase) {
            if (n_in[0] == 0) {
                PyErr_SetString(PyExc_ValueError, "the coinbase has no input");
                return -1;
            }
            put_i64(cbs, 0, tx_id);
            if (put_bin(cbs, 1, raw + isoff[j], islen[j], 1) < 0)
                return -1;
            tab_next(cbs);
            j += n_in[0];
        } else {
            for (uint32_t n = 0; n < n_in[i]; n++, j++) {
                USlot s;
                int found = utxo_spend(c, raw + ipoff[j], ivout[j], &s);
                if (found < 0)
                    return -1;
                if (!found)
                    return missing_output(txid, i, raw + ipoff[j], ivout[j]);
                if (__builtin_add_overflow(in_value, s.value, &in_value)) {
                    PyErr_SetString(PyExc_OverflowError, "input value sum overflows int64");
                    return -1;
                }
                int64_t addr = (int64_t)(s.b & ID_MASK) - 1;
                put_i64(ins, 0, tx_id);
                put_i32(ins, 1, (int32_t)n);
                put_i64(ins, 2, u_tx(&s));
                put_i32(ins, 3, (int32_t)ivout[j]);
                put_i64(ins, 4, s.value);
                put_i64n(ins, 5, addr, addr >= 0);
                put_i8(ins, 6, (int8_t)((s.b >> ID_BITS) & 0xff));
                put_i64(ins, 7, (int64_t)iseq[j]);
                if ((uint64_t)isoff[j] + islen[j] > (uint64_t)raw_len ||
                    (uint64_t)iwoff[j] + iwlen[j] > (uint64_t)raw_len) {
                    PyErr_SetString(PyExc_ValueError, "an input's script runs past the block");
                    return -1;
                }
                put_i8(ins, 8, (int8_t)sig_flags(raw + isoff[j], islen[j], raw + iwoff[j],
                                                 iwlen[j], (int)((s.b >> ID_BITS) & 0xff)));
                tab_next(ins);
            }
        }
        /* the transaction's txid is in the batch before its outputs are added (txid_of) */
        put_i64(txs, 0, tx_id);
        if (put_bin(txs, 1, txid, 32, 1) < 0)
            return -1;
        for (uint32_t n = 0; n < n_out[i]; n++, k++) {
            int64_t value = oval[k];
            int type = otype[k];
            const uint8_t *script = raw + ooff[k];
            PyObject *text = PyList_GET_ITEM(addresses, k);
            int64_t addr_id = -1;
            if (__builtin_add_overflow(out_value, value, &out_value)) {
                PyErr_SetString(PyExc_OverflowError, "output value sum overflows int64");
                return -1;
            }
            put_i64(outs, 0, tx_id);
            put_i32(outs, 1, (int32_t)n);
            put_i64(outs, 2, value);
            if (text == Py_None) {
                put_i64n(outs, 3, 0, 0);
                put_i8(outs, 4, (int8_t)type);
                if (put_bin(outs, 5, script, olen[k], 1) < 0)
                    return -1;
            } else {
                const uint8_t *rec = c->scr_recs + k * REC_SIZE; /* made by prefetch_block */
                if (rec[0] == 0xff) {
                    PyErr_Format(PyExc_ValueError, "output %zd: a %s script of %u bytes with "
                                 "an address", k, type < N_TYPES ? TYPE_NAMES[type] : "?",
                                 olen[k]);
                    return -1;
                }
                uint64_t h = c->scr_hash[k];
                addr_id = a_lookup(c, rec, h);
                if (addr_id < 0) {
                    Py_ssize_t tlen;
                    const char *t = PyUnicode_AsUTF8AndSize(text, &tlen);
                    if (t == NULL)
                        return -1;
                    addr_id = c->next_addr_id;
                    if ((uint64_t)addr_id + 1 >= AID_LIMIT) {
                        PyErr_SetString(PyExc_OverflowError, "addr_id out of the map's range");
                        return -1;
                    }
                    if (rec_reserve(c, (uint64_t)addr_id + 1) < 0)
                        return -1;
                    memcpy(c->recs + (uint64_t)addr_id * REC_SIZE, rec, REC_SIZE);
                    if (a_insert(c, h, addr_id) < 0)
                        return -1;
                    c->next_addr_id++;
                    put_i64(adr, 0, addr_id);
                    put_i8(adr, 1, (int8_t)rec[0]);
                    if (put_bin(adr, 2, rec + 2, rec[1], 1) < 0 ||
                        put_bin(adr, 3, t, tlen, 1) < 0)
                        return -1;
                    put_i64(adr, 4, tx_id);
                    put_i32(adr, 5, height);
                    tab_next(adr);
                }
                put_i64n(outs, 3, addr_id, 1);
                put_i8(outs, 4, (int8_t)type);
                if (put_bin(outs, 5, NULL, 0, 0) < 0)
                    return -1;
            }
            tab_next(outs);
            if (type != T_NULLDATA &&
                utxo_add(c, txid, n, tx_id, value, addr_id, type) < 0)
                return -1;
        }
        int64_t weight = (int64_t)base[i] * 3 + size[i] - mweb[i];
        put_i32(txs, 2, height);
        put_i32(txs, 3, ver[i]);
        put_i64(txs, 4, (int64_t)lock[i]);
        put_i32(txs, 5, (int32_t)size[i]);
        put_i32(txs, 6, (int32_t)((weight + 3) / 4));
        put_bool(txs, 7, coinbase);
        put_i32(txs, 8, (int32_t)n_in[i]);
        put_i32(txs, 9, (int32_t)n_out[i]);
        put_i64n(txs, 10, in_value, !coinbase);
        put_i64(txs, 11, out_value);
        put_i64n(txs, 12, in_value - out_value, !coinbase);
        tab_next(txs);
        c->next_tx_id++;
    }
    (void)n_outs;
    return 0;
}

/* add_block(block, height): the rows of one decoded block (BlockColumns) appended to the
 * batch, its inputs resolved and its outputs added. All or nothing: on any error the tables,
 * ids and batch are as before the call. Raises MissingOutput(tx_index, txid, prev_txid,
 * prev_vout) for an input whose output is not unspent. */
static PyObject *Core_add_block(Core *c, PyObject *args)
{
    PyObject *blk;
    int height;
    Held f[N_FIELDS];
    memset(f, 0, sizeof(f));
    PyObject *addresses = NULL;
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "Oi", &blk, &height))
        return NULL;
    for (int i = 0; i < N_FIELDS; i++) {
        PyObject *o = PyObject_GetAttrString(blk, FIELD_NAMES[i]);
        if (o == NULL)
            goto fail;
        int rc = get_buf(o, &f[i], FIELD_SIZES[i], -1, FIELD_NAMES[i]);
        Py_DECREF(o);
        if (rc < 0)
            goto fail;
    }
    addresses = PyObject_GetAttrString(blk, "addresses");
    if (addresses == NULL)
        goto fail;
    if (!PyList_Check(addresses)) {
        PyErr_SetString(PyExc_TypeError, "addresses must be a list");
        goto fail;
    }
    /* shape and bounds: every count agrees and every offset lies inside the block */
    Py_ssize_t counts[3] = {f[BF_SIZE].v.len / 4, f[BF_OVAL].v.len / 8, f[BF_IVOUT].v.len / 4};
    for (int i = 1; i < N_FIELDS; i++) {
        if (f[i].v.len != counts[FIELD_AXIS[i]] * FIELD_SIZES[i]) {
            PyErr_Format(PyExc_ValueError, "%s: %zd bytes for %zd rows", FIELD_NAMES[i],
                         f[i].v.len, counts[FIELD_AXIS[i]]);
            goto fail;
        }
    }
    if (PyList_GET_SIZE(addresses) != counts[1]) {
        PyErr_SetString(PyExc_ValueError, "one address (or None) per output is needed");
        goto fail;
    }
    {
        const uint32_t *n_in = f[BF_N_IN].v.buf, *n_out = f[BF_N_OUT].v.buf;
        uint64_t sum_in = 0, sum_out = 0, rl = (uint64_t)f[BF_RAW].v.len;
        for (Py_ssize_t i = 0; i < counts[0]; i++) {
            sum_in += n_in[i];
            sum_out += n_out[i];
        }
        int bad = sum_in != (uint64_t)counts[2] || sum_out != (uint64_t)counts[1];
        const uint32_t *so = f[BF_OOFF].v.buf, *sl = f[BF_OLEN].v.buf;
        for (Py_ssize_t k = 0; !bad && k < counts[1]; k++)
            bad = (uint64_t)so[k] + sl[k] > rl;
        const uint32_t *po = f[BF_IPOFF].v.buf, *io = f[BF_ISOFF].v.buf, *il = f[BF_ISLEN].v.buf;
        for (Py_ssize_t j = 0; !bad && j < counts[2]; j++)
            bad = (uint64_t)po[j] + 32 > rl || (uint64_t)io[j] + il[j] > rl;
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "block columns do not agree with each other");
            goto fail;
        }
    }
    /* marks, room for the block's rows, and the journal */
    int64_t tx_mark = c->next_tx_id, addr_mark = c->next_addr_id;
    uint64_t count_mark = c->utxo_count, coll_mark = c->collisions;
    for (int t = 0; t < N_TABS; t++)
        c->tabs[t].mark = c->tabs[t].n;
    if (tab_reserve(&c->tabs[TB_TXS], counts[0]) < 0 ||
        tab_reserve(&c->tabs[TB_OUTPUTS], counts[1]) < 0 ||
        tab_reserve(&c->tabs[TB_INPUTS], counts[2]) < 0 ||
        tab_reserve(&c->tabs[TB_COINBASES], 1) < 0 ||
        tab_reserve(&c->tabs[TB_ADDRESSES], counts[1]) < 0)
        goto fail;
    if (prefetch_block(c, f, addresses) < 0)
        goto fail;
    journal_clear(c);
    c->journaling = 1;
    int rc = add_block_rows(c, f, addresses, height);
    if (rc < 0) {
        journal_undo(c);
        for (int64_t id = c->next_addr_id - 1; id >= addr_mark; id--)
            a_remove(c, id);
        c->next_addr_id = addr_mark;
        c->next_tx_id = tx_mark;
        c->utxo_count = count_mark;
        c->collisions = coll_mark;
        for (int t = 0; t < N_TABS; t++)
            tab_truncate(&c->tabs[t], c->tabs[t].mark);
    }
    journal_clear(c);
    c->journaling = 0;
    if (rc < 0)
        goto fail;
    release(f, N_FIELDS);
    Py_DECREF(addresses);
    Py_RETURN_NONE;
fail:
    release(f, N_FIELDS);
    Py_XDECREF(addresses);
    return NULL;
}

/* batch(): per table (name, rows, columns), each column (data, offsets or None, validity or
 * None) as read-only buffers for pyarrow.Array.from_buffers. The batch stays until
 * clear_batch() (call it once the rows are committed). */
static PyObject *Core_batch(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    PyObject *out = PyTuple_New(N_TABS);
    if (out == NULL)
        return NULL;
    for (int t = 0; t < N_TABS; t++) {
        Tab *tab = &c->tabs[t];
        PyObject *cols = PyTuple_New(tab->ncols);
        if (cols == NULL)
            goto fail;
        for (int i = 0; i < tab->ncols; i++) {
            Col *col = &tab->cols[i];
            PyObject *item = Py_BuildValue(
                "(OOO)", (PyObject *)col->data,
                col->offsets ? (PyObject *)col->offsets : Py_None,
                col->valid ? (PyObject *)col->valid : Py_None);
            if (item == NULL) {
                Py_DECREF(cols);
                goto fail;
            }
            PyTuple_SET_ITEM(cols, i, item);
        }
        PyObject *entry = Py_BuildValue("(snN)", TAB_NAMES[t], tab->n, cols);
        if (entry == NULL)
            goto fail;
        PyTuple_SET_ITEM(out, t, entry);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *Core_clear_batch(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    for (int t = 0; t < N_TABS; t++)
        if (tab_clear(&c->tabs[t]) < 0)
            return NULL;
    c->batch_first_tx_id = c->next_tx_id;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ direct table access */

static int parse_txid(PyObject *obj, Py_buffer *v)
{
    if (PyObject_GetBuffer(obj, v, PyBUF_SIMPLE) < 0)
        return -1;
    if (v->len != 32) {
        PyBuffer_Release(v);
        PyErr_SetString(PyExc_ValueError, "a txid is 32 bytes");
        return -1;
    }
    return 0;
}

/* utxo_add(txid, tx_id, outputs): outputs [(n, value, addr_id or None, type code)]. */
static PyObject *Core_utxo_add(Core *c, PyObject *args)
{
    PyObject *txid_obj, *outputs;
    long long tx_id;
    Py_buffer v;
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "OLO", &txid_obj, &tx_id, &outputs))
        return NULL;
    if (parse_txid(txid_obj, &v) < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(outputs, "outputs must be a sequence");
    if (seq == NULL) {
        PyBuffer_Release(&v);
        return NULL;
    }
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(seq); i++) {
        unsigned int n;
        long long value;
        PyObject *addr;
        int type;
        ok = PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ILOi", &n, &value, &addr,
                              &type);
        long long addr_id = -1;
        if (ok && addr != Py_None) {
            addr_id = PyLong_AsLongLong(addr);
            ok = !(addr_id == -1 && PyErr_Occurred());
        }
        ok = ok && utxo_add(c, v.buf, n, tx_id, value, addr_id, type) == 0;
    }
    Py_DECREF(seq);
    PyBuffer_Release(&v);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *spent_tuple(const USlot *s)
{
    int64_t addr = (int64_t)(s->b & ID_MASK) - 1;
    PyObject *a = addr < 0 ? Py_NewRef(Py_None) : PyLong_FromLongLong(addr);
    if (a == NULL)
        return NULL;
    return Py_BuildValue("(LLNi)", (long long)u_tx(s), (long long)s->value, a,
                         (int)((s->b >> ID_BITS) & 0xff));
}

/* utxo_spend(txid, n): (tx_id, value, addr_id or None, type) removed, or None. */
static PyObject *Core_utxo_spend(Core *c, PyObject *args)
{
    PyObject *txid_obj;
    unsigned int n;
    Py_buffer v;
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "OI", &txid_obj, &n))
        return NULL;
    if (parse_txid(txid_obj, &v) < 0)
        return NULL;
    USlot s;
    int rc = utxo_spend(c, v.buf, n, &s);
    PyBuffer_Release(&v);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        Py_RETURN_NONE;
    return spent_tuple(&s);
}

static PyObject *Core_utxo_begin(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    journal_clear(c);
    c->journaling = 1;
    c->count_mark = c->utxo_count;
    c->coll_mark = c->collisions;
    Py_RETURN_NONE;
}

static PyObject *Core_utxo_commit(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    journal_clear(c);
    c->journaling = 0;
    Py_RETURN_NONE;
}

static PyObject *Core_utxo_undo(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    if (c->journaling) {
        journal_undo(c);
        c->utxo_count = c->count_mark;
        c->collisions = c->coll_mark;
    }
    c->journaling = 0;
    Py_RETURN_NONE;
}

static int addr_args(PyObject *args, uint8_t rec[REC_SIZE])
{
    int type;
    Py_buffer p;
    if (!PyArg_ParseTuple(args, "iy*", &type, &p))
        return -1;
    if (p.len > MAX_PAYLOAD || type < 0 || type > 127) {
        PyBuffer_Release(&p);
        PyErr_Format(PyExc_ValueError, "payload of %zd bytes (at most %d) or bad type",
                     p.len, MAX_PAYLOAD);
        return -1;
    }
    make_rec(rec, type, p.buf, (size_t)p.len);
    PyBuffer_Release(&p);
    return 0;
}

/* addr_lookup(type, payload): addr_id or None. */
static PyObject *Core_addr_lookup(Core *c, PyObject *args)
{
    uint8_t rec[REC_SIZE];
    CHECK_READY(c);
    if (addr_args(args, rec) < 0)
        return NULL;
    int64_t id = a_lookup(c, rec, a_hash(c, rec));
    if (id < 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(id);
}

/* addr_id(type, payload): the address's id, a new one (the next) if it is not known. */
static PyObject *Core_addr_id(Core *c, PyObject *args)
{
    uint8_t rec[REC_SIZE];
    CHECK_READY(c);
    if (addr_args(args, rec) < 0)
        return NULL;
    uint64_t h = a_hash(c, rec);
    int64_t id = a_lookup(c, rec, h);
    if (id < 0) {
        id = c->next_addr_id;
        if ((uint64_t)id + 1 >= AID_LIMIT) {
            PyErr_SetString(PyExc_OverflowError, "addr_id out of the map's range");
            return NULL;
        }
        if (rec_reserve(c, (uint64_t)id + 1) < 0)
            return NULL;
        memcpy(c->recs + (uint64_t)id * REC_SIZE, rec, REC_SIZE);
        if (a_insert(c, h, id) < 0)
            return NULL;
        c->next_addr_id++;
    }
    return PyLong_FromLongLong(id);
}

/* addr_truncate(count): forget the addresses with ids >= count (newest first). */
static PyObject *Core_addr_truncate(Core *c, PyObject *args)
{
    long long count;
    CHECK_READY(c);
    if (!PyArg_ParseTuple(args, "L", &count))
        return NULL;
    if (count < 0)
        count = 0;
    for (int64_t id = c->next_addr_id - 1; id >= count; id--)
        a_remove(c, id);
    if (count < c->next_addr_id)
        c->next_addr_id = count;
    Py_RETURN_NONE;
}

static PyObject *Core_stats(Core *c, PyObject *noargs)
{
    CHECK_READY(c);
    uint64_t us = 0, uu = 0, as = 0, au = 0, umax = 0, amax = 0;
    for (int i = 0; i < N_UPARTS; i++) {
        us += c->up[i].cap;
        uu += c->up[i].used;
        if (c->up[i].cap > umax)
            umax = c->up[i].cap;
    }
    for (int i = 0; i < N_APARTS; i++) {
        as += c->ap[i].cap;
        au += c->ap[i].used;
        if (c->ap[i].cap > amax)
            amax = c->ap[i].cap;
    }
    Py_ssize_t batch = 0;
    for (int t = 0; t < N_TABS; t++)
        for (int i = 0; i < c->tabs[t].ncols; i++) {
            Col *col = &c->tabs[t].cols[i];
            batch += col->data->cap + (col->offsets ? col->offsets->cap : 0) +
                     (col->valid ? col->valid->cap : 0);
        }
    return Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsKsKsnsnsKsKsLsLsLsnsisisKsK}",
        "utxos", (unsigned long long)c->utxo_count,
        "utxo_slots", (unsigned long long)us,
        "utxo_used_slots", (unsigned long long)uu,
        "utxo_bytes", (unsigned long long)(us * sizeof(USlot) + N_UPARTS * sizeof(UPart)),
        "utxo_largest_partition_bytes", (unsigned long long)(umax * sizeof(USlot)),
        "collisions", (unsigned long long)c->collisions,
        "addresses", (unsigned long long)c->next_addr_id,
        "addr_slots", (unsigned long long)as,
        "addr_used_slots", (unsigned long long)au,
        "addr_bytes", (unsigned long long)(as * 8 + N_APARTS * sizeof(APart)),
        "side_entries", PyDict_GET_SIZE(c->side),
        "batch_bytes", batch,
        "record_bytes_mapped", (unsigned long long)c->map_len,
        "addr_largest_partition_bytes", (unsigned long long)(amax * 8),
        "next_tx_id", (long long)c->next_tx_id,
        "next_addr_id", (long long)c->next_addr_id,
        "batch_first_tx_id", (long long)c->batch_first_tx_id,
        "batch_txs", c->tabs[TB_TXS].n,
        "record_file", c->fd >= 0,
        "journaling", c->journaling,
        "addr_verified_hits", (unsigned long long)c->addr_hits,
        "addr_false_matches", (unsigned long long)c->addr_false);
}

static PyObject *Core_get_next_tx_id(Core *c, void *closure)
{
    return PyLong_FromLongLong(c->next_tx_id);
}

static PyObject *Core_get_next_addr_id(Core *c, void *closure)
{
    return PyLong_FromLongLong(c->next_addr_id);
}

static PyObject *Core_get_batch_txs(Core *c, void *closure)
{
    return PyLong_FromSsize_t(c->tabs[TB_TXS].n);
}

static PyObject *Core_get_batch_blob_bytes(Core *c, void *closure)
{
    Py_ssize_t m = 0;
    for (int t = 0; t < N_TABS; t++)
        for (int i = 0; i < c->tabs[t].ncols; i++)
            if (c->tabs[t].cols[i].kind == K_BIN && c->tabs[t].cols[i].data->len > m)
                m = c->tabs[t].cols[i].data->len;
    return PyLong_FromSsize_t(m);
}

static PyObject *Core_get_utxo_count(Core *c, void *closure)
{
    return PyLong_FromUnsignedLongLong(c->utxo_count);
}

static PyObject *Core_get_collisions(Core *c, void *closure)
{
    return PyLong_FromUnsignedLongLong(c->collisions);
}

static PyGetSetDef Core_getset[] = {
    {"next_tx_id", (getter)Core_get_next_tx_id, NULL, "the next transaction's tx_id", NULL},
    {"next_addr_id", (getter)Core_get_next_addr_id, NULL, "the next new address's id", NULL},
    {"batch_txs", (getter)Core_get_batch_txs, NULL, "transactions in the batch", NULL},
    {"batch_blob_bytes", (getter)Core_get_batch_blob_bytes, NULL,
     "bytes of the largest binary column of the batch", NULL},
    {"utxo_count", (getter)Core_get_utxo_count, NULL, "unspent outputs held", NULL},
    {"collisions", (getter)Core_get_collisions, NULL, "8-byte txid-prefix collisions", NULL},
    {NULL},
};

static PyMethodDef Core_methods[] = {
    {"reset", (PyCFunction)Core_reset, METH_VARARGS, "reset(next_tx_id, next_addr_id)"},
    {"open_records", (PyCFunction)Core_open_records, METH_VARARGS, "open_records(path)"},
    {"finish_load", (PyCFunction)Core_finish_load, METH_NOARGS, "records rewritten"},
    {"load_utxos", (PyCFunction)Core_load_utxos, METH_VARARGS, NULL},
    {"load_addresses", (PyCFunction)Core_load_addresses, METH_VARARGS, NULL},
    {"add_block", (PyCFunction)Core_add_block, METH_VARARGS, "add_block(columns, height)"},
    {"batch", (PyCFunction)Core_batch, METH_NOARGS, NULL},
    {"clear_batch", (PyCFunction)Core_clear_batch, METH_NOARGS, NULL},
    {"utxo_add", (PyCFunction)Core_utxo_add, METH_VARARGS, NULL},
    {"utxo_spend", (PyCFunction)Core_utxo_spend, METH_VARARGS, NULL},
    {"utxo_begin", (PyCFunction)Core_utxo_begin, METH_NOARGS, NULL},
    {"utxo_commit", (PyCFunction)Core_utxo_commit, METH_NOARGS, NULL},
    {"utxo_undo", (PyCFunction)Core_utxo_undo, METH_NOARGS, NULL},
    {"addr_lookup", (PyCFunction)Core_addr_lookup, METH_VARARGS, NULL},
    {"addr_id", (PyCFunction)Core_addr_id, METH_VARARGS, NULL},
    {"addr_truncate", (PyCFunction)Core_addr_truncate, METH_VARARGS, NULL},
    {"stats", (PyCFunction)Core_stats, METH_NOARGS, NULL},
    {NULL},
};

static PyTypeObject Core_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cointrail.store._ingestcore.Core",
    .tp_basicsize = sizeof(Core),
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear_refs,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Core(txid_of, seed, utxo_hash_mask=~0, addr_hash_mask=~0): the unspent-output "
              "table, the address map and the batch of one UtxoIngestor.",
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
    .tp_init = (initproc)Core_init,
    .tp_new = Core_new,
};

/* sig_flags(script_sig, witness, spent_type): the C rules on one input, for the tests that
 * compare them with cointrail.chain.utxo.sigstyle (witness: the serialized stack, count first,
 * b"" without witness; spent_type: a ScriptType code). */
static PyObject *mod_sig_flags(PyObject *self, PyObject *args)
{
    Py_buffer ss, wit;
    int spent_type;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*i", &ss, &wit, &spent_type))
        return NULL;
    int flags = 0;
    if (ss.len <= 0xffffffff && wit.len <= 0xffffffff)
        flags = sig_flags(ss.buf, (uint32_t)ss.len, wit.buf, (uint32_t)wit.len, spent_type);
    PyBuffer_Release(&ss);
    PyBuffer_Release(&wit);
    return PyLong_FromLong(flags);
}

static PyMethodDef module_methods[] = {
    {"sig_flags", mod_sig_flags, METH_VARARGS, "sig_flags(script_sig, witness, spent_type)"},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "cointrail.store._ingestcore",
    .m_doc = "Compiled core of UtxoIngestor (see _ingestcore.c for why it is C).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__ingestcore(void)
{
    if (PyType_Ready(&Buf_Type) < 0 || PyType_Ready(&Core_Type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    MissingOutput = PyErr_NewException("cointrail.store._ingestcore.MissingOutput", NULL, NULL);
    PyObject *names = PyTuple_New(N_TYPES);
    PyObject *tables = PyTuple_New(N_TABS);
    if (MissingOutput == NULL || names == NULL || tables == NULL)
        goto fail;
    for (int i = 0; i < N_TYPES; i++)
        PyTuple_SET_ITEM(names, i, PyUnicode_FromString(TYPE_NAMES[i]));
    for (int t = 0; t < N_TABS; t++) {
        int n = 0;
        while (TAB_KINDS[t][n] != 99)
            n++;
        PyObject *kinds = PyTuple_New(n);
        if (kinds == NULL)
            goto fail;
        for (int i = 0; i < n; i++)
            PyTuple_SET_ITEM(kinds, i, PyLong_FromLong(TAB_KINDS[t][i]));
        PyTuple_SET_ITEM(tables, t, Py_BuildValue("(sN)", TAB_NAMES[t], kinds));
    }
    Py_INCREF(&Core_Type);
    if (PyModule_AddObject(m, "Core", (PyObject *)&Core_Type) < 0 ||
        PyModule_AddObject(m, "MissingOutput", MissingOutput) < 0 ||
        PyModule_AddObject(m, "SCRIPT_TYPE_NAMES", names) < 0 ||
        PyModule_AddObject(m, "TABLES", tables) < 0 ||
        PyModule_AddIntConstant(m, "VERSION", CORE_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "RECORD_SIZE", REC_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "HEADER_SIZE", HDR_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "UTXO_SLOT_BYTES", sizeof(USlot)) < 0 ||
        PyModule_AddIntConstant(m, "ADDR_SLOT_BYTES", 8) < 0)
        goto fail;
    return m;
fail:
    Py_XDECREF(names);
    Py_XDECREF(tables);
    Py_DECREF(m);
    return NULL;
}
