/*
 * Byte-level scans of kube-apiserver audit log blocks, in C: the two hot loops of the fast path
 * (grader/engines/audit_log/fastscan.py says what each one must guarantee; the Python fallbacks are the
 * reference the tests compare with).
 *
 *   heads(block, n, users, starts=False) -> (auditIDs, stages, names or None, failed logins[, starts]) | None
 *       Validates each of the n lines of `block` whole as strict JSON (as orjson reads it: RFC 8259, strict
 *       UTF-8, no lone surrogate, nesting within MAX_DEPTH) and reads the few values the fast path uses. It
 *       answers None, refusing the whole block, when any line is not an audit event it can read exactly:
 *       that is always safe (the caller then reads the lines one by one, with the general rules), so
 *       whatever is unusual (an escaped key where keys are matched, an escaped value that is read, a user
 *       name that is not a string, a number token over MAX_NUMBER bytes) is refused rather than guessed.
 *       n < 0: the block may hold any number of lines. starts: also where each line starts, as an array
 *       of Py_ssize_t in a bytes object (n + 1 of them: the last is one past the block's end), so the
 *       caller cuts out only the lines it uses.
 *
 *   plain_json(data) -> bool
 *       Whether `data` is one strict JSON value (the same rules) without a run of 16 digits: one that
 *       Python's json reads as orjson does (integers past 64 bits and long mantissas aside, they agree).
 *
 *   needle_lines(block, first, needles, prefix, groups=()) -> ([(number, line), ...], lines) | None
 *       The lines of `block` that hold any of `needles` and a member of every group, numbered from
 *       `first`, and how many lines the block has; None unless every line starts with `prefix` and ends
 *       with "}".
 *
 * No I/O, no state between calls; the GIL is held (each process of the parallel reader has its own).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* bumped whenever the functions' contract changes: fastscan.py ignores a module built for another one */
#define FASTSCAN_ABI 6
#ifndef FASTSCAN_SOURCE_HASH
#define FASTSCAN_SOURCE_HASH "unknown"
#endif

/* orjson refuses nesting past 1024 levels and json (the infinity rule) past its recursion limit: well below */
#define MAX_DEPTH 200
/* json refuses integers of over 4300 digits (Python's int limit); kube-apiserver writes short numbers */
#define MAX_NUMBER 100

typedef const unsigned char *cptr;

/* bytes inside a JSON string: 0 plain ASCII, 1 quote, 2 backslash, 3 control (refused), 4 non-ASCII */
static unsigned char str_class[256];

static void init_tables(void)
{
    for (int c = 0; c < 256; c++) {
        str_class[c] = c < 0x20 ? 3 : c >= 0x80 ? 4 : 0;
    }
    str_class['"'] = 1;
    str_class['\\'] = 2;
}

static inline cptr skip_ws(cptr p, cptr end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}

static inline int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* the four hex digits at p (bounds checked), or -1 */
static inline long hex4(cptr p, cptr end)
{
    if (end - p < 4) return -1;
    long u = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        u = (u << 4) | h;
    }
    return u;
}

/* length of the well-formed UTF-8 sequence at p (a lead byte >= 0x80), or -1: no overlong form, no
 * surrogate, nothing past U+10FFFF (Python's strict UTF-8, as orjson) */
static inline int utf8_len(cptr p, cptr end)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        return (end - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : -1;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3) return -1;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
        return (p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80) ? 3 : -1;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4) return -1;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
        return (p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) ? 4 : -1;
    }
    return -1;
}

/* p at the opening quote: the position past the closing one, or NULL (refused). *escaped is set when the
 * string holds an escape (its bytes are then not its value). */
