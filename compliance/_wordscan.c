/* The sensitive-word scanner's inner loops, native (see compliance/native.py).
 *
 * Python made each 10k-character chunk cost ~5 ms: numpy calls per folding step, three
 * ahocorasick-rs passes that each re-encode the text as UTF-8, and a Python loop per raw match,
 * most of which the checks then threw away. Here one call folds the text (table lookups,
 * separators dropped, runs collapsed, the way back to the original kept), automata walk code
 * points (no re-encoding, one step a character), and raw matches that cannot pass the Python
 * checks (a Latin key not on a word boundary, a spelled match inside a syllable or without a
 * Latin letter) are dropped before they become Python objects. Everything that decides what a
 * hit is stays in Python (compliance/words.py, compliance/pinyin.py); this only finds fewer,
 * never other, candidates. tests/unit/test_compliance_native.py checks that against the Python
 * paths on random evasive text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BMP 0x10000u
#define EXPANDED_BASE 0x110000u /* fold-table values from here index the expansions */
#define FAR_CODE 1u             /* stands for characters that can be in no match */
#define SYM_BITS 21             /* a code point fits 21 bits */
#define CLASSES 36              /* a-z and 0-9: the symbols with a DFA row (see Automaton) */
#define MAX_ROWS 32768          /* at most this many DFA rows (144 bytes each) per automaton */

/* ---- tables, set once by configure() ------------------------------------------------------ */

static struct {
    uint32_t *fold, *sound, *letters, *offset, *exp_offsets, *exp_codes;
    uint8_t *width, *word, *latin;
    Py_ssize_t n_letters, n_exp;
    PyObject *fold_astral;
} T;

static int copy_buffer(PyObject *obj, void **dst, Py_ssize_t itemsize, Py_ssize_t want,
                       Py_ssize_t *count, const char *name) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) return -1;
    if (view.len % itemsize || (want >= 0 && view.len != want * itemsize)) {
        PyErr_Format(PyExc_ValueError, "%s: wrong size %zd", name, view.len);
        PyBuffer_Release(&view);
        return -1;
    }
    void *mem = PyMem_RawMalloc(view.len ? view.len : 1);
    if (!mem) { PyBuffer_Release(&view); PyErr_NoMemory(); return -1; }
    memcpy(mem, view.buf, view.len);
    PyMem_RawFree(*dst);
    *dst = mem;
    if (count) *count = view.len / itemsize;
    PyBuffer_Release(&view);
    return 0;
}

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *fold, *sound, *letters, *offset, *width, *word, *latin, *expo, *expc, *astral;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO", &fold, &sound, &letters, &offset, &width, &word,
                          &latin, &expo, &expc, &astral))
        return NULL;
    if (copy_buffer(fold, (void **)&T.fold, 4, BMP, NULL, "fold") < 0 ||
        copy_buffer(sound, (void **)&T.sound, 4, BMP, NULL, "sound") < 0 ||
        copy_buffer(letters, (void **)&T.letters, 4, -1, &T.n_letters, "letters") < 0 ||
        copy_buffer(offset, (void **)&T.offset, 4, BMP, NULL, "offset") < 0 ||
        copy_buffer(width, (void **)&T.width, 1, BMP, NULL, "width") < 0 ||
        copy_buffer(word, (void **)&T.word, 1, BMP, NULL, "word") < 0 ||
        copy_buffer(latin, (void **)&T.latin, 1, BMP, NULL, "latin") < 0 ||
        copy_buffer(expo, (void **)&T.exp_offsets, 4, -1, &T.n_exp, "exp_offsets") < 0 ||
        copy_buffer(expc, (void **)&T.exp_codes, 4, -1, NULL, "exp_codes") < 0)
        return NULL;
    T.n_exp -= 1;
    Py_INCREF(astral);
    Py_XSETREF(T.fold_astral, astral);
    Py_RETURN_NONE;
}

static int ready(void) {
    if (T.fold) return 1;
    PyErr_SetString(PyExc_RuntimeError, "compliance._wordscan: configure() first");
    return 0;
}

static inline int is_word(Py_UCS4 c) { return c < BMP && T.word[c]; }
static inline int is_latin_char(Py_UCS4 c) { return c < BMP && T.latin[c]; }
static inline int is_letter(uint32_t c) { return c >= 'a' && c <= 'z'; }

/* ---- IntArray: a read-only sequence of ints (indexes into the text) ------------------------ */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Py_ssize_t *v;
} IntArray;

static PyTypeObject IntArrayType;

static IntArray *intarray_new(Py_ssize_t n) {
    IntArray *a = PyObject_New(IntArray, &IntArrayType);
    if (!a) return NULL;
    a->n = n;
    a->v = PyMem_Malloc((n ? n : 1) * sizeof(Py_ssize_t));
    if (!a->v) { Py_DECREF(a); PyErr_NoMemory(); return NULL; }
    return a;
}

static void intarray_dealloc(IntArray *a) {
    PyMem_Free(a->v);
    PyObject_Free(a);
}

static Py_ssize_t intarray_len(IntArray *a) { return a->n; }

static PyObject *intarray_item(IntArray *a, Py_ssize_t i) {
    if (i < 0 || i >= a->n) {
        PyErr_SetString(PyExc_IndexError, "index out of range");
        return NULL;
    }
    return PyLong_FromSsize_t(a->v[i]);
}

