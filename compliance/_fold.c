/* The word scanner's text folding, native: the Folded type (canonical code points, the way
 * back to the original text, the word-boundary answers per position), fold(text), which makes
 * one in a single pass over the text, and Folded.sounds(), the syllable folding made from it
 * (the sounds-alike keys of homophone terms: compliance.normalize.resound).
 *
 * Its own file because every scan runs it first and every other part reads what it makes: the
 * automata (_automaton.c), the plain and homophone passes (_hits.c) and the spelled pass
 * (_spelled.c) take a Folded; the tables it reads (T) are set in _wordscan.c and shared
 * through _wordscan.h. See _wordscan.c for why the scanner has native inner loops at all.
 */
#include "_wordscan.h"

/* ---- IntArray: read-only ints (a Folded's orig, run_start, run_len) ----------------------- */
IntArray *intarray_new(Py_ssize_t n) {
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

PyTypeObject IntArrayType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "compliance._wordscan.IntArray",
    .tp_basicsize = sizeof(IntArray),
    .tp_dealloc = (destructor)intarray_dealloc,
    .tp_as_sequence = &intarray_seq,
    .tp_as_buffer = &intarray_buf,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Read-only ints (a Folded's orig, run_start, run_len).",
};

/* ---- Folded: a folded text (compliance.normalize.Folded's fields) -------------------------- */

static void folded_dealloc(Folded *f) {
    PyMem_Free(f->codes);
    PyMem_Free(f->bound);
    PyMem_Free(f->wstart);
    Py_XDECREF(f->orig);
    Py_XDECREF(f->run_start);
    Py_XDECREF(f->run_len);
    Py_XDECREF(f->text);
    PyObject_Free(f);
}

/* A Folded with nothing in it yet (every pointer NULL: safe to dealloc). */
static Folded *folded_new(IntArray *orig) {
    Folded *f = PyObject_New(Folded, &FoldedType);
    if (!f) return NULL;
    f->n = 0;
    f->codes = NULL;
    f->run_start = f->run_len = NULL;
    f->text = NULL;
    f->bound = NULL;
    f->wstart = NULL;
    f->n_wstart = 0;
    Py_INCREF(orig);
    f->orig = orig;
    return f;
}

/* Per kept code, what fold() learnt of its original character (KEPT_*). */
#define KEPT_BOUNDARY 1 /* first in the text, or the character before it is not a word's */
#define KEPT_LATIN 2    /* is_latin_char() */

/* Grows ``f``'s arrays (codes, bound, run_start, run_len, and the kept codes' orig) to
   ``cap``: one character can fold to several codes (ﬁ -> fi). */
static int fold_grow(Folded *f, Py_ssize_t cap) {
    uint32_t *nc = PyMem_Realloc(f->codes, cap * sizeof(uint32_t));
    if (nc) f->codes = nc;
    uint8_t *nb = PyMem_Realloc(f->bound, cap);
    if (nb) f->bound = nb;
    Py_ssize_t *ns = PyMem_Realloc(f->run_start->v, cap * sizeof(Py_ssize_t));
    if (ns) f->run_start->v = ns;
    Py_ssize_t *nl = PyMem_Realloc(f->run_len->v, cap * sizeof(Py_ssize_t));
    if (nl) f->run_len->v = nl;
    Py_ssize_t *no = PyMem_Realloc(f->orig->v, cap * sizeof(Py_ssize_t));
    if (no) f->orig->v = no;
    if (nc && nb && ns && nl && no) return 0;
    PyErr_NoMemory();
    return -1;
}

/* The folding of ``data`` (``n`` characters of ``kind``) into ``f`` (arrays of ``cap``), in
   one pass: each character's code(s) are kept (separators dropped), runs of one code
   collapsed as they come, and the word-boundary answers (``bound``) filled in: may_start() of
   a run is whether some character of it has a boundary before it, the spelled pass's start
   check whether its first character is not a Latin one inside a word. Inlined per ``kind``,
   so a character is read without asking its width. 0, or -1 (an error set). */
static inline __attribute__((always_inline)) int fold_into(Folded *f, const void *data,
                                                           Py_ssize_t n, int kind,
                                                           Py_ssize_t cap) {
    Py_ssize_t k = 0, r = -1;
    int prev_word = 0; /* the character before is a word's (none before the first) */
    int any_boundary = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        uint32_t v, x = c < BMP ? T.fold[c] : 0; /* beyond the BMP: no word's, not Latin */
        uint8_t flag = (uint8_t)((prev_word ? 0 : KEPT_BOUNDARY) |
                                 (x & FOLD_LATIN ? KEPT_LATIN : 0));
        prev_word = (x & FOLD_WORD) != 0;
        if (c < BMP) {
            v = x & FOLD_VALUE;
        } else {
            PyObject *got = PyObject_CallFunction(T.fold_astral, "I", (unsigned)c);
            if (!got) return -1;
            v = (uint32_t)PyLong_AsUnsignedLong(got);
            Py_DECREF(got);
            if (PyErr_Occurred()) return -1;
        }
        if (v == 0) continue;
        const uint32_t *src = &v;
        Py_ssize_t m = 1;
        if (v >= EXPANDED_BASE) { /* one character folds to several (ﬁ -> fi) */
            Py_ssize_t e = v - EXPANDED_BASE;
            if (e >= T.n_exp) { PyErr_SetString(PyExc_ValueError, "bad expansion"); return -1; }
            src = T.exp_codes + T.exp_offsets[e];
            m = T.exp_offsets[e + 1] - T.exp_offsets[e];
        }
        if (k + m > cap) {
            cap = (k + m) * 2;
            if (fold_grow(f, cap) < 0) return -1;
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            uint32_t code = src[j];
            if (r < 0 || code != f->codes[r]) { /* a new run */
                if (r >= 0) f->bound[r] |= (uint8_t)((any_boundary ? 2 : 1) << BOUND_MAY_START);
                r++;
                f->codes[r] = code;
                f->run_start->v[r] = k;
                f->run_len->v[r] = 0;
                int spelled_ok = !(flag & KEPT_LATIN) || (flag & KEPT_BOUNDARY);
                f->bound[r] = (uint8_t)((spelled_ok ? 2 : 1) << BOUND_SPELLED);
                any_boundary = 0;
            }
            any_boundary |= flag & KEPT_BOUNDARY;
            f->run_len->v[r]++;
            f->orig->v[k++] = i;
        }
    }
    if (r >= 0) f->bound[r] |= (uint8_t)((any_boundary ? 2 : 1) << BOUND_MAY_START);
    f->orig->n = k;
    f->n = f->run_start->n = f->run_len->n = r + 1;
    return 0;
}