static cptr scan_string(cptr p, cptr end, int *escaped)
{
    p++;
    for (;;) {
#if defined(__SSE2__)
        /* 16 plain bytes at a time: a signed compare below 0x20 also catches every byte >= 0x80 */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                       _mm_cmplt_epi8(v, space));
            int mask = _mm_movemask_epi8(hit);
            if (mask) {
                p += __builtin_ctz(mask);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && str_class[*p] == 0) {
            p++;
        }
        if (p >= end) return NULL;
        switch (str_class[*p]) {
        case 1:
            return p + 1;
        case 2: {
            *escaped = 1;
            if (end - p < 2) return NULL;
            unsigned char e = p[1];
            if (e == 'u') {
                long u = hex4(p + 2, end);
                if (u < 0) return NULL;
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF) return NULL; /* a lone low surrogate */
                if (u >= 0xD800 && u <= 0xDBFF) {            /* must be followed by a low one */
                    if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return NULL;
                    long low = hex4(p + 2, end);
                    if (low < 0xDC00 || low > 0xDFFF) return NULL;
                    p += 6;
                }
            }
            else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
                     e == 't') {
                p += 2;
            }
            else {
                return NULL;
            }
            break;
        }
        case 3:
            return NULL;
        default: {
            int k = utf8_len(p, end);
            if (k < 0) return NULL;
            p += k;
        }
        }
    }
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* set when a number holds a run of 16 digits or more (plain_json: json and orjson may read it apart) */
static int long_digits;

static inline cptr digits(cptr p, cptr end)
{
    cptr start = p;
    while (p < end && is_digit(*p)) p++;
    if (p - start >= 16) long_digits = 1;
    return p;
}

/* a JSON number at p: the position past it, or NULL */
static cptr scan_number(cptr p, cptr end)
{
    cptr start = p;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    }
    else if (*p >= '1' && *p <= '9') {
        p = digits(p, end);
    }
    else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p)) return NULL;
        p = digits(p, end);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return NULL;
        p = digits(p, end);
    }
    return (p - start <= MAX_NUMBER) ? p : NULL;
}

static inline cptr scan_word(cptr p, cptr end, const char *word, size_t n)
{
    return ((size_t)(end - p) >= n && memcmp(p, word, n) == 0) ? p + n : NULL;
}

typedef struct {
    int type; /* V_STRING (span below, never escaped), V_ABSENT, V_NULL or V_OTHER */
    cptr s;
    Py_ssize_t len;
} Str;

/* Iterates the members of the object at p ('{'): for each key (its span, whether it was escaped), calls
 * member() with p at the value, which returns the position past the value or NULL. */
typedef cptr (*member_fn)(void *ctx, Str key, int key_escaped, cptr p, cptr end, int depth);
static cptr read_object(cptr p, cptr end, int depth, member_fn member, void *ctx);
static cptr skip_value(cptr p, cptr end, int depth);

static cptr skip_member(void *ctx, Str key, int key_escaped, cptr p, cptr end, int depth)
{
    return skip_value(p, end, depth);
}

/* any JSON value at p (validated, not read): the position past it, or NULL */
static cptr skip_value(cptr p, cptr end, int depth)
{
    if (p >= end) return NULL;
    switch (*p) {
    case '"': {
        int escaped = 0;
        return scan_string(p, end, &escaped);
    }
    case '{':
        return read_object(p, end, depth, skip_member, NULL);
    case '[':
        if (depth >= MAX_DEPTH) return NULL;
        p = skip_ws(p + 1, end);
        if (p < end && *p == ']') return p + 1;
        for (;;) {
            if (!(p = skip_value(p, end, depth + 1))) return NULL;
            p = skip_ws(p, end);
            if (p >= end) return NULL;
            if (*p == ']') return p + 1;
            if (*p != ',') return NULL;
            p = skip_ws(p + 1, end);
        }
    case 't':
        return scan_word(p, end, "true", 4);
    case 'f':
        return scan_word(p, end, "false", 5);
    case 'n':
        return scan_word(p, end, "null", 4);
    default:
        return scan_number(p, end);
    }
}

/* what a read value was */
enum { V_ABSENT = 0, V_STRING, V_NULL, V_OBJECT, V_OTHER };