static int intarray_getbuffer(IntArray *a, Py_buffer *view, int flags) {
    if (PyBuffer_FillInfo(view, (PyObject *)a, a->v, a->n * sizeof(Py_ssize_t), 1, flags) < 0)
        return -1;
    if (flags & PyBUF_FORMAT) view->format = "n";
    view->itemsize = sizeof(Py_ssize_t);
    return 0;
}

static PySequenceMethods intarray_seq = {.sq_length = (lenfunc)intarray_len,
                                         .sq_item = (ssizeargfunc)intarray_item};
static PyBufferProcs intarray_buf = {.bf_getbuffer = (getbufferproc)intarray_getbuffer};

static PyTypeObject IntArrayType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "compliance._wordscan.IntArray",
    .tp_basicsize = sizeof(IntArray),
    .tp_dealloc = (destructor)intarray_dealloc,
    .tp_as_sequence = &intarray_seq,
    .tp_as_buffer = &intarray_buf,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Read-only ints (a Folded's orig, run_start, run_len).",
};

/* ---- Folded: canonical text and its way back (compliance.normalize.Folded's fields) ------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;      /* canonical length */
    uint32_t *codes;   /* canonical code points */
    IntArray *orig;    /* per kept code: its index in the original text */
    IntArray *run_start, *run_len;
    PyObject *text;    /* the canonical str, made on first use */
} Folded;

static PyTypeObject FoldedType;

static void folded_dealloc(Folded *f) {
    PyMem_Free(f->codes);
    Py_XDECREF(f->orig);
    Py_XDECREF(f->run_start);
    Py_XDECREF(f->run_len);
    Py_XDECREF(f->text);
    PyObject_Free(f);
}

/* Collapse runs of ``kept`` (n_kept codes, ``orig`` already set) into a new Folded. */
static Folded *collapse(uint32_t *kept, Py_ssize_t n_kept, IntArray *orig) {
    Folded *f = PyObject_New(Folded, &FoldedType);
    if (!f) return NULL;
    f->codes = NULL;
    f->run_start = f->run_len = NULL;
    f->text = NULL;
    Py_INCREF(orig);
    f->orig = orig;
    Py_ssize_t runs = 0;
    for (Py_ssize_t i = 0; i < n_kept; i++) runs += (i == 0 || kept[i] != kept[i - 1]);
    f->n = runs;
    f->codes = PyMem_Malloc((runs ? runs : 1) * sizeof(uint32_t));
    f->run_start = intarray_new(runs);
    f->run_len = intarray_new(runs);
    if (!f->codes || !f->run_start || !f->run_len) { Py_DECREF(f); return NULL; }
    Py_ssize_t r = -1;
    for (Py_ssize_t i = 0; i < n_kept; i++) {
        if (i == 0 || kept[i] != kept[i - 1]) {
            r++;
            f->codes[r] = kept[i];
            f->run_start->v[r] = i;
            f->run_len->v[r] = 0;
        }
        f->run_len->v[r]++;
    }
    return f;
}

static PyObject *fold(PyObject *self, PyObject *arg) {
    if (!ready()) return NULL;
    if (!PyUnicode_Check(arg)) { PyErr_SetString(PyExc_TypeError, "text: str expected"); return NULL; }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t cap = n + 16;
    uint32_t *kept = PyMem_Malloc(cap * sizeof(uint32_t));
    IntArray *orig = intarray_new(cap);
    Folded *f = NULL;
    if (!kept || !orig) goto done;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        uint32_t v;
        if (c < BMP) {
            v = T.fold[c];
        } else {
            PyObject *got = PyObject_CallFunction(T.fold_astral, "I", (unsigned)c);
            if (!got) goto done;
            v = (uint32_t)PyLong_AsUnsignedLong(got);
            Py_DECREF(got);
            if (PyErr_Occurred()) goto done;
        }
        if (v == 0) continue;
        const uint32_t *src = &v;
        Py_ssize_t m = 1;
        if (v >= EXPANDED_BASE) { /* one character folds to several (ﬁ -> fi) */
            Py_ssize_t e = v - EXPANDED_BASE;
            if (e >= T.n_exp) { PyErr_SetString(PyExc_ValueError, "bad expansion"); goto done; }
            src = T.exp_codes + T.exp_offsets[e];
            m = T.exp_offsets[e + 1] - T.exp_offsets[e];
        }
        if (k + m > cap) {
            cap = (k + m) * 2;
            uint32_t *nk = PyMem_Realloc(kept, cap * sizeof(uint32_t));
            Py_ssize_t *no = PyMem_Realloc(orig->v, cap * sizeof(Py_ssize_t));
            if (nk) kept = nk;
            if (no) orig->v = no;
            if (!nk || !no) { PyErr_NoMemory(); goto done; }
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            kept[k] = src[j];
            orig->v[k++] = i;
        }
    }
    orig->n = k;
    f = collapse(kept, k, orig);
done:
    PyMem_Free(kept);
    Py_XDECREF(orig);
    return (PyObject *)f;
}

