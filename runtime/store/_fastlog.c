/*
 * runtime.store._fastlog: the optional C accelerator of CommitLog.append_batch.
 *
 * One function, encode_batch(), does what the two per-record loops of append_batch do in
 * Python (commitlog.py keeps them as the fallback and the reference):
 *
 *   pass 1  size and validate every record: the common case (topic already in the topic
 *           cache, ASCII properties) inline, anything else through the Python `prepare`
 *           callback, whose Invalid result is returned as is (nothing encoded);
 *   pass 2  encode: end-of-segment BLANK markers and cuts, queue offsets through the
 *           local/overlay/next_offsets dicts, the record in RocketMQ's V1 layout (record.py)
 *           with the masked zlib body CRC, the property scan (the semantics of
 *           record_dispatch._PROP_RE: TAGS, KEYS, UNIQ_KEY, DELAY, WAIT at the start or
 *           after \x02, value up to the next \x02, later occurrences win), the tag code (Java
 *           String.hashCode of TAGS; record_dispatch.tags_code_of for DELAY records), the
 *           consume-queue blocks and the index items (record_dispatch.index_keys when KEYS is
 *           present).
 *
 * The body CRC is zlib's CRC-32; on x86-64 CPUs with PCLMULQDQ (checked at import) bodies of 64
 * bytes and more are folded with carry-less multiplication first (see clmul_crc).
 *
 * index_insert() is IndexService.put_items' per-key loop (index.py): hash, chain and store each
 * key of the dispatched index items in an index file's arrays.
 *
 * Everything runs with the GIL held (a batch takes microseconds). No global mutable state:
 * the interned attribute names live in the module state. Every write into the output buffer
 * is checked against its capacity.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_CLMUL_CRC 1
#endif

#define HEADER_SIZE 88 /* an IPv4 record's fixed part; each IPv6 host adds V6_EXTRA */
#define BORNHOST_V6 0x10
#define STOREHOST_V6 0x20
#define HOST_V6_MASK 0x30
#define V6_EXTRA 12
#define BLANK_SIZE 8
#define ENTRY_SIZE 20
#define RECORD_MAGIC 0xDAA320A7u
#define BLANK_MAGIC 0xCBD43194u
#define MAX_PROPERTIES_SIZE 32767
#define TRAN_MASK 0xC
#define TRAN_PREPARED 0x4
#define TRAN_ROLLBACK 0xC
#define NARGS 15
/* Bump when a signature or a result changes: commitlog.py and index.py ignore a stale build. */
#define API_VERSION 2

enum {
    A_TOPIC,
    A_QUEUE_ID,
    A_BODY,
    A_PROPERTIES,
    A_FLAG,
    A_SYS_FLAG,
    A_BORN_TIMESTAMP,
    A_BORN_HOST,
    A_BORN_PORT,
    A_RECONSUME_TIMES,
    A_PREPARED_OFFSET,
    N_ATTRS
};

static const char *const attr_names[N_ATTRS] = {
    "topic",     "queue_id",       "body",      "properties",      "flag",
    "sys_flag",  "born_timestamp", "born_host", "born_port",       "reconsume_times",
    "prepared_transaction_offset",
};

typedef struct {
    PyObject *names[N_ATTRS];
    int clmul; /* the CPU has PCLMULQDQ: body CRCs fold 64 bytes at a time (set once at import) */
} fl_state;

/* What pass 1 learnt about one record; every PyObject* here is an owned reference. */
typedef struct {
    PyObject *topic;       /* str */
    PyObject *queue_id;    /* int */
    PyObject *body;        /* bytes, or anything with a simple buffer (view) */
    PyObject *topic_b;     /* bytes */
    PyObject *props_owner; /* the ASCII str or the encoded bytes holding `props` */
    const char *props;
    Py_ssize_t plen;
    const char *bdata;
    Py_ssize_t blen;
    Py_ssize_t size;
    PyObject *born_host;   /* bytes (4 or 16: IPv6) */
    int hosts;             /* the sysFlag host bits: BORNHOST_V6 | STOREHOST_V6 */
    Py_buffer view;
    int has_view;
} shape_t;

/* The fixed part of a record (through bodyLen) whose sysFlag has these host bits. */
static inline Py_ssize_t header_size(long long sys_flag)
{
    return HEADER_SIZE + ((sys_flag & BORNHOST_V6) ? V6_EXTRA : 0) +
           ((sys_flag & STOREHOST_V6) ? V6_EXTRA : 0);
}

/* -- small helpers ----------------------------------------------------------------------- */

static inline void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static int as_i64(PyObject *obj, const char *what, long long *out)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow) {
        PyErr_Format(PyExc_OverflowError, "%s does not fit in an int64", what);
        return -1;
    }
    *out = v;
    return 0;
}

static int as_i32(PyObject *obj, const char *what, long long *out)
{
    if (as_i64(obj, what, out) < 0) {
        return -1;
    }
    if (*out < INT32_MIN || *out > INT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s does not fit in an int32", what);
        return -1;
    }
    return 0;
}

static int attr_i64(PyObject *rec, PyObject *name, const char *what, long long *out, int i32)
{
    PyObject *v = PyObject_GetAttr(rec, name);
    if (v == NULL) {
        return -1;
    }
    int r = i32 ? as_i32(v, what, out) : as_i64(v, what, out);
    Py_DECREF(v);
    return r;
}

/* The length of a host given as bytes or bytearray; -1 with TypeError otherwise. */
static Py_ssize_t host_len(PyObject *obj)
{
    if (PyBytes_Check(obj)) {
        return PyBytes_GET_SIZE(obj);
    }
    if (PyByteArray_Check(obj)) {
        return PyByteArray_GET_SIZE(obj);
    }
    PyErr_SetString(PyExc_TypeError, "a host must be bytes");
    return -1;
}

/* An n-byte host field (4: IPv4, 16: IPv6) as struct's "4s" / "16s" packs it: truncated or
   zero-padded. */
static int put_host(unsigned char *dst, PyObject *obj, size_t n)
{
    const char *data;
    Py_ssize_t len;
    if (PyBytes_Check(obj)) {
        data = PyBytes_AS_STRING(obj);
        len = PyBytes_GET_SIZE(obj);
    }
    else if (PyByteArray_Check(obj)) {
        data = PyByteArray_AS_STRING(obj);
        len = PyByteArray_GET_SIZE(obj);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "a host must be bytes");
        return -1;
    }
    memset(dst, 0, n);
    memcpy(dst, data, (size_t)len < n ? (size_t)len : n);
    return 0;
}