typedef struct {
    int type; /* V_ABSENT, V_NULL, V_OBJECT or V_OTHER */
    Str name; /* its username, when an object */
} Who;

typedef struct {
    Str kind, api, aid, stage;
    int has_time;
    int status;  /* V_ABSENT, V_NULL, V_OBJECT or V_OTHER */
    int code401; /* responseStatus.code is 401 or "401" */
    Who user, imp;
} Head;

#define KEY(k, lit) ((k).len == (Py_ssize_t)(sizeof(lit) - 1) && memcmp((k).s, lit, sizeof(lit) - 1) == 0)

/* a string value read for its bytes: V_STRING when unescaped, V_OTHER (not read: refused by the caller)
 * when escaped, V_NULL, or V_OTHER for any other value; the position past it, or NULL */
static cptr read_str(cptr p, cptr end, int depth, Str *out)
{
    if (p < end && *p == '"') {
        int escaped = 0;
        cptr q = scan_string(p, end, &escaped);
        if (!q) return NULL;
        out->type = escaped ? V_OTHER : V_STRING;
        out->s = p + 1;
        out->len = q - p - 2;
        return q;
    }
    cptr q = skip_value(p, end, depth);
    if (q) out->type = (*p == 'n') ? V_NULL : V_OTHER;
    return q;
}