static PyObject *folded_sounds(Folded *f, PyObject *unused) {
    /* fold(text, pinyin=True) from fold(text): syllables of the canonical characters, runs of
       one syllable merged (compliance.normalize.resound). */
    if (!ready()) return NULL;
    Folded *s = PyObject_New(Folded, &FoldedType);
    if (!s) return NULL;
    s->codes = NULL;
    s->run_start = s->run_len = NULL;
    s->text = NULL;
    Py_INCREF(f->orig);
    s->orig = f->orig;
    Py_ssize_t runs = 0;
    uint32_t prev = 0;
    for (Py_ssize_t i = 0; i < f->n; i++) {
        uint32_t c = f->codes[i], v = c < BMP ? T.sound[c] : c;
        runs += (i == 0 || v != prev);
        prev = v;
    }
    s->n = runs;
    s->codes = PyMem_Malloc((runs ? runs : 1) * sizeof(uint32_t));
    s->run_start = intarray_new(runs);
    s->run_len = intarray_new(runs);
    if (!s->codes || !s->run_start || !s->run_len) { Py_DECREF(s); return NULL; }
    Py_ssize_t r = -1;
    for (Py_ssize_t i = 0; i < f->n; i++) {
        uint32_t c = f->codes[i], v = c < BMP ? T.sound[c] : c;
        if (i == 0 || v != s->codes[r]) {
            r++;
            s->codes[r] = v;
            s->run_start->v[r] = f->run_start->v[i];
        }
    }
    for (Py_ssize_t j = 0; j < runs; j++)
        s->run_len->v[j] = (j + 1 < runs ? s->run_start->v[j + 1] : f->orig->n) - s->run_start->v[j];
    return (PyObject *)s;
}

static inline void span_of(Folded *f, Py_ssize_t first, Py_ssize_t last, Py_ssize_t *start,
                           Py_ssize_t *end) {
    *start = f->orig->v[f->run_start->v[first]];
    *end = f->orig->v[f->run_start->v[last] + f->run_len->v[last] - 1] + 1;
}

static PyObject *folded_span(Folded *f, PyObject *args) {
    Py_ssize_t first, last, s, e;
    if (!PyArg_ParseTuple(args, "nn", &first, &last)) return NULL;
    if (first < 0 || last < first || last >= f->n) {
        PyErr_SetString(PyExc_IndexError, "span out of range");
        return NULL;
    }
    span_of(f, first, last, &s, &e);
    return Py_BuildValue("nn", s, e);
}

static PyObject *folded_text(Folded *f, void *unused) {
    if (!f->text) {
        f->text = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, f->codes, f->n);
        if (!f->text) return NULL;
    }
    Py_INCREF(f->text);
    return f->text;
}

#define GETTER(name)                                                                          \
    static PyObject *folded_##name(Folded *f, void *unused) {                                 \
        Py_INCREF(f->name);                                                                   \
        return (PyObject *)f->name;                                                           \
    }
GETTER(orig)
GETTER(run_start)
GETTER(run_len)

static PyGetSetDef folded_getset[] = {
    {"text", (getter)folded_text, NULL, "the canonical text", NULL},
    {"orig", (getter)folded_orig, NULL, "original index of each kept code", NULL},
    {"run_start", (getter)folded_run_start, NULL, "first kept code of each canonical one", NULL},
    {"run_len", (getter)folded_run_len, NULL, "how many kept codes each canonical one is", NULL},
    {NULL},
};

static PyMethodDef folded_methods[] = {
    {"span", (PyCFunction)folded_span, METH_VARARGS, "original [start, end) of first..last"},
    {"sounds", (PyCFunction)folded_sounds, METH_NOARGS, "the syllable folding"},
    {NULL},
};

static PyTypeObject FoldedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "compliance._wordscan.Folded",
    .tp_basicsize = sizeof(Folded),
    .tp_dealloc = (destructor)folded_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_getset = folded_getset,
    .tp_methods = folded_methods,
    .tp_doc = "A folded text: canonical code points and the way back to the original.",
};

/* ---- Automaton: Aho-Corasick over code points ---------------------------------------------- */

typedef struct {
    uint32_t first_child, n_child; /* children: consecutive ids, sorted by symbol (``sym``) */
    uint32_t fail, out;            /* failure link; the next node down it that ends a key */
    int32_t pattern;               /* the key that ends here, or -1 */
} Node;

typedef struct {
    PyObject_HEAD
    uint32_t n_nodes, n_patterns;
    Node *node;
    uint32_t *sym;      /* per node: the symbol that leads to it */
    uint32_t *plen;     /* per key: its length */
    uint32_t *root;     /* BMP code point -> child of the root (0: none) */
    /* Latin text walks deep, dense letter tries, and each mismatch follows failure links
       through nodes far apart in memory (~100 ns a letter). The shallowest nodes whose path is
       all [a-z0-9] get a full transition row for those 36 symbols instead (one lookup). */
    int links;          /* failure links built: rows are DFA transitions, else children */
    uint8_t *ends;      /* per node, one bit: a key ends here or down its output link */
    /* For tries walked from chosen starts (links=False, every key 4+ symbols): one bit per
       four letters a-z that begin some key. Four letters of text not in it begin no key, and
       the walk is not started (most of Latin text: the bits fit in L2, the nodes do not). */
    uint8_t *prefix4;
    int32_t *row;       /* per node: its DFA row, or -1 */
    uint32_t *dfa;      /* rows x CLASSES next states */
} Automaton;