static uLong zlib_crc(uLong crc, const unsigned char *p, Py_ssize_t len)
{
    while (len > 0) {
        uInt chunk = len > (1 << 30) ? (uInt)(1 << 30) : (uInt)len;
        crc = crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return crc;
}

#ifdef HAVE_CLMUL_CRC
/*
 * zlib's CRC-32 (reflected polynomial 0xEDB88320) of len >= 64 bytes by carry-less
 * multiplication, the folding method of Intel's white paper "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ Instruction": four 128-bit lanes are folded 512 bits forward
 * (constants x^(512+32) and x^(512-32) mod P, bit-reflected) while data remains, then into one
 * lane (128-bit fold constants), which keeps the message's residue. Instead of a Barrett
 * reduction, zlib finishes: the raw CRC of the message equals the raw CRC of the folded lane's
 * 16 bytes, followed by the unfolded tail. The initial register (~0 for a fresh CRC) is XORed
 * into the first 4 bytes, as the register would be.
 */
__attribute__((target("pclmul"))) static uint32_t clmul_crc(const unsigned char *p,
                                                                     Py_ssize_t len)
{
    const __m128i k512 = _mm_set_epi64x(0x1c6e41596LL, 0x154442bd4LL);
    const __m128i k128 = _mm_set_epi64x(0x0ccaa009eLL, 0x1751997d0LL);
    __m128i x0 = _mm_loadu_si128((const __m128i *)p);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 48));
    x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)0xFFFFFFFF));
    p += 64;
    len -= 64;
#define FOLD(x, k, next) \
    _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128((x), (k), 0x00), \
                                _mm_clmulepi64_si128((x), (k), 0x11)), (next))
    while (len >= 64) {
        x0 = FOLD(x0, k512, _mm_loadu_si128((const __m128i *)p));
        x1 = FOLD(x1, k512, _mm_loadu_si128((const __m128i *)(p + 16)));
        x2 = FOLD(x2, k512, _mm_loadu_si128((const __m128i *)(p + 32)));
        x3 = FOLD(x3, k512, _mm_loadu_si128((const __m128i *)(p + 48)));
        p += 64;
        len -= 64;
    }
    x0 = FOLD(x0, k128, x1);
    x0 = FOLD(x0, k128, x2);
    x0 = FOLD(x0, k128, x3);
    while (len >= 16) {
        x0 = FOLD(x0, k128, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        len -= 16;
    }
#undef FOLD
    unsigned char lane[16];
    _mm_storeu_si128((__m128i *)lane, x0);
    /* raw CRC from register 0 over the lane = ~crc32(~0, lane); then the tail */
    uLong crc = crc32(0xFFFFFFFFUL, lane, 16);
    return (uint32_t)zlib_crc(crc, p, len);
}
#endif

/* RocketMQ's body CRC: zlib's CRC-32, masked to a non-negative int32. */
static uint32_t body_crc(const fl_state *st, const char *data, Py_ssize_t len)
{
    uint32_t crc;
#ifdef HAVE_CLMUL_CRC
    if (st->clmul && len >= 64) {
        crc = clmul_crc((const unsigned char *)data, len);
    }
    else
#endif
    {
        crc = (uint32_t)zlib_crc(crc32(0L, Z_NULL, 0), (const unsigned char *)data, len);
    }
    return crc & 0x7FFFFFFFu;
}

/* Java String.hashCode of UTF-8 text, over its UTF-16 code units, as a signed int32. */
static int java_hash(const char *s, Py_ssize_t len, long long *out)
{
    uint32_t h = 0;
    Py_ssize_t i;
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            break;
        }
        h = 31u * h + (unsigned char)s[i];
    }
    if (i < len) { /* non-ASCII: decode (strictly) and hash the code points */
        PyObject *text = PyUnicode_DecodeUTF8(s, len, "strict");
        if (text == NULL) {
            return -1;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(text);
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        h = 0;
        for (Py_ssize_t j = 0; j < n; j++) {
            Py_UCS4 cp = PyUnicode_READ(kind, data, j);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                h = 31u * h + (uint32_t)(0xD800 + (cp >> 10));
                h = 31u * h + (uint32_t)(0xDC00 + (cp & 0x3FF));
            }
            else {
                h = 31u * h + (uint32_t)cp;
            }
        }
        Py_DECREF(text);
    }
    *out = (long long)(int32_t)h;
    return 0;
}

/* The property values the store reads (record_dispatch._PROP_RE): a NULL pointer means absent. */
typedef struct {
    const char *tags, *keys, *uniq, *delay;
    Py_ssize_t tags_len, keys_len, uniq_len, delay_len;
    int wait;
} props_t;

#define NAME_IS(seg, slen, lit) \
    ((slen) >= (Py_ssize_t)sizeof(lit) - 1 && memcmp((seg), (lit), sizeof(lit) - 1) == 0)

static void scan_properties(const char *p, Py_ssize_t len, props_t *out)
{
    memset(out, 0, sizeof(*out));
    out->wait = 1;
    const char *end = p + len;
    const char *seg = p;
    while (seg < end) {
        const char *stop = memchr(seg, '\x02', (size_t)(end - seg));
        if (stop == NULL) {
            stop = end;
        }
        Py_ssize_t slen = stop - seg;
        if (NAME_IS(seg, slen, "TAGS\x01")) {
            out->tags = seg + 5;
            out->tags_len = slen - 5;
        }
        else if (NAME_IS(seg, slen, "KEYS\x01")) {
            out->keys = seg + 5;
            out->keys_len = slen - 5;
        }
        else if (NAME_IS(seg, slen, "UNIQ_KEY\x01")) {
            out->uniq = seg + 9;
            out->uniq_len = slen - 9;
        }
        else if (NAME_IS(seg, slen, "DELAY\x01")) {
            out->delay = seg + 6;
            out->delay_len = slen - 6;
        }
        else if (NAME_IS(seg, slen, "WAIT\x01")) {
            out->wait = !(slen - 5 == 5 && memcmp(seg + 5, "false", 5) == 0);
        }
        seg = stop + 1; /* past the \x02 (or past the end) */
    }
}