static cptr read_object(cptr p, cptr end, int depth, member_fn member, void *ctx)
{
    if (depth >= MAX_DEPTH) return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    for (;;) {
        int escaped = 0;
        if (p >= end || *p != '"') return NULL;
        cptr q = scan_string(p, end, &escaped);
        if (!q) return NULL;
        Str key = {V_STRING, p + 1, q - p - 2};
        p = skip_ws(q, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if (!(p = member(ctx, key, escaped, p, end, depth + 1))) return NULL;
        p = skip_ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') return p + 1;
        if (*p != ',') return NULL;
        p = skip_ws(p + 1, end);
    }
}

/* a key that may be one the caller reads, written with an escape: it cannot be compared, so refused */
#define REFUSED_KEY ((cptr)0)

static cptr who_member(void *ctx, Str key, int key_escaped, cptr p, cptr end, int depth)
{
    Who *who = ctx;
    if (key_escaped) return REFUSED_KEY;
    if (KEY(key, "username")) return read_str(p, end, depth, &who->name); /* the last one wins */
    return skip_value(p, end, depth);
}

static cptr read_who(cptr p, cptr end, int depth, Who *who)
{
    memset(who, 0, sizeof(*who)); /* a key written twice: the last value is the whole of it */
    if (p < end && *p == '{') {
        who->type = V_OBJECT;
        return read_object(p, end, depth, who_member, who);
    }
    cptr q = skip_value(p, end, depth);
    who->type = (q && *p == 'n') ? V_NULL : V_OTHER;
    return q;
}

static cptr status_member(void *ctx, Str key, int key_escaped, cptr p, cptr end, int depth)
{
    Head *h = ctx;
    if (key_escaped) return REFUSED_KEY;
    if (!KEY(key, "code")) return skip_value(p, end, depth);
    if (p < end && *p == '"') { /* str(code) == "401": the string "401" */
        Str s = {0};
        cptr q = read_str(p, end, depth, &s);
        if (q && s.type != V_STRING) return NULL; /* escaped: could spell 401 */
        h->code401 = q && s.len == 3 && memcmp(s.s, "401", 3) == 0;
        return q;
    }
    cptr q = skip_value(p, end, depth); /* or the number 401 (401.0 and 4.01e2 are floats: "401.0") */
    h->code401 = q && q - p == 3 && memcmp(p, "401", 3) == 0;
    return q;
}

typedef struct {
    Head *head;
    int users;
} LineCtx;

static cptr line_member(void *ctx, Str key, int key_escaped, cptr p, cptr end, int depth)
{
    LineCtx *c = ctx;
    Head *h = c->head;
    if (key_escaped) return REFUSED_KEY;
    switch (key.len) {
    case 4:
        if (KEY(key, "kind")) return read_str(p, end, depth, &h->kind);
        if (KEY(key, "user") && c->users) return read_who(p, end, depth, &h->user);
        break;
    case 5:
        if (KEY(key, "stage")) return read_str(p, end, depth, &h->stage);
        break;
    case 7:
        if (KEY(key, "auditID")) return read_str(p, end, depth, &h->aid);
        break;
    case 10:
        if (KEY(key, "apiVersion")) return read_str(p, end, depth, &h->api);
        break;
    case 14:
        if (KEY(key, "responseStatus")) {
            h->code401 = 0;
            if (p < end && *p == '{') {
                h->status = V_OBJECT;
                return read_object(p, end, depth, status_member, h);
            }
            cptr q = skip_value(p, end, depth);
            h->status = (q && *p == 'n') ? V_NULL : V_OTHER;
            return q;
        }
        break;
    case 16:
        if (KEY(key, "impersonatedUser") && c->users) return read_who(p, end, depth, &h->imp);
        break;
    case 24:
        if (KEY(key, "requestReceivedTimestamp")) h->has_time = 1;
        break;
    }
    return skip_value(p, end, depth);
}

static const char *const STAGES[4] = {"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"};
static PyObject *stage_names[4];

static int stage_index(const Str *s)
{
    if (s->type != V_STRING) return -1;
    for (int i = 0; i < 4; i++) {
        size_t n = strlen(STAGES[i]);
        if ((size_t)s->len == n && memcmp(s->s, STAGES[i], n) == 0) return i;
    }
    return -1;
}

static inline int str_is(const Str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->type == V_STRING && (size_t)s->len == n && memcmp(s->s, lit, n) == 0;
}

/* a user's name: a string or nothing (absent, null); anything else is for the general rules */
static inline int name_ok(const Who *w)
{
    if (w->type == V_ABSENT || w->type == V_NULL) return 1;
    if (w->type != V_OBJECT) return 0;
    return w->name.type == V_ABSENT || w->name.type == V_NULL || w->name.type == V_STRING;
}

/* reads one line into *h: 0, or -1 when it is not an audit event this reads exactly */
static int read_line(cptr p, cptr end, int users, Head *h)
{
    memset(h, 0, sizeof(*h));
    LineCtx ctx = {h, users};
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return -1;
    if (!(p = read_object(p, end, 0, line_member, &ctx))) return -1;
    if (skip_ws(p, end) != end) return -1;
    if (!str_is(&h->kind, "Event") || !str_is(&h->api, "audit.k8s.io/v1") || !h->has_time) return -1;
    if (h->aid.type != V_STRING || h->aid.len == 0 || stage_index(&h->stage) < 0) return -1;
    if (h->status == V_OTHER) return -1;
    if (users && !(name_ok(&h->user) && name_ok(&h->imp))) return -1;
    return 0;
}

/* recently made names, reused (counting by user hashes each name once, not once per line) */
#define NAME_CACHE 16
typedef struct {
    PyObject *obj[NAME_CACHE];
    int next;
} NameCache;

static PyObject *cached_name(NameCache *cache, cptr s, Py_ssize_t len)
{
    for (int i = 0; i < NAME_CACHE; i++) {
        PyObject *o = cache->obj[i];
        if (o && PyUnicode_GET_LENGTH(o) == len && PyUnicode_IS_ASCII(o) &&
            memcmp(PyUnicode_DATA(o), s, len) == 0) {
            Py_INCREF(o);
            return o;
        }
    }
    PyObject *o = PyUnicode_DecodeUTF8((const char *)s, len, "strict");
    if (!o) return NULL;
    if (PyUnicode_IS_ASCII(o)) {
        Py_XDECREF(cache->obj[cache->next]);
        Py_INCREF(o);
        cache->obj[cache->next] = o;
        cache->next = (cache->next + 1) % NAME_CACHE;
    }
    return o;
}

/* the name the request acted as (proof.user_name): the impersonated user's when a non-empty string, else
 * the authenticated user's, else "" */
static PyObject *effective_name(NameCache *cache, const Head *h)
{
    if (h->imp.type == V_OBJECT && h->imp.name.type == V_STRING && h->imp.name.len > 0) {
        return cached_name(cache, h->imp.name.s, h->imp.name.len);
    }
    if (h->user.type == V_OBJECT && h->user.name.type == V_STRING) {
        return cached_name(cache, h->user.name.s, h->user.name.len);
    }
    return cached_name(cache, (cptr) "", 0);
}

static void clear_cache(NameCache *cache)
{
    for (int i = 0; i < NAME_CACHE; i++) {
        Py_CLEAR(cache->obj[i]);
    }
}

static int append_new(PyObject *list, PyObject *item)
{
    if (!item) return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

static PyObject *fastscan_heads(PyObject *module, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t n;
    int users, want_starts = 0;
    if (!PyArg_ParseTuple(args, "y*np|p:heads", &buf, &n, &users, &want_starts)) return NULL;
    PyObject *aids = PyList_New(0), *stages = PyList_New(0), *failed = PyList_New(0);
    PyObject *names = users ? PyList_New(0) : (Py_INCREF(Py_None), Py_None);
    PyObject *result = NULL, *starts_obj = NULL;
    Py_ssize_t *starts = NULL, cap = 0;
    NameCache cache = {{0}, 0};
    if (!aids || !stages || !failed || !names) goto done;
    cptr base = buf.buf, end = base + buf.len, p = base;
    Py_ssize_t count = 0;
    Head h;
    for (;;) {
        cptr nl = memchr(p, '\n', end - p);
        cptr line_end = nl ? nl : end;
        if (want_starts) { /* where each line starts, and one past the end: line i is [s[i], s[i+1] - 1) */
            if (count + 2 > cap) {
                Py_ssize_t *more = PyMem_Realloc(starts, (cap = 2 * cap + 1024) * sizeof(*starts));
                if (!more) {
                    PyErr_NoMemory();
                    goto done;
                }
                starts = more;
            }
            starts[count] = p - base;
            starts[count + 1] = line_end - base + 1;
        }
        if ((n >= 0 && count >= n) || read_line(p, line_end, users, &h) < 0) {
            result = Py_None;
            goto done;
        }
        int stage = stage_index(&h.stage);
        if (append_new(aids, PyUnicode_DecodeUTF8((const char *)h.aid.s, h.aid.len, "strict")) < 0) goto done;
        Py_INCREF(stage_names[stage]);
        if (append_new(stages, stage_names[stage]) < 0) goto done;
        if (users && append_new(names, effective_name(&cache, &h)) < 0) goto done;
        if (stage == 1 && h.code401 && append_new(failed, PyLong_FromSsize_t(count)) < 0) goto done;
        count++;
        if (!nl) break;
        p = nl + 1;
    }
    if (n >= 0 && count != n) {
        result = Py_None;
        goto done;
    }
    if (!want_starts) {
        result = PyTuple_Pack(4, aids, stages, names, failed);
        goto done;
    }
    starts_obj = PyBytes_FromStringAndSize((const char *)starts, (count + 1) * sizeof(*starts));
    if (starts_obj) result = PyTuple_Pack(5, aids, stages, names, failed, starts_obj);
done:
    if (result == Py_None) Py_INCREF(Py_None);
    PyMem_Free(starts);
    Py_XDECREF(starts_obj);
    clear_cache(&cache);
    Py_XDECREF(aids);
    Py_XDECREF(stages);
    Py_XDECREF(names);
    Py_XDECREF(failed);
    PyBuffer_Release(&buf);
    return result;
}

static int cmp_offsets(const void *a, const void *b)
{
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return (x > y) - (x < y);
}

/* appends a line start to hits (grown as needed): 0, or -1 (no memory) */
static int add_hit(Py_ssize_t **hits, Py_ssize_t *n, Py_ssize_t *cap, Py_ssize_t at)
{
    if (*n == *cap) {
        Py_ssize_t *more = PyMem_Realloc(*hits, 2 * *cap * sizeof(**hits));
        if (!more) return -1;
        *hits = more, *cap *= 2;
    }
    (*hits)[(*n)++] = at;
    return 0;
}

/* whether one of the needles starts at p */
static int any_needle_at(cptr p, cptr end, PyObject *needles)
{
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(needles); j++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, j);
        Py_ssize_t len = PyBytes_GET_SIZE(needle);
        if (end - p >= len && memcmp(p, PyBytes_AS_STRING(needle), len) == 0) return 1;
    }
    return 0;
}