#define PREFIX4_BITS (26 * 26 * 26 * 26)
#define HAS_BIT(bits, i) ((bits)[(i) >> 3] & (1u << ((i) & 7)))

/* The four-letter index of codes[0..4), or -1 when one is not a-z. */
static inline long four_letters(const uint32_t *codes) {
    long x = 0;
    for (int k = 0; k < 4; k++) {
        if (codes[k] < 'a' || codes[k] > 'z') return -1;
        x = x * 26 + (long)(codes[k] - 'a');
    }
    return x;
}

static inline int class_of(uint32_t c) {
    if (c >= 'a' && c <= 'z') return (int)(c - 'a');
    if (c >= '0' && c <= '9') return (int)(c - '0') + 26;
    return -1;
}

static PyTypeObject AutomatonType;

static inline uint32_t child(const Automaton *a, uint32_t s, uint32_t c) {
    if (s == 0 && c < BMP) return a->root[c];
    uint32_t lo = a->node[s].first_child, hi = lo + a->node[s].n_child;
    while (lo < hi) {
        uint32_t mid = (lo + hi) >> 1, m = a->sym[mid];
        if (m == c) return mid;
        if (m < c) lo = mid + 1; else hi = mid;
    }
    return 0;
}

/* The next state after ``s`` on ``c``. */
static inline uint32_t step(const Automaton *a, uint32_t s, uint32_t c) {
    int k = class_of(c);
    for (;;) {
        if (k >= 0 && a->row[s] >= 0) return a->dfa[(size_t)a->row[s] * CLASSES + k];
        uint32_t t = child(a, s, c);
        if (t || s == 0) return t;
        s = a->node[s].fail;
    }
}

/* The child of ``s`` on ``c`` (0: none), by a row where there is one: walks down the trie. */
static inline uint32_t go(const Automaton *a, uint32_t s, uint32_t c) {
    int k = class_of(c);
    if (k >= 0 && !a->links && a->row[s] >= 0) return a->dfa[(size_t)a->row[s] * CLASSES + k];
    return child(a, s, c);
}

typedef struct { uint32_t sym, id; } Edge;

static int edge_cmp(const void *x, const void *y) {
    uint32_t a = ((const Edge *)x)->sym, b = ((const Edge *)y)->sym;
    return (a > b) - (a < b);
}