static PyObject *str_or_none(const char *s, Py_ssize_t len)
{
    if (s == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_DecodeUTF8(s, len, "strict");
}

static void release_shapes(shape_t *shapes, Py_ssize_t n)
{
    if (shapes == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        shape_t *s = &shapes[i];
        if (s->has_view) {
            PyBuffer_Release(&s->view);
        }
        Py_XDECREF(s->topic);
        Py_XDECREF(s->queue_id);
        Py_XDECREF(s->body);
        Py_XDECREF(s->topic_b);
        Py_XDECREF(s->props_owner);
        Py_XDECREF(s->born_host);
    }
    PyMem_Free(shapes);
}

/* -- pass 1 ------------------------------------------------------------------------------ */

/* Fill `s` from the Prepared namedtuple `prepare` returned (bytes topic, bytes props, size). */
static int take_prepared(shape_t *s, PyObject *prep)
{
    if (PyTuple_GET_SIZE(prep) < 4) {
        PyErr_SetString(PyExc_TypeError, "prepare returned a short Prepared");
        return -1;
    }
    PyObject *topic_b = PyTuple_GET_ITEM(prep, 1);
    PyObject *props_b = PyTuple_GET_ITEM(prep, 2);
    PyObject *size = PyTuple_GET_ITEM(prep, 3);
    if (!PyBytes_Check(topic_b) || !PyBytes_Check(props_b) || !PyLong_Check(size)) {
        PyErr_SetString(PyExc_TypeError, "prepare returned a malformed Prepared");
        return -1;
    }
    Py_ssize_t sz = PyLong_AsSsize_t(size);
    if (sz == -1 && PyErr_Occurred()) {
        return -1;
    }
    Py_XSETREF(s->topic_b, Py_NewRef(topic_b));
    Py_XSETREF(s->props_owner, Py_NewRef(props_b));
    s->props = PyBytes_AS_STRING(props_b);
    s->plen = PyBytes_GET_SIZE(props_b);
    s->size = sz;
    return 0;
}

/* Returns 1 when the record was shaped, 0 when `*invalid` holds prepare's refusal, -1 on error.
 */
static int shape_record(fl_state *st, shape_t *s, PyObject *rec, PyObject *topic_cache,
                        PyObject *prepare, PyObject *prepared_type, PyObject *max_size_obj,
                        PyObject *seg_size_obj, long long max_size, long long seg_size,
                        int store_v6, PyObject *store_v6_obj, PyObject **invalid)
{
    s->born_host = PyObject_GetAttr(rec, st->names[A_BORN_HOST]);
    if (s->born_host == NULL) {
        return -1;
    }
    Py_ssize_t blen_host = host_len(s->born_host);
    if (blen_host < 0) {
        return -1;
    }
    s->hosts = store_v6 | (blen_host == 16 ? BORNHOST_V6 : 0);
    Py_ssize_t head = header_size(s->hosts);
    s->topic = PyObject_GetAttr(rec, st->names[A_TOPIC]);
    if (s->topic == NULL) {
        return -1;
    }
    s->queue_id = PyObject_GetAttr(rec, st->names[A_QUEUE_ID]);
    if (s->queue_id == NULL) {
        return -1;
    }
    s->body = PyObject_GetAttr(rec, st->names[A_BODY]);
    if (s->body == NULL) {
        return -1;
    }
    if (PyBytes_Check(s->body)) {
        s->bdata = PyBytes_AS_STRING(s->body);
        s->blen = PyBytes_GET_SIZE(s->body);
    }
    else {
        if (PyObject_GetBuffer(s->body, &s->view, PyBUF_SIMPLE) < 0) {
            return -1;
        }
        s->has_view = 1;
        s->bdata = (const char *)s->view.buf;
        s->blen = s->view.len;
    }
    PyObject *props = PyObject_GetAttr(rec, st->names[A_PROPERTIES]);
    if (props == NULL) {
        return -1;
    }
    s->props_owner = props;
    PyObject *topic_b = PyDict_GetItemWithError(topic_cache, s->topic); /* borrowed */
    if (topic_b == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (topic_b != NULL && PyBytes_CheckExact(topic_b) && PyUnicode_CheckExact(props) &&
        PyUnicode_IS_ASCII(props) && PyLong_Check(s->queue_id)) {
        /* the common case, as append_batch checks it inline */
        int overflow = 0;
        long long qid = PyLong_AsLongLongAndOverflow(s->queue_id, &overflow);
        if (qid == -1 && PyErr_Occurred()) {
            return -1;
        }
        Py_ssize_t plen = PyUnicode_GET_LENGTH(props);
        Py_ssize_t tlen = PyBytes_GET_SIZE(topic_b);
        if (!overflow && qid >= 0 && qid <= 0x7FFFFFFF && s->blen <= max_size &&
            plen <= MAX_PROPERTIES_SIZE && tlen <= 255 &&
            s->blen <= seg_size - (head + 3 + BLANK_SIZE) - tlen - plen) {
            s->topic_b = Py_NewRef(topic_b);
            s->props = (const char *)PyUnicode_1BYTE_DATA(props);
            s->plen = plen;
            s->size = head + 3 + s->blen + tlen + plen;
            return 1;
        }
    }
    PyObject *args[4] = {rec, max_size_obj, seg_size_obj, store_v6_obj};
    PyObject *res = PyObject_Vectorcall(prepare, args, 4, NULL);
    if (res == NULL) {
        return -1;
    }
    if (Py_TYPE(res) != (PyTypeObject *)prepared_type) {
        *invalid = res;
        return 0;
    }
    int r = take_prepared(s, res);
    Py_DECREF(res);
    return r < 0 ? -1 : 1;
}

/* -- pass 2 state ------------------------------------------------------------------------ */

typedef struct {
    PyObject *local, *overlay, *next_offsets, *cq_blocks;
    PyObject *key;   /* the current (topic, queue_id) tuple, owned, or NULL */
    PyObject *block; /* the current key's bytearray of entries, owned, or NULL */
    PyObject *last_topic;
    long long last_qid;
    long long next;  /* the current key's next queue offset, when known */
    int known;       /* next holds the current key's next offset */
    int dirty;       /* next must still be stored in local */
} queues_t;

static int flush_key(queues_t *q)
{
    if (q->dirty) {
        PyObject *v = PyLong_FromLongLong(q->next);
        if (v == NULL) {
            return -1;
        }
        int r = PyDict_SetItem(q->local, q->key, v);
        Py_DECREF(v);
        if (r < 0) {
            return -1;
        }
        q->dirty = 0;
    }
    return 0;
}

static int switch_key(queues_t *q, PyObject *topic, PyObject *queue_id, long long qid)
{
    if (flush_key(q) < 0) {
        return -1;
    }
    Py_CLEAR(q->key);
    Py_CLEAR(q->block);
    q->known = 0;
    q->last_topic = topic;
    q->last_qid = qid;
    q->key = PyTuple_Pack(2, topic, queue_id);
    if (q->key == NULL) {
        return -1;
    }
    PyObject *block = PyDict_GetItemWithError(q->cq_blocks, q->key); /* borrowed */
    if (block == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!PyList_Check(block) || PyList_GET_SIZE(block) != 2 ||
        !PyByteArray_Check(PyList_GET_ITEM(block, 1))) {
        PyErr_SetString(PyExc_TypeError, "a consume-queue block is not [offset, bytearray]");
        return -1;
    }
    q->block = Py_NewRef(PyList_GET_ITEM(block, 1));
    return 0;
}

/* The queue offset of the current key: local, else overlay, else next_offsets, else 0. */
static int take_queue_offset(queues_t *q, long long *out)
{
    if (!q->known) {
        PyObject *v = PyDict_GetItemWithError(q->local, q->key);
        if (v == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (v == NULL && q->overlay != Py_None) {
            v = PyDict_GetItemWithError(q->overlay, q->key);
            if (v == NULL && PyErr_Occurred()) {
                return -1;
            }
        }
        if (v == NULL) {
            v = PyDict_GetItemWithError(q->next_offsets, q->key);
            if (v == NULL && PyErr_Occurred()) {
                return -1;
            }
        }
        long long next = 0;
        if (v != NULL && as_i64(v, "a queue offset", &next) < 0) {
            return -1;
        }
        q->next = next;
        q->known = 1;
    }
    if (q->next == INT64_MAX) {
        PyErr_SetString(PyExc_OverflowError, "queue offset overflow");
        return -1;
    }
    *out = q->next++;
    q->dirty = 1;
    return 0;
}

static int add_entry(queues_t *q, long long qoff, long long phys, long long size, long long code)
{
    unsigned char entry[ENTRY_SIZE];
    put_u64(entry, (uint64_t)phys);
    put_u32(entry + 8, (uint32_t)size);
    put_u64(entry + 12, (uint64_t)code);
    if (q->block == NULL) {
        PyObject *raw = PyByteArray_FromStringAndSize((const char *)entry, ENTRY_SIZE);
        if (raw == NULL) {
            return -1;
        }
        PyObject *first = PyLong_FromLongLong(qoff);
        if (first == NULL) {
            Py_DECREF(raw);
            return -1;
        }
        PyObject *block = PyList_New(2);
        if (block == NULL) {
            Py_DECREF(raw);
            Py_DECREF(first);
            return -1;
        }
        PyList_SET_ITEM(block, 0, first);
        PyList_SET_ITEM(block, 1, Py_NewRef(raw));
        int r = PyDict_SetItem(q->cq_blocks, q->key, block);
        Py_DECREF(block);
        if (r < 0) {
            Py_DECREF(raw);
            return -1;
        }
        q->block = raw;
        return 0;
    }
    Py_ssize_t n = PyByteArray_GET_SIZE(q->block);
    if (n > PY_SSIZE_T_MAX - ENTRY_SIZE) {
        PyErr_SetString(PyExc_OverflowError, "consume-queue block too large");
        return -1;
    }
    if (PyByteArray_Resize(q->block, n + ENTRY_SIZE) < 0) {
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(q->block) + n, entry, ENTRY_SIZE);
    return 0;
}

/* The tag code of a record: the TAGS hash, or record_dispatch.tags_code_of for DELAY records. */
typedef struct {
    const char *tags;
    Py_ssize_t len;
    long long code;
} tag_cache_t;

static int tag_code(const props_t *pr, tag_cache_t *cache, PyObject *tags_code_of,
                    PyObject *topic, PyObject *ts_obj, PyObject *levels, long long *out)
{
    if (pr->delay == NULL) {
        if (pr->tags == NULL || pr->tags_len == 0) {
            *out = 0;
            return 0;
        }
        if (cache->tags != NULL && cache->len == pr->tags_len &&
            memcmp(cache->tags, pr->tags, (size_t)pr->tags_len) == 0) {
            *out = cache->code;
            return 0;
        }
        if (java_hash(pr->tags, pr->tags_len, out) < 0) {
            return -1;
        }
        cache->tags = pr->tags; /* kept alive by the shapes until the call returns */
        cache->len = pr->tags_len;
        cache->code = *out;
        return 0;
    }
    PyObject *tags = str_or_none(pr->tags, pr->tags_len);
    if (tags == NULL) {
        return -1;
    }
    PyObject *delay = PyUnicode_DecodeUTF8(pr->delay, pr->delay_len, "strict");
    if (delay == NULL) {
        Py_DECREF(tags);
        return -1;
    }
    PyObject *args[5] = {topic, tags, delay, ts_obj, levels};
    PyObject *res = PyObject_Vectorcall(tags_code_of, args, 5, NULL);
    Py_DECREF(tags);
    Py_DECREF(delay);
    if (res == NULL) {
        return -1;
    }
    int r = as_i64(res, "a tag code", out);
    Py_DECREF(res);
    return r;
}

/* Appends (topic, phys, store_timestamp, keys) to `index` when the record has index keys. */
static int index_item(PyObject *index, const props_t *pr, long long tran, PyObject *index_keys,
                      PyObject *sys_flag_obj, PyObject *topic, PyObject *phys, PyObject *ts_obj)
{
    PyObject *keys_t;
    if (pr->keys != NULL && pr->keys_len > 0) {
        PyObject *keys = PyUnicode_DecodeUTF8(pr->keys, pr->keys_len, "strict");
        if (keys == NULL) {
            return -1;
        }
        PyObject *uniq = str_or_none(pr->uniq, pr->uniq_len);
        if (uniq == NULL) {
            Py_DECREF(keys);
            return -1;
        }
        PyObject *args[3] = {sys_flag_obj, keys, uniq};
        keys_t = PyObject_Vectorcall(index_keys, args, 3, NULL);
        Py_DECREF(keys);
        Py_DECREF(uniq);
        if (keys_t == NULL) {
            return -1;
        }
        int truth = PyObject_IsTrue(keys_t);
        if (truth <= 0) {
            Py_DECREF(keys_t);
            return truth;
        }
    }
    else if (pr->uniq != NULL && pr->uniq_len > 0 && tran != TRAN_ROLLBACK) {
        PyObject *uniq = PyUnicode_DecodeUTF8(pr->uniq, pr->uniq_len, "strict");
        if (uniq == NULL) {
            return -1;
        }
        keys_t = PyTuple_Pack(1, uniq);
        Py_DECREF(uniq);
        if (keys_t == NULL) {
            return -1;
        }
    }
    else {
        return 0;
    }
    PyObject *item = PyTuple_Pack(4, topic, phys, ts_obj, keys_t);
    Py_DECREF(keys_t);
    if (item == NULL) {
        return -1;
    }
    int r = PyList_Append(index, item);
    Py_DECREF(item);
    return r;
}

/* -- encode_batch ------------------------------------------------------------------------ */

PyDoc_STRVAR(encode_batch_doc,
"encode_batch(records, topic_cache, prepare, prepared_type, begin, segment_size,\n"
"             max_message_size, next_offsets, overlay, store_timestamp, store_host,\n"
"             store_port, delay_levels, tags_code_of, index_keys)\n"
"--\n\n"
"Size, validate and encode a batch as CommitLog.append_batch does (see commitlog.py).\n\n"
"Returns prepare's Invalid for the first record it refused (nothing encoded), else\n"
"(buf, length, cuts, end, local, physical_offsets, queue_offsets, cq_blocks, index_items,\n"
"wait_store_ok): buf[:length] is what to write, with a skip to the next segment after each\n"
"position in cuts; local maps each queue key to its next queue offset. next_offsets and\n"
"overlay are only read.");

static PyObject *encode_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != NARGS) {
        PyErr_Format(PyExc_TypeError, "encode_batch takes %d arguments (%zd given)", NARGS,
                     nargs);
        return NULL;
    }
    fl_state *st = (fl_state *)PyModule_GetState(module);
    if (st == NULL) {
        return NULL;
    }
    PyObject *records = args[0], *topic_cache = args[1], *prepare = args[2];
    PyObject *prepared_type = args[3], *begin_obj = args[4], *seg_size_obj = args[5];
    PyObject *max_size_obj = args[6], *next_offsets = args[7], *overlay = args[8];
    PyObject *ts_obj = args[9], *host_obj = args[10], *port_obj = args[11];
    PyObject *levels = args[12], *tags_code_of = args[13], *index_keys = args[14];

    if (!PyDict_Check(topic_cache) || !PyDict_Check(next_offsets) ||
        (overlay != Py_None && !PyDict_Check(overlay))) {
        PyErr_SetString(PyExc_TypeError, "topic_cache, next_offsets and overlay must be dicts");
        return NULL;
    }
    if (!PyType_Check(prepared_type)) {
        PyErr_SetString(PyExc_TypeError, "prepared_type must be a type");
        return NULL;
    }
    long long begin, seg_size, max_size, store_ts, store_port;
    if (as_i64(begin_obj, "begin", &begin) < 0 || as_i64(seg_size_obj, "segment_size",
                                                         &seg_size) < 0 ||
        as_i64(max_size_obj, "max_message_size", &max_size) < 0 ||
        as_i64(ts_obj, "store_timestamp", &store_ts) < 0 ||
        as_i32(port_obj, "store_port", &store_port) < 0) {
        return NULL;
    }
    if (begin < 0 || seg_size <= HEADER_SIZE + 3 + BLANK_SIZE || seg_size > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "begin or segment_size out of range");
        return NULL;
    }
    Py_ssize_t store_len = host_len(host_obj);
    if (store_len < 0) {
        return NULL;
    }
    int store_v6 = store_len == 16 ? STOREHOST_V6 : 0;
    size_t store_n = store_v6 ? 16 : 4;
    unsigned char host[16];
    if (put_host(host, host_obj, store_n) < 0) {
        return NULL;
    }
    PyObject *store_v6_obj = PyLong_FromLong(store_v6);
    if (store_v6_obj == NULL) {
        return NULL;
    }

    PyObject *seq = PySequence_Tuple(records); /* immutable, owns the records */
    if (seq == NULL) {
        Py_DECREF(store_v6_obj);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    PyObject *result = NULL, *buf = NULL, *cuts = NULL, *local = NULL, *phys_list = NULL;
    PyObject *qoff_list = NULL, *cq_blocks = NULL, *index = NULL, *end_obj = NULL;
    queues_t q = {0};
    shape_t *shapes = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(shape_t));
    if (shapes == NULL) {
        PyErr_NoMemory();
        goto done;
    }

    /* pass 1: size and validate everything before encoding anything */
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *invalid = NULL;
        int r = shape_record(st, &shapes[i], PyTuple_GET_ITEM(seq, i), topic_cache, prepare,
                             prepared_type, max_size_obj, seg_size_obj, max_size, seg_size,
                             store_v6, store_v6_obj, &invalid);
        if (r < 0) {
            goto done;
        }
        if (r == 0) {
            result = invalid;
            goto done;
        }
        Py_ssize_t sz = shapes[i].size;
        if (sz < HEADER_SIZE + 3 || sz + BLANK_SIZE > seg_size || total > PY_SSIZE_T_MAX - sz) {
            PyErr_SetString(PyExc_ValueError, "record size out of range");
            goto done;
        }
        total += sz;
    }
    /* at most one end-of-segment marker before each record */
    if (n > PY_SSIZE_T_MAX / BLANK_SIZE || total > PY_SSIZE_T_MAX - BLANK_SIZE * n) {
        PyErr_SetString(PyExc_OverflowError, "batch too large");
        goto done;
    }
    Py_ssize_t cap = total + BLANK_SIZE * n;

    buf = PyByteArray_FromStringAndSize(NULL, cap);
    cuts = PyList_New(0);
    local = PyDict_New();
    phys_list = PyList_New(n);
    qoff_list = PyList_New(n);
    cq_blocks = PyDict_New();
    index = PyList_New(0);
    if (buf == NULL || cuts == NULL || local == NULL || phys_list == NULL || qoff_list == NULL ||
        cq_blocks == NULL || index == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyByteArray_AS_STRING(buf);
    q.local = local;
    q.overlay = overlay;
    q.next_offsets = next_offsets;
    q.cq_blocks = cq_blocks;
    q.last_qid = -1;

    /* pass 2: encode */
    long long pos = begin;
    long long seg_end = pos - pos % seg_size + seg_size;
    Py_ssize_t bpos = 0;
    int wait = 0;
    tag_cache_t tag_cache = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        shape_t *s = &shapes[i];
        PyObject *rec = PyTuple_GET_ITEM(seq, i);
        long long size = s->size;
        if (pos > INT64_MAX - size - BLANK_SIZE) {
            PyErr_SetString(PyExc_OverflowError, "physical offset overflow");
            goto done;
        }
        if (pos + size + BLANK_SIZE > seg_end) {
            if (bpos > cap - BLANK_SIZE) {
                PyErr_SetString(PyExc_ValueError, "encode buffer overrun (blank)");
                goto done;
            }
            put_u32(out + bpos, (uint32_t)(seg_end - pos));
            put_u32(out + bpos + 4, BLANK_MAGIC);
            bpos += BLANK_SIZE;
            PyObject *cut = PyLong_FromSsize_t(bpos);
            if (cut == NULL) {
                goto done;
            }
            int r = PyList_Append(cuts, cut);
            Py_DECREF(cut);
            if (r < 0) {
                goto done;
            }
            pos = seg_end;
            seg_end += seg_size;
        }
        long long qid, flag, sys_flag, born_ts, born_port, reconsume, prep_off;
        if (as_i32(s->queue_id, "queue_id", &qid) < 0 ||
            attr_i64(rec, st->names[A_FLAG], "flag", &flag, 1) < 0 ||
            attr_i64(rec, st->names[A_BORN_TIMESTAMP], "born_timestamp", &born_ts, 0) < 0 ||
            attr_i64(rec, st->names[A_BORN_PORT], "born_port", &born_port, 1) < 0 ||
            attr_i64(rec, st->names[A_RECONSUME_TIMES], "reconsume_times", &reconsume, 1) < 0 ||
            attr_i64(rec, st->names[A_PREPARED_OFFSET], "prepared_transaction_offset",
                     &prep_off, 0) < 0) {
            goto done;
        }
        PyObject *sys_flag_obj = PyObject_GetAttr(rec, st->names[A_SYS_FLAG]);
        if (sys_flag_obj == NULL) {
            goto done;
        }
        if (as_i32(sys_flag_obj, "sys_flag", &sys_flag) < 0) {
            Py_DECREF(sys_flag_obj);
            goto done;
        }
        if ((sys_flag & HOST_V6_MASK) != s->hosts) {
            /* the stored sysFlag's host bits say what the hosts are, whatever was sent */
            sys_flag = (sys_flag & ~(long long)HOST_V6_MASK) | s->hosts;
            Py_SETREF(sys_flag_obj, PyLong_FromLongLong(sys_flag));
            if (sys_flag_obj == NULL) {
                goto done;
            }
        }
        long long tran = sys_flag & TRAN_MASK;
        int takes_offset = tran != TRAN_PREPARED && tran != TRAN_ROLLBACK;
        if (s->topic != q.last_topic || qid != q.last_qid) {
            if (switch_key(&q, s->topic, s->queue_id, qid) < 0) {
                Py_DECREF(sys_flag_obj);
                goto done;
            }
        }
        long long qoff = 0;
        PyObject *qoff_obj;
        if (takes_offset) {
            if (take_queue_offset(&q, &qoff) < 0) {
                Py_DECREF(sys_flag_obj);
                goto done;
            }
            qoff_obj = PyLong_FromLongLong(qoff);
        }
        else {
            qoff_obj = PyLong_FromLong(-1);
        }
        if (qoff_obj == NULL) {
            Py_DECREF(sys_flag_obj);
            goto done;
        }
        PyList_SET_ITEM(qoff_list, i, qoff_obj);

        /* the record */
        Py_ssize_t tlen = PyBytes_GET_SIZE(s->topic_b);
        Py_ssize_t head = header_size(s->hosts);
        if (size != head + 3 + s->blen + tlen + s->plen || tlen > 255 ||
            s->plen > MAX_PROPERTIES_SIZE || s->blen > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "record fields do not add up to its size");
            Py_DECREF(sys_flag_obj);
            goto done;
        }
        if (bpos > cap - size) {
            PyErr_SetString(PyExc_ValueError, "encode buffer overrun (record)");
            Py_DECREF(sys_flag_obj);
            goto done;
        }
        unsigned char *r = out + bpos;
        size_t born_n = (s->hosts & BORNHOST_V6) ? 16 : 4;
        if (put_host(r + 48, s->born_host, born_n) < 0) {
            Py_DECREF(sys_flag_obj);
            goto done;
        }
        put_u32(r, (uint32_t)size);
        put_u32(r + 4, RECORD_MAGIC);
        put_u32(r + 8, body_crc(st, s->bdata, s->blen));
        put_u32(r + 12, (uint32_t)qid);
        put_u32(r + 16, (uint32_t)flag);
        put_u64(r + 20, (uint64_t)qoff);
        put_u64(r + 28, (uint64_t)pos);
        put_u32(r + 36, (uint32_t)sys_flag);
        put_u64(r + 40, (uint64_t)born_ts);
        unsigned char *h = r + 48 + born_n; /* born port; later fields move with the hosts */
        put_u32(h, (uint32_t)born_port);
        put_u64(h + 4, (uint64_t)store_ts);
        memcpy(h + 12, host, store_n);
        h += 12 + store_n;
        put_u32(h, (uint32_t)store_port);
        put_u32(h + 4, (uint32_t)reconsume);
        put_u64(h + 8, (uint64_t)prep_off);
        put_u32(h + 16, (uint32_t)s->blen);
        unsigned char *p = r + head;
        memcpy(p, s->bdata, (size_t)s->blen);
        p += s->blen;
        *p++ = (unsigned char)tlen;
        memcpy(p, PyBytes_AS_STRING(s->topic_b), (size_t)tlen);
        p += tlen;
        *p++ = (unsigned char)(s->plen >> 8);
        *p++ = (unsigned char)s->plen;
        memcpy(p, s->props, (size_t)s->plen);

        /* what the record contributes to the consume queue and the index */
        props_t pr;
        scan_properties(s->props, s->plen, &pr);
        if (pr.wait) {
            wait = 1;
        }
        long long code;
        PyObject *phys = PyLong_FromLongLong(pos);
        if (phys == NULL ||
            tag_code(&pr, &tag_cache, tags_code_of, s->topic, ts_obj, levels, &code) < 0 ||
            (takes_offset && add_entry(&q, qoff, pos, size, code) < 0) ||
            index_item(index, &pr, tran, index_keys, sys_flag_obj, s->topic, phys, ts_obj) < 0) {
            Py_XDECREF(phys);
            Py_DECREF(sys_flag_obj);
            goto done;
        }
        Py_DECREF(sys_flag_obj);
        PyList_SET_ITEM(phys_list, i, phys);
        pos += size;
        bpos += (Py_ssize_t)size;
    }
    if (q.key != NULL && flush_key(&q) < 0) {
        goto done;
    }
    end_obj = PyLong_FromLongLong(pos);
    if (end_obj == NULL) {
        goto done;
    }
    result = Py_BuildValue("(OnOOOOOOOO)", buf, bpos, cuts, end_obj, local, phys_list,
                           qoff_list, cq_blocks, index, wait ? Py_True : Py_False);