/* the longest start all needles share (one pass searches for it, then each hit is checked) */
static Py_ssize_t common_prefix(PyObject *needles)
{
    PyObject *first = PyTuple_GET_ITEM(needles, 0);
    Py_ssize_t len = PyBytes_GET_SIZE(first);
    for (Py_ssize_t j = 1; j < PyTuple_GET_SIZE(needles); j++) {
        PyObject *other = PyTuple_GET_ITEM(needles, j);
        Py_ssize_t i = 0, m = Py_MIN(len, PyBytes_GET_SIZE(other));
        while (i < m && PyBytes_AS_STRING(first)[i] == PyBytes_AS_STRING(other)[i]) i++;
        len = i;
    }
    return len;
}

/* the start of every line holding one of the needles (in order, each once), searched for once: by their
 * common start when it is long enough to be rare, else one needle after another (then sorted); the count,
 * or -1 (no memory) */
static Py_ssize_t hit_lines(cptr base, cptr end, PyObject *needles, Py_ssize_t **out)
{
    Py_ssize_t cap = 64, n = 0, k = PyTuple_GET_SIZE(needles);
    Py_ssize_t *hits = PyMem_Malloc(cap * sizeof(*hits));
    if (!hits) return -1;
    Py_ssize_t shared = k > 1 ? common_prefix(needles) : 0;
    int together = k == 1 || shared >= 4;
    for (Py_ssize_t j = 0; j < (together ? 1 : k); j++) {
        PyObject *needle = PyTuple_GET_ITEM(needles, j);
        const char *s = PyBytes_AS_STRING(needle);
        size_t len = (size_t)(k > 1 && together ? shared : PyBytes_GET_SIZE(needle));
        cptr p = base;
        while (len && p < end) {
            cptr at = memmem(p, end - p, s, len);
            if (!at) break;
            if (k > 1 && together && !any_needle_at(at, end, needles)) {
                p = at + 1;
                continue;
            }
            cptr before = at > base ? memrchr(base, '\n', at - base) : NULL;
            if (add_hit(&hits, &n, &cap, (before ? before + 1 : base) - base) < 0) {
                PyMem_Free(hits);
                return -1;
            }
            cptr nl = memchr(at, '\n', end - at); /* on to the next line */
            p = nl ? nl + 1 : end;
        }
    }
    if (!together && n > 1) {
        qsort(hits, n, sizeof(*hits), cmp_offsets);
        Py_ssize_t w = 1;
        for (Py_ssize_t i = 1; i < n; i++) {
            if (hits[i] != hits[w - 1]) hits[w++] = hits[i];
        }
        n = w;
    }
    *out = hits;
    return n;
}