static void automaton_dealloc(Automaton *a) {
    PyMem_RawFree(a->node);
    PyMem_RawFree(a->sym);
    PyMem_RawFree(a->plen);
    PyMem_RawFree(a->root);
    PyMem_RawFree(a->row);
    PyMem_RawFree(a->dfa);
    PyMem_RawFree(a->ends);
    PyMem_RawFree(a->prefix4);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

/* Build: a hash trie in insertion order, renumbered breadth-first so that each node's children
   are consecutive ids sorted by symbol (binary search, no edge arrays), then failure links. */
static int automaton_init(Automaton *a, PyObject *args, PyObject *kw) {
    static char *names[] = {"keys", "links", "prefix4", NULL};
    PyObject *keys;
    int links = 1, prefix4 = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|pp", names, &PyList_Type, &keys, &links,
                                     &prefix4))
        return -1;
    Py_ssize_t nk = PyList_GET_SIZE(keys), total = 1;
    for (Py_ssize_t i = 0; i < nk; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        if (!PyUnicode_Check(k) || PyUnicode_GET_LENGTH(k) == 0) {
            PyErr_SetString(PyExc_ValueError, "keys: non-empty str expected");
            return -1;
        }
        total += PyUnicode_GET_LENGTH(k);
        if (prefix4 && PyUnicode_GET_LENGTH(k) < 4) {
            PyErr_SetString(PyExc_ValueError, "keys: prefix4 needs every key 4+ symbols long");
            return -1;
        }
    }
    if (total >= (1u << 31)) { PyErr_SetString(PyExc_ValueError, "keys: too many"); return -1; }
    a->n_patterns = (uint32_t)nk;
    a->links = links;
    a->plen = PyMem_RawCalloc(nk + 1, sizeof(uint32_t));
    if (!a->plen) { PyErr_NoMemory(); return -1; }
    uint64_t cap = 16;
    while (cap < (uint64_t)total * 2) cap <<= 1;
    uint64_t *hkey = PyMem_RawCalloc(cap, sizeof(uint64_t));
    uint32_t *hval = PyMem_RawMalloc(cap * sizeof(uint32_t));
    uint32_t *parent = PyMem_RawMalloc(total * sizeof(uint32_t));
    uint32_t *sym = PyMem_RawMalloc(total * sizeof(uint32_t));
    int32_t *pat = PyMem_RawMalloc(total * sizeof(int32_t));
    uint32_t *count = PyMem_RawCalloc(total + 1, sizeof(uint32_t));
    Edge *edges = PyMem_RawMalloc(total * sizeof(Edge));
    uint32_t *newid = PyMem_RawMalloc(total * sizeof(uint32_t));
    uint32_t *order = PyMem_RawMalloc(total * sizeof(uint32_t));
    int rc = -1;
    if (!hkey || !hval || !parent || !sym || !pat || !count || !edges || !newid || !order) {
        PyErr_NoMemory();
        goto done;
    }
    uint32_t n = 1;
    pat[0] = -1;
    if (prefix4 && !(a->prefix4 = PyMem_RawCalloc(PREFIX4_BITS / 8 + 1, 1))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nk; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        int kind = PyUnicode_KIND(k);
        const void *data = PyUnicode_DATA(k);
        Py_ssize_t len = PyUnicode_GET_LENGTH(k);
        if (prefix4) {
            uint32_t head[4];
            for (int j = 0; j < 4; j++) head[j] = PyUnicode_READ(kind, data, j);
            long x = four_letters(head);
            if (x >= 0) a->prefix4[x >> 3] |= (uint8_t)(1u << (x & 7));
        }
        uint32_t s = 0;
        for (Py_ssize_t j = 0; j < len; j++) {
            uint32_t c = PyUnicode_READ(kind, data, j);
            uint64_t key = (((uint64_t)s << SYM_BITS) | c) + 1;
            uint64_t h = (key * 0x9E3779B97F4A7C15ull) >> 7;
            for (;; h++) {
                uint64_t slot = h & (cap - 1);
                if (hkey[slot] == key) { s = hval[slot]; break; }
                if (hkey[slot] == 0) {
                    hkey[slot] = key;
                    hval[slot] = n;
                    parent[n] = s;
                    sym[n] = c;
                    pat[n] = -1;
                    count[s]++;
                    s = n++;
                    break;
                }
            }
        }
        pat[s] = (int32_t)i;
        a->plen[i] = (uint32_t)len;
    }
    PyMem_RawFree(hkey);
    hkey = NULL;
    /* children of each old node, sorted by symbol */
    uint32_t *start = PyMem_RawMalloc((n + 1) * sizeof(uint32_t));
    if (!start) { PyErr_NoMemory(); goto done; }
    start[0] = 0;
    for (uint32_t v = 0; v < n; v++) start[v + 1] = start[v] + count[v];
    memset(count, 0, (n + 1) * sizeof(uint32_t));
    for (uint32_t v = 1; v < n; v++) {
        uint32_t p = parent[v];
        edges[start[p] + count[p]++] = (Edge){sym[v], v};
    }
    for (uint32_t v = 0; v < n; v++)
        if (count[v] > 1) qsort(edges + start[v], count[v], sizeof(Edge), edge_cmp);
    a->n_nodes = n;
    a->node = PyMem_RawCalloc(n, sizeof(Node));
    a->sym = PyMem_RawMalloc(n * sizeof(uint32_t));
    a->root = PyMem_RawCalloc(BMP, sizeof(uint32_t));
    if (!a->node || !a->sym || !a->root) {
        PyMem_RawFree(start);
        PyErr_NoMemory();
        goto done;
    }
    /* breadth-first renumbering: order[new] = old */
    uint32_t head = 0, tail = 1;
    order[0] = 0;
    newid[0] = 0;
    while (head < tail) {
        uint32_t old = order[head], id = head++;
        a->node[id].first_child = tail;
        a->node[id].n_child = count[old];
        a->node[id].pattern = pat[old];
        a->sym[id] = sym[old];
        for (uint32_t e = start[old]; e < start[old] + count[old]; e++) {
            newid[edges[e].id] = tail;
            order[tail++] = edges[e].id;
        }
    }
    PyMem_RawFree(start);
    a->sym[0] = 0;
    for (uint32_t e = 0; e < a->node[0].n_child; e++) {
        uint32_t c = a->node[0].first_child + e;
        if (a->sym[c] < BMP) a->root[a->sym[c]] = c;
    }
    /* failure links and output links, breadth first: a node's links are shallower (none for
       an automaton that is only walked down from chosen starts) */
    for (uint32_t v = 0; v < n && links; v++) {
        for (uint32_t c = a->node[v].first_child; c < a->node[v].first_child + a->node[v].n_child; c++) {
            uint32_t f = 0;
            if (v != 0) {
                uint32_t s = a->node[v].fail;
                for (;;) {
                    uint32_t t = child(a, s, a->sym[c]);
                    if (t) { f = t; break; }
                    if (s == 0) break;
                    s = a->node[s].fail;
                }
            }
            a->node[c].fail = f;
            a->node[c].out = a->node[f].pattern >= 0 ? f : a->node[f].out;
        }
    }
    a->ends = PyMem_RawCalloc(n / 8 + 1, 1);
    if (!a->ends) { PyErr_NoMemory(); goto done; }
    for (uint32_t v = 0; v < n; v++)
        if (a->node[v].pattern >= 0 || a->node[v].out) a->ends[v >> 3] |= (uint8_t)(1u << (v & 7));
    /* DFA rows, breadth first: a node's failure link is shallower, so its row is ready (and a
       node with a row has a failure node with one: all-[a-z0-9] paths, numbered first) */
    a->row = PyMem_RawMalloc(n * sizeof(int32_t));
    if (!a->row) { PyErr_NoMemory(); goto done; }
    uint32_t rows = 0;
    a->row[0] = -1;
    for (uint32_t v = 0; v < n; v++) {
        if (v == 0 || (a->row[v] == 0 && rows < MAX_ROWS)) a->row[v] = (int32_t)rows++;
        else a->row[v] = -1;
        for (uint32_t c = a->node[v].first_child; c < a->node[v].first_child + a->node[v].n_child; c++)
            a->row[c] = a->row[v] >= 0 && class_of(a->sym[c]) >= 0 ? 0 : -1; /* 0: wants one */
    }
    a->dfa = PyMem_RawMalloc(((size_t)rows * CLASSES + 1) * sizeof(uint32_t));
    if (!a->dfa) { PyErr_NoMemory(); goto done; }
    for (uint32_t v = 0; v < n; v++) {
        if (a->row[v] < 0) continue;
        uint32_t *r = a->dfa + (size_t)a->row[v] * CLASSES;
        for (int k = 0; k < CLASSES; k++) {
            uint32_t c = k < 26 ? 'a' + k : '0' + (k - 26), t = child(a, v, c);
            if (!t && v != 0 && links) t = a->dfa[(size_t)a->row[a->node[v].fail] * CLASSES + k];
            r[k] = t;
        }
    }
    rc = 0;