done:
    Py_XDECREF(q.key);
    Py_XDECREF(q.block);
    Py_XDECREF(buf);
    Py_XDECREF(cuts);
    Py_XDECREF(local);
    Py_XDECREF(phys_list);
    Py_XDECREF(qoff_list);
    Py_XDECREF(cq_blocks);
    Py_XDECREF(index);
    Py_XDECREF(end_obj);
    release_shapes(shapes, n);
    Py_DECREF(seq);
    Py_DECREF(store_v6_obj);
    return result;
}

/* -- index_insert ------------------------------------------------------------------------ */

/* A writable, C-contiguous array view of `obj` with items of `itemsize` bytes. */
static int array_view(PyObject *obj, Py_buffer *view, char format, Py_ssize_t itemsize,
                      const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    const char *f = view->format != NULL ? view->format : "B";
    if (f[0] == '@') {
        f++;
    }
    if (f[0] != format || f[1] != '\0' || view->itemsize != itemsize ||
        view->len % itemsize != 0) {
        PyErr_Format(PyExc_TypeError, "%s is not an array of '%c'", what, format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(index_insert_doc,
"index_insert(items, start, covered, seeds, slots, hashes, physs, times, prevs, count, room,\n"
"             fresh)\n"
"--\n\n"
"IndexService.put_items' per-key loop (see index.py) over items[start:] into one index\n"
"file's arrays: skips items below `covered`, stops before the first item with more keys than\n"
"`room` (unless `fresh`: the first indexed item goes in regardless, as after a roll).\n"
"Returns (next item, count, room, begin_time or None, end_time or None).");

static PyObject *index_insert(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError, "index_insert takes 12 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *items = args[0], *seeds = args[3];
    if (!PyList_Check(items) || !PyDict_Check(seeds)) {
        PyErr_SetString(PyExc_TypeError, "items must be a list and seeds a dict");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long long covered, count, room;
    if (as_i64(args[2], "covered", &covered) < 0 || as_i64(args[9], "count", &count) < 0 ||
        as_i64(args[10], "room", &room) < 0) {
        return NULL;
    }
    int fresh = PyObject_IsTrue(args[11]);
    if (fresh < 0) {
        return NULL;
    }
    Py_buffer v[5];
    static const Py_ssize_t sizes[5] = {4, 4, 8, 8, 4};
    static const char formats[5] = {'I', 'I', 'q', 'q', 'I'};
    static const char *const what[5] = {"slots", "hashes", "physs", "times", "prevs"};
    int got = 0;
    for (; got < 5; got++) {
        if (array_view(args[4 + got], &v[got], formats[got], sizes[got], what[got]) < 0) {
            break;
        }
    }
    PyObject *result = NULL, *begin_obj = NULL, *end_obj = NULL, *item = NULL;
    PyObject *last_topic = NULL;
    if (got < 5) {
        goto done;
    }
    uint32_t *slots = v[0].buf, *hashes = v[1].buf, *prevs = v[4].buf;
    int64_t *physs = v[2].buf, *times = v[3].buf;
    Py_ssize_t nslots = v[0].len / 4;
    Py_ssize_t cap = v[1].len / 4; /* entries: the shortest of the four entry arrays */
    for (int a = 2; a < 5; a++) {
        if (v[a].len / sizes[a] < cap) {
            cap = v[a].len / sizes[a];
        }
    }
    if (nslots == 0 || count < 0 || count > UINT32_MAX - 1) {
        PyErr_SetString(PyExc_ValueError, "bad index arrays or count");
        goto done;
    }
    uLong seed = 0;
    int has_begin = 0, has_end = 0;
    long long begin_time = 0, end_time = 0;
    Py_ssize_t k = start < 0 ? 0 : start;
    for (; k < PyList_GET_SIZE(items); k++) {
        Py_XSETREF(item, Py_NewRef(PyList_GET_ITEM(items, k))); /* held: dict ops may run code */
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 4 ||
            !PyTuple_Check(PyTuple_GET_ITEM(item, 3))) {
            PyErr_SetString(PyExc_TypeError, "an index item is not (topic, phys, time, keys)");
            goto done;
        }
        PyObject *topic = PyTuple_GET_ITEM(item, 0), *keys = PyTuple_GET_ITEM(item, 3);
        long long phys, store_time;
        if (as_i64(PyTuple_GET_ITEM(item, 1), "a physical offset", &phys) < 0 ||
            as_i64(PyTuple_GET_ITEM(item, 2), "a store timestamp", &store_time) < 0) {
            goto done;
        }
        if (phys < covered) {
            continue;
        }
        Py_ssize_t n = PyTuple_GET_SIZE(keys);
        if (room < n && !fresh) {
            break; /* the caller starts a new file */
        }
        fresh = 0;
        if (topic != last_topic) {
            PyObject *cached = PyDict_GetItemWithError(seeds, topic); /* borrowed */
            if (cached == NULL && PyErr_Occurred()) {
                goto done;
            }
            if (cached != NULL) {
                long long sv;
                if (as_i64(cached, "a topic seed", &sv) < 0) {
                    goto done;
                }
                seed = (uLong)sv;
            }
            else {
                Py_ssize_t tlen;
                const char *t = PyUnicode_AsUTF8AndSize(topic, &tlen);
                if (t == NULL) {
                    goto done;
                }
                seed = zlib_crc(crc32(0L, Z_NULL, 0), (const unsigned char *)t, tlen);
                seed = crc32(seed, (const Bytef *)"#", 1);
                PyObject *sv = PyLong_FromUnsignedLong(seed);
                if (sv == NULL) {
                    goto done;
                }
                int r = PyDict_SetItem(seeds, topic, sv);
                Py_DECREF(sv);
                if (r < 0) {
                    goto done;
                }
            }
            Py_XSETREF(last_topic, Py_NewRef(topic)); /* held: compared by identity */
        }
        if (count == 0) {
            has_begin = 1;
            begin_time = store_time;
        }
        for (Py_ssize_t j = 0; j < n; j++) {
            Py_ssize_t klen;
            const char *key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(keys, j), &klen);
            if (key == NULL) {
                goto done;
            }
            uLong h = zlib_crc(seed, (const unsigned char *)key, klen);
            if (count >= cap || count >= UINT32_MAX) {
                PyErr_SetString(PyExc_IndexError, "index file full");
                goto done;
            }
            uint32_t slot = (uint32_t)(h % (uLong)nslots);
            hashes[count] = (uint32_t)h;
            physs[count] = phys;
            times[count] = store_time;
            prevs[count] = slots[slot];
            count += 1;
            slots[slot] = (uint32_t)count;
        }
        has_end = 1;
        end_time = store_time;
        room -= n;
    }
    begin_obj = has_begin ? PyLong_FromLongLong(begin_time) : Py_NewRef(Py_None);
    end_obj = has_end ? PyLong_FromLongLong(end_time) : Py_NewRef(Py_None);
    if (begin_obj != NULL && end_obj != NULL) {
        result = Py_BuildValue("(nLLOO)", k, count, room, begin_obj, end_obj);
    }

done:
    for (int i = 0; i < got; i++) {
        PyBuffer_Release(&v[i]);
    }
    Py_XDECREF(begin_obj);
    Py_XDECREF(end_obj);
    Py_XDECREF(item);
    Py_XDECREF(last_topic);
    return result;
}

PyDoc_STRVAR(body_crc_doc,
"body_crc(data, /)\n--\n\n"
"The body CRC encode_batch writes (zlib CRC-32 & 0x7FFFFFFF), for tests.");

static PyObject *py_body_crc(PyObject *module, PyObject *arg)
{
    fl_state *st = (fl_state *)PyModule_GetState(module);
    if (st == NULL) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t crc = body_crc(st, (const char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

/* -- read path: checking the records a pull serves ------------------------------------- */

#define REC_MAGIC 0xDAA320A7u
#define REC_BLANK_MAGIC 0xCBD43194u
#define REC_MIN (HEADER_SIZE + 1 + 2)

static inline uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t get_u64(const unsigned char *p)
{
    return ((uint64_t)get_u32(p) << 32) | get_u32(p + 4);
}

/* One record at p (avail bytes readable) must be exactly `size` bytes, a message (not a blank
   marker) of queue `queue_id` at queue offset `q`, with consistent length fields and, when
   asked, a matching body CRC. */
static int record_ok(const fl_state *st, const unsigned char *p, Py_ssize_t avail,
                     long long size, long long q, long long queue_id, int verify_crc)
{
    if (size < REC_MIN || size > avail) {
        return 0;
    }
    if ((int32_t)get_u32(p) != size || get_u32(p + 4) != REC_MAGIC) {
        return 0;
    }
    if ((int32_t)get_u32(p + 12) != queue_id || (int64_t)get_u64(p + 20) != q) {
        return 0;
    }
    long long head = header_size(get_u32(p + 36)); /* bodyLen is the header's last int32 */
    if (head + 3 > size) {
        return 0;
    }
    int32_t blen = (int32_t)get_u32(p + head - 4);
    if (blen < 0 || head + blen + 3 > size) {
        return 0;
    }
    long long tpos = head + (long long)blen;
    long long ppos = tpos + 1 + p[tpos];
    if (ppos + 2 > size) {
        return 0;
    }
    int16_t plen = (int16_t)(((uint16_t)p[ppos] << 8) | p[ppos + 1]);
    if (plen < 0 || ppos + 2 + plen != size) {
        return 0;
    }
    if (verify_crc) {
        uint32_t crc = get_u32(p + 8);
        if (body_crc(st, (const char *)p + head, blen) != crc) {
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(check_run_doc,
"check_run(data, start, entries, queue_id, verify_crc, /)\n--\n\n"
"How many of ``entries`` ((queue offset, commit-log offset, size) tuples, in order) are, from\n"
"the first on, valid records of queue ``queue_id`` in ``data`` (the commit-log bytes from\n"
"offset ``start``): magic, sizes, length fields, queue id and offset, and the body CRC when\n"
"``verify_crc``. The read path's check (runtime.store.record_check.check_record plus the\n"
"queue's).");

static PyObject *check_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "check_run takes 5 arguments");
        return NULL;
    }
    fl_state *st = (fl_state *)PyModule_GetState(module);
    if (st == NULL) {
        return NULL;
    }
    long long start, queue_id;
    if (as_i64(args[1], "start", &start) < 0 || as_i64(args[3], "queue_id", &queue_id) < 0) {
        return NULL;
    }
    int verify = PyObject_IsTrue(args[4]);
    if (verify < 0) {
        return NULL;
    }
    PyObject *entries = PySequence_Fast(args[2], "entries must be a sequence");
    if (entries == NULL) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(entries);
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(entries);
    PyObject **items = PySequence_Fast_ITEMS(entries);
    Py_ssize_t ok = 0;
    int failed = 0;
    for (; ok < n; ok++) {
        PyObject *e = items[ok];
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 3) {
            PyErr_SetString(PyExc_TypeError, "an entry must be a (queue offset, phys, size) tuple");
            failed = 1;
            break;
        }
        long long q, phys, size;
        if (as_i64(PyTuple_GET_ITEM(e, 0), "queue offset", &q) < 0
            || as_i64(PyTuple_GET_ITEM(e, 1), "phys", &phys) < 0
            || as_i64(PyTuple_GET_ITEM(e, 2), "size", &size) < 0) {
            failed = 1;
            break;
        }
        long long pos = phys - start;
        if (pos < 0 || pos > view.len) {
            break;
        }
        if (!record_ok(st, data + pos, view.len - (Py_ssize_t)pos, size, q, queue_id, verify)) {
            break;
        }
    }
    PyBuffer_Release(&view);
    Py_DECREF(entries);
    if (failed) {
        return NULL;
    }
    return PyLong_FromSsize_t(ok);
}

/* -- module ------------------------------------------------------------------------------ */

static PyMethodDef fastlog_methods[] = {
    {"encode_batch", (PyCFunction)(void (*)(void))encode_batch, METH_FASTCALL,
     encode_batch_doc},
    {"index_insert", (PyCFunction)(void (*)(void))index_insert, METH_FASTCALL,
     index_insert_doc},
    {"body_crc", py_body_crc, METH_O, body_crc_doc},
    {"check_run", (PyCFunction)(void (*)(void))check_run, METH_FASTCALL, check_run_doc},
    {NULL, NULL, 0, NULL},
};

static int fastlog_exec(PyObject *module)
{
    fl_state *st = (fl_state *)PyModule_GetState(module);
    if (st == NULL) {
        return -1;
    }
    for (int i = 0; i < N_ATTRS; i++) {
        st->names[i] = PyUnicode_InternFromString(attr_names[i]);
        if (st->names[i] == NULL) {
            return -1;
        }
    }
#ifdef HAVE_CLMUL_CRC
    __builtin_cpu_init();
    st->clmul = __builtin_cpu_supports("pclmul") != 0;
#else
    st->clmul = 0;
#endif
    if (PyModule_AddIntConstant(module, "CLMUL_CRC", st->clmul) < 0) {
        return -1;
    }
    return PyModule_AddIntConstant(module, "API_VERSION", API_VERSION);
}

static int fastlog_traverse(PyObject *module, visitproc visit, void *arg)
{
    fl_state *st = (fl_state *)PyModule_GetState(module);
    if (st != NULL) {
        for (int i = 0; i < N_ATTRS; i++) {
            Py_VISIT(st->names[i]);
        }
    }
    return 0;
}

static int fastlog_clear(PyObject *module)
{
    fl_state *st = (fl_state *)PyModule_GetState(module);
    if (st != NULL) {
        for (int i = 0; i < N_ATTRS; i++) {
            Py_CLEAR(st->names[i]);
        }
    }
    return 0;
}

static void fastlog_free(void *module)
{
    fastlog_clear((PyObject *)module);
}

static PyModuleDef_Slot fastlog_slots[] = {
    {Py_mod_exec, fastlog_exec},
    {0, NULL},
};

static struct PyModuleDef fastlog_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "runtime.store._fastlog",
    .m_doc = "C accelerator of CommitLog.append_batch's per-record loops (see commitlog.py).",
    .m_size = sizeof(fl_state),
    .m_methods = fastlog_methods,
    .m_slots = fastlog_slots,
    .m_traverse = fastlog_traverse,
    .m_clear = fastlog_clear,
    .m_free = fastlog_free,
};

PyMODINIT_FUNC PyInit__fastlog(void)
{
    return PyModuleDef_Init(&fastlog_module);
}