PyObject *ws_fold(PyObject *self, PyObject *arg) {
    if (!ready()) return NULL;
    if (!PyUnicode_Check(arg)) { PyErr_SetString(PyExc_TypeError, "text: str expected"); return NULL; }
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    int kind = PyUnicode_KIND(arg);
    const void *data = PyUnicode_DATA(arg);
    Py_ssize_t cap = n + 16;
    IntArray *orig = intarray_new(cap);
    if (!orig) return NULL;
    Folded *f = folded_new(orig);
    Py_DECREF(orig); /* f holds it */
    if (!f) return NULL;
    f->codes = PyMem_Malloc(cap * sizeof(uint32_t));
    f->bound = PyMem_Malloc(cap);
    f->run_start = intarray_new(cap);
    f->run_len = intarray_new(cap);
    if (!f->codes || !f->bound || !f->run_start || !f->run_len) {
        Py_DECREF(f);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return NULL;
    }
    int rc;
    switch (kind) {
    case PyUnicode_1BYTE_KIND: rc = fold_into(f, data, n, PyUnicode_1BYTE_KIND, cap); break;
    case PyUnicode_2BYTE_KIND: rc = fold_into(f, data, n, PyUnicode_2BYTE_KIND, cap); break;
    default: rc = fold_into(f, data, n, PyUnicode_4BYTE_KIND, cap); break;
    }
    if (rc < 0) {
        Py_DECREF(f);
        return NULL;
    }
    return (PyObject *)f;
}

static PyObject *folded_sounds(Folded *f, PyObject *unused) {
    /* fold(text, pinyin=True) from fold(text): syllables of the canonical characters, runs of
       one syllable merged (compliance.normalize.resound), in one pass. */
    if (!ready()) return NULL;
    Folded *s = folded_new(f->orig);
    if (!s) return NULL;
    s->codes = PyMem_Malloc((f->n ? f->n : 1) * sizeof(uint32_t));
    s->run_start = intarray_new(f->n);
    s->run_len = intarray_new(f->n);
    if (!s->codes || !s->run_start || !s->run_len) {
        Py_DECREF(s);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t r = -1;
    for (Py_ssize_t i = 0; i < f->n; i++) {
        uint32_t c = f->codes[i], v = c < BMP ? T.sound[c] : c;
        if (r < 0 || v != s->codes[r]) {
            r++;
            s->codes[r] = v;
            s->run_start->v[r] = f->run_start->v[i];
            s->run_len->v[r] = 0;
        }
        s->run_len->v[r] += f->run_len->v[i]; /* f's runs tile its kept codes */
    }
    s->n = s->run_start->n = s->run_len->n = r + 1;
    return (PyObject *)s;
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

PyTypeObject FoldedType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "compliance._wordscan.Folded",
    .tp_basicsize = sizeof(Folded),
    .tp_dealloc = (destructor)folded_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_getset = folded_getset,
    .tp_methods = folded_methods,
    .tp_doc = "A folded text: canonical code points and the way back to the original.",
};