done:
    PyMem_RawFree(hkey);
    PyMem_RawFree(hval);
    PyMem_RawFree(parent);
    PyMem_RawFree(sym);
    PyMem_RawFree(pat);
    PyMem_RawFree(count);
    PyMem_RawFree(edges);
    PyMem_RawFree(newid);
    PyMem_RawFree(order);
    return rc;
}

/* Matches collected as (key, start, stop) triples before they become Python tuples. */
typedef struct {
    Py_ssize_t *v;
    Py_ssize_t n, cap;
} Triples;

static int push(Triples *t, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) {
    if (t->n + 3 > t->cap) {
        Py_ssize_t cap = t->cap ? t->cap * 2 : 96;
        Py_ssize_t *v = PyMem_Realloc(t->v, cap * sizeof(Py_ssize_t));
        if (!v) { PyErr_NoMemory(); return -1; }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = a;
    t->v[t->n++] = b;
    t->v[t->n++] = c;
    return 0;
}

static PyObject *to_list(Triples *t) {
    PyObject *out = PyList_New(t->n / 3);
    for (Py_ssize_t i = 0; out && i < t->n / 3; i++) {
        PyObject *x = Py_BuildValue("nnn", t->v[3 * i], t->v[3 * i + 1], t->v[3 * i + 2]);
        if (!x) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, x);
    }
    PyMem_Free(t->v);
    return out;
}

/* Overlapping matches over codes[0..n): for each end, the longest key first (ahocorasick-rs's
   order). BODY sees ``key`` and its [``start``, ``stop``); ``continue`` skips to the next. */