/* whether the line [p, end) holds a member of every group (a tuple of tuples of bytes) */
static int every_group(cptr p, cptr end, PyObject *groups)
{
    for (Py_ssize_t g = 0; g < PyTuple_GET_SIZE(groups); g++) {
        PyObject *group = PyTuple_GET_ITEM(groups, g);
        int any = 0;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(group) && !any; j++) {
            PyObject *needle = PyTuple_GET_ITEM(group, j);
            any = memmem(p, end - p, PyBytes_AS_STRING(needle), PyBytes_GET_SIZE(needle)) != NULL;
        }
        if (!any) return 0;
    }
    return 1;
}

static int all_bytes(PyObject *tuple)
{
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(tuple); j++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(tuple, j))) return 0;
    }
    return 1;
}

static PyObject *fastscan_needle_lines(PyObject *module, PyObject *args)
{
    Py_buffer buf, prefix;
    Py_ssize_t first;
    PyObject *needles, *groups = NULL;
    if (!PyArg_ParseTuple(args, "y*nO!y*|O!:needle_lines", &buf, &first, &PyTuple_Type, &needles, &prefix,
                          &PyTuple_Type, &groups)) {
        return NULL;
    }
    PyObject *result = NULL, *found = NULL;
    Py_ssize_t *hits = NULL;
    int typed = all_bytes(needles);
    for (Py_ssize_t g = 0; groups && g < PyTuple_GET_SIZE(groups); g++) {
        PyObject *group = PyTuple_GET_ITEM(groups, g);
        typed = typed && PyTuple_Check(group) && all_bytes(group);
    }
    if (!typed) {
        PyErr_SetString(PyExc_TypeError, "needles must be bytes, groups tuples of bytes");
        goto done;
    }
    cptr base = buf.buf, end = base + buf.len, p = base;
    Py_ssize_t nhits = hit_lines(base, end, needles, &hits);
    if (nhits < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (!(found = PyList_New(0))) goto done;
    const char *pre = prefix.buf;
    Py_ssize_t plen = prefix.len, count = 0, next = 0;
    for (;;) {
        cptr nl = memchr(p, '\n', end - p);
        cptr line_end = nl ? nl : end;
        Py_ssize_t len = line_end - p;
        if (len <= plen || memcmp(p, pre, plen) != 0 || line_end[-1] != '}') { /* not a kube-apiserver line */
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
        if (next < nhits && hits[next] == p - base && (next++, !groups || every_group(p, line_end, groups))) {
            PyObject *pair = Py_BuildValue("(ny#)", first + count, (const char *)p, len);
            if (append_new(found, pair) < 0) goto done;
        }
        count++;
        if (!nl) break;
        p = nl + 1;
    }
    result = Py_BuildValue("(On)", found, count);
done:
    Py_XDECREF(found);
    PyMem_Free(hits);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&prefix);
    return result;
}

static PyObject *fastscan_plain_json(PyObject *module, PyObject *arg)
{
    Py_buffer buf;
    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE) < 0) return NULL;
    cptr p = buf.buf, end = p + buf.len;
    long_digits = 0;
    p = skip_ws(p, end);
    p = skip_value(p, end, 0);
    int plain = p != NULL && skip_ws(p, end) == end && !long_digits;
    PyBuffer_Release(&buf);
    return PyBool_FromLong(plain);
}

static PyMethodDef methods[] = {
    {"heads", fastscan_heads, METH_VARARGS,
     "heads(block, n, users, starts=False) -> (auditIDs, stages, names or None, failed-login line indices"
     "[, line starts]) or None; n < 0: any number of lines"},
    {"plain_json", fastscan_plain_json, METH_O,
     "plain_json(data) -> whether data is one JSON value that json and orjson read alike (strict JSON, strict "
     "UTF-8, no lone surrogate, nesting and numbers bounded, no run of 16 digits)"},
    {"needle_lines", fastscan_needle_lines, METH_VARARGS,
     "needle_lines(block, first, needles, prefix, groups=()) -> ([(number, line)], lines) or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fastscan", "Byte-level scans of kube-apiserver audit log blocks (see fastscan.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastscan(void)
{
    init_tables();
    for (int i = 0; i < 4; i++) {
        if (!stage_names[i] && !(stage_names[i] = PyUnicode_InternFromString(STAGES[i]))) return NULL;
    }
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "ABI", FASTSCAN_ABI) < 0 ||
        PyModule_AddStringConstant(m, "SOURCE_HASH", FASTSCAN_SOURCE_HASH) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