#define WALK(a, codes, n, ...)                                                                \
    do {                                                                                      \
        uint32_t s_ = 0;                                                                      \
        for (Py_ssize_t i_ = 0; i_ < (n); i_++) {                                             \
            s_ = step((a), s_, (codes)[i_]);                                                  \
            if (!HAS_BIT((a)->ends, s_)) continue;                                            \
            uint32_t u_ = (a)->node[s_].pattern >= 0 ? s_ : (a)->node[s_].out;                \
            while (u_) {                                                                      \
                Py_ssize_t key = (a)->node[u_].pattern, stop = i_ + 1, start = stop - (a)->plen[key]; \
                u_ = (a)->node[u_].out;                                                            \
                __VA_ARGS__;                                                                  \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* Can a bounded (Latin) key start at canonical ``first``: has some character of its run a word
   boundary before it? (words.py's latin_bounds() looks for one.) */
static int may_start(Folded *f, Py_ssize_t first, int kind, const void *data) {
    Py_ssize_t r0 = f->run_start->v[first], n0 = f->run_len->v[first];
    for (Py_ssize_t j = 0; j < n0; j++) {
        Py_ssize_t p = f->orig->v[r0 + j];
        if (p == 0 || !is_word(PyUnicode_READ(kind, data, p - 1))) return 1;
    }
    return 0;
}

/* ... and end at canonical ``last``: some character of its run with a boundary after it. */
static int may_end(Folded *f, Py_ssize_t last, int kind, const void *data, Py_ssize_t len) {
    Py_ssize_t rl = f->run_start->v[last], nl = f->run_len->v[last];
    for (Py_ssize_t j = 0; j < nl; j++) {
        Py_ssize_t p = f->orig->v[rl + j] + 1;
        if (p == len || !is_word(PyUnicode_READ(kind, data, p))) return 1;
    }
    return 0;
}

static int check_original(Folded *f, PyObject *text) {
    if (!PyUnicode_Check(text)) { PyErr_SetString(PyExc_TypeError, "text: str expected"); return -1; }
    if (f->orig->n && f->orig->v[f->orig->n - 1] >= PyUnicode_GET_LENGTH(text)) {
        PyErr_SetString(PyExc_ValueError, "text: not the folded text's original");
        return -1;
    }
    return 0;
}

static PyObject *automaton_find(Automaton *a, PyObject *arg) {
    if (!PyObject_TypeCheck(arg, &FoldedType)) {
        PyErr_SetString(PyExc_TypeError, "folded: a Folded expected");
        return NULL;
    }
    Folded *f = (Folded *)arg;
    Triples out = {0};
    WALK(a, f->codes, f->n, {
        if (push(&out, key, start, stop) < 0) {
            PyMem_Free(out.v);
            return NULL;
        }
    });
    return to_list(&out);
}

/* Keys that need a word boundary at both ends can only start where one may be: instead of
   following failure links through every letter of Latin text (deep, dense letter tries), walk
   down the trie from each such start. Same matches as find() less those may_start()/may_end()
   rule out, in start order. */
static PyObject *automaton_walk(Automaton *a, PyObject *args) {
    PyObject *fo, *text;
    if (!PyArg_ParseTuple(args, "O!U", &FoldedType, &fo, &text)) return NULL;
    Folded *f = (Folded *)fo;
    if (!ready() || check_original(f, text) < 0) return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    Triples out = {0};
    for (Py_ssize_t i = 0; i < f->n; i++) {
        uint32_t s = go(a, 0, f->codes[i]);
        if (!s || !may_start(f, i, kind, data)) continue;
        if (a->prefix4) {
            long x = i + 4 <= f->n ? four_letters(f->codes + i) : -2;
            if (x == -2 || (x >= 0 && !HAS_BIT(a->prefix4, x))) continue;
        }
        for (Py_ssize_t j = i; s; s = ++j < f->n ? go(a, s, f->codes[j]) : 0) {
            if (HAS_BIT(a->ends, s) && a->node[s].pattern >= 0 && may_end(f, j, kind, data, len) &&
                push(&out, a->node[s].pattern, i, j + 1) < 0) {
                PyMem_Free(out.v);
                return NULL;
            }
        }
    }
    return to_list(&out);
}

static PyMethodDef automaton_methods[] = {
    {"find", (PyCFunction)automaton_find, METH_O,
     "find(folded): (key, first, stop) of every match over the canonical text, by stop and "
     "longest first (ahocorasick-rs's overlapping order)"},
    {"walk", (PyCFunction)automaton_walk, METH_VARARGS,
     "walk(folded, text): the matches of keys that need word boundaries, where they can have "
     "them, by start"},
    {NULL},
};

static PyObject *automaton_nodes(Automaton *a, void *unused) {
    return PyLong_FromUnsignedLong(a->n_nodes);
}

static PyGetSetDef automaton_getset[] = {
    {"nodes", (getter)automaton_nodes, NULL, "trie nodes", NULL},
    {NULL},
};

static PyTypeObject AutomatonType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "compliance._wordscan.Automaton",
    .tp_basicsize = sizeof(Automaton),
    .tp_dealloc = (destructor)automaton_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_init = (initproc)automaton_init,
    .tp_new = PyType_GenericNew,
    .tp_methods = automaton_methods,
    .tp_getset = automaton_getset,
    .tp_doc = "Automaton(keys, links=True): Aho-Corasick over code points (links=False: a trie only walked).",
};

/* ---- the spelled pass ---------------------------------------------------------------------- */

/* spelled(folded, text, automata, reach, relevant) -> [(automaton, key, first, last)]

   compliance.spelling.spell() of the characters within ``reach`` of a Latin letter, searched
   (the automaton walked down from each character where a match may begin: built without
   links), and each match mapped back to canonical first..last, kept when it begins and ends on whole
   characters and holds a Latin letter (what words.py's spelled pass asks of a match), and
   when pinyin.verify()'s word-boundary check at its start does not turn it away. A character
   that ``relevant`` (per BMP code point) rules out is spelled as FAR_CODE: the caller passes
   the characters that can be in a verified match (Latin letters and digits, the terms' own
   characters, and for homophone terms every character that sounds like one), so leaving the
   others out only drops matches that would fail. */
static PyObject *spelled(PyObject *self, PyObject *args) {
    PyObject *fo, *text, *autos;
    Py_ssize_t reach;
    Py_buffer rel;
    if (!PyArg_ParseTuple(args, "O!UO!ny*", &FoldedType, &fo, &text, &PyTuple_Type, &autos,
                          &reach, &rel))
        return NULL;
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(autos); t++) {
        if (!PyObject_TypeCheck(PyTuple_GET_ITEM(autos, t), &AutomatonType)) {
            PyBuffer_Release(&rel);
            PyErr_SetString(PyExc_TypeError, "automata: a tuple of Automaton expected");
            return NULL;
        }
    }
    if (!ready()) { PyBuffer_Release(&rel); return NULL; }
    if (rel.len != BMP) {
        PyBuffer_Release(&rel);
        PyErr_SetString(PyExc_ValueError, "relevant: one byte per BMP code point expected");
        return NULL;
    }
    static const uint32_t far_code = FAR_CODE;
    const uint8_t *relevant = rel.buf;
    Folded *f = (Folded *)fo;
    Py_ssize_t n = f->n, len = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const uint32_t *codes = f->codes;
    Triples out = {0};
    Py_ssize_t *before = NULL, *cstart = NULL, *lchar = NULL;
    uint8_t *cw = NULL;
    uint32_t *buf = NULL;
    PyObject *result = NULL;
    if (check_original(f, text) < 0) goto done;
    before = PyMem_Malloc((n + 1) * sizeof(Py_ssize_t)); /* Latin letters before i */
    if (!before) { PyErr_NoMemory(); goto done; }
    before[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) before[i + 1] = before[i] + is_letter(codes[i]);
    if (before[n] == 0) { result = PyList_New(0); goto done; }
    cstart = PyMem_Malloc((n ? n : 1) * sizeof(Py_ssize_t));
    cw = PyMem_Malloc(n ? n : 1);
    Py_ssize_t cap = n * 2 + 16, m = 0;
    buf = PyMem_Malloc(cap * sizeof(uint32_t));
    lchar = PyMem_Malloc(cap * sizeof(Py_ssize_t));
    if (!cstart || !cw || !buf || !lchar) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = codes[i];
        Py_ssize_t lo = i - reach < 0 ? 0 : i - reach, hi = i + reach + 1 > n ? n : i + reach + 1;
        int near = before[hi] > before[lo];
        cstart[i] = -1;
        cw[i] = 0;
        if (c >= '1' && c <= '5' && i > 0 && is_letter(codes[i - 1]) &&
            !(i + 1 < n && codes[i + 1] >= '0' && codes[i + 1] <= '9')) {
            cstart[i] = m; /* a tone number after a letter (du3): no letters of its own */
            continue;
        }
        const uint32_t *src;
        Py_ssize_t w;
        if (near && (c >= BMP || relevant[c] || is_letter(c))) {
            if (c < BMP) {
                w = T.width[c];
                src = T.letters + T.offset[c];
            } else {
                w = 1;
                src = &codes[i];
            }
            cstart[i] = m;
            cw[i] = (uint8_t)w;
        } else {
            if (m && buf[m - 1] == FAR_CODE) continue;
            w = 1;
            src = &far_code;
        }
        if (m + w > cap) {
            cap = (m + w) * 2;
            uint32_t *nb = PyMem_Realloc(buf, cap * sizeof(uint32_t));
            Py_ssize_t *nl = PyMem_Realloc(lchar, cap * sizeof(Py_ssize_t));
            if (nb) buf = nb;
            if (nl) lchar = nl;
            if (!nb || !nl) { PyErr_NoMemory(); goto done; }
        }
        for (Py_ssize_t j = 0; j < w; j++) {
            buf[m] = src[j];
            lchar[m++] = cstart[i] >= 0 ? i : -1;
        }
    }
    /* Walks down the trie from each character's first letter where a verified match can
       begin: not inside a word (verify()'s first check), not from an inert character. */
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(autos); t++) {
    Automaton *a = (Automaton *)PyTuple_GET_ITEM(autos, t);
    for (Py_ssize_t first = 0; first < n; first++) {
        if (cstart[first] < 0 || cw[first] == 0) continue;
        uint32_t node = go(a, 0, buf[cstart[first]]);
        if (!node) continue;
        if (a->prefix4) {
            long x = cstart[first] + 4 <= m ? four_letters(buf + cstart[first]) : -2;
            if (x == -2 || (x >= 0 && !HAS_BIT(a->prefix4, x))) continue;
        }
        Py_ssize_t s, e;
        span_of(f, first, first, &s, &e);
        if (s > 0 && is_latin_char(PyUnicode_READ(kind, data, s)) &&
            is_word(PyUnicode_READ(kind, data, s - 1)))
            continue;
        for (Py_ssize_t q = cstart[first]; node; node = ++q < m ? go(a, node, buf[q]) : 0) {
            if (!HAS_BIT(a->ends, node) || a->node[node].pattern < 0) continue;
            Py_ssize_t last = lchar[q];
            if (last < 0 || cstart[last] + cw[last] != q + 1 || before[last + 1] == before[first])
                continue; /* not on a whole character, or no Latin letter */
            span_of(f, first, last, &s, &e);
            if (e < len) {
                Py_UCS4 after = PyUnicode_READ(kind, data, e);
                if (!(after >= '1' && after <= '5') &&
                    is_latin_char(PyUnicode_READ(kind, data, e - 1)) && is_word(after))
                    continue; /* a Latin end inside a word (a tone number after it: verify's) */
            }
            if (push(&out, t, a->node[node].pattern, first) < 0 || push(&out, last, 0, 0) < 0)
                goto done;
        }
    }
    }
    result = PyList_New(out.n / 6);
    for (Py_ssize_t i = 0; result && i < out.n / 6; i++) {
        Py_ssize_t *v = out.v + 6 * i;
        PyObject *x = Py_BuildValue("nnnn", v[0], v[1], v[2], v[3]);
        if (!x) { Py_CLEAR(result); break; }
        PyList_SET_ITEM(result, i, x);
    }
done:
    PyMem_Free(out.v);
    PyMem_Free(before);
    PyMem_Free(cstart);
    PyMem_Free(cw);
    PyMem_Free(buf);
    PyMem_Free(lchar);
    PyBuffer_Release(&rel);
    return result;
}

/* ---- module -------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(fold, sound, letters, offset, width, word, latin, exp_offsets, exp_codes, "
     "fold_astral): the tables of compliance.normalize and compliance.spelling"},
    {"fold", fold, METH_O, "fold(text) -> Folded (compliance.normalize.fold)"},
    {"spelled", spelled, METH_VARARGS, "spelled(folded, text, automata, reach, relevant)"},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "compliance._wordscan",
    "Native inner loops of the sensitive-word scanner (see compliance/native.py).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__wordscan(void) {
    if (PyType_Ready(&IntArrayType) < 0 || PyType_Ready(&FoldedType) < 0 ||
        PyType_Ready(&AutomatonType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&AutomatonType);
    if (PyModule_AddObject(m, "Automaton", (PyObject *)&AutomatonType) < 0) {
        Py_DECREF(&AutomatonType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&FoldedType);
    PyModule_AddObject(m, "Folded", (PyObject *)&FoldedType);
    return m;
}
