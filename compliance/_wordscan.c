/* The sensitive-word scanner's inner loops, native (see compliance/native.py).
 *
 * Python made each 10k-character chunk cost ~5 ms: numpy calls per folding step, three
 * ahocorasick-rs passes that each re-encode the text as UTF-8, and a Python loop per raw match,
 * most of which the checks then threw away. Here one call folds the text (table lookups,
 * separators dropped, runs collapsed, the way back to the original kept), automata walk code
 * points (no re-encoding, one step a character), and raw matches that cannot pass the Python
 * checks (a Latin key not on a word boundary, a spelled match inside a syllable or without a
 * Latin letter) are dropped before they become Python objects. The plain and homophone
 * passes' per-match checks, and their Hit objects, are in _hits.c; what a spelled match is
 * stays decided in Python (compliance/pinyin.py): this only finds fewer, never other,
 * candidates.
 * tests/unit/test_compliance_native.py checks that against the Python paths on random evasive
 * text.
 */
#include "_wordscan.h"

/* ---- tables, set once by configure() ------------------------------------------------------ */

Tables T;

int copy_buffer(PyObject *obj, void **dst, Py_ssize_t itemsize, Py_ssize_t want,
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
    for (uint32_t c = 0; c < BMP; c++) {
        if (T.fold[c] > FOLD_VALUE) {
            PyErr_Format(PyExc_ValueError, "fold: value %u of U+%04X too large", T.fold[c], c);
            PyMem_RawFree(T.fold);
            T.fold = NULL; /* not ready() */
            return NULL;
        }
        T.fold[c] |= (T.word[c] ? FOLD_WORD : 0) | (T.latin[c] ? FOLD_LATIN : 0);
    }
    T.n_exp -= 1;
    T.max_width = 0;
    for (uint32_t c = 0; c < BMP; c++)
        if (T.width[c] > T.max_width) T.max_width = T.width[c];
    Py_INCREF(astral);
    Py_XSETREF(T.fold_astral, astral);
    Py_RETURN_NONE;
}

int ready(void) {
    if (T.fold) return 1;
    PyErr_SetString(PyExc_RuntimeError, "compliance._wordscan: configure() first");
    return 0;
}



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

static PyObject *fold(PyObject *self, PyObject *arg) {
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

/* ---- the spelled pass ---------------------------------------------------------------------- */

/* Per BMP code point, the node of ``a`` after its spelled letters from the root (0: none). */
static uint32_t *first_steps(Automaton *a) {
    uint32_t *out = PyMem_RawMalloc(BMP * sizeof(uint32_t));
    if (!out) { PyErr_NoMemory(); return NULL; }
    for (uint32_t c = 0; c < BMP; c++) {
        uint32_t node = 0;
        for (uint32_t j = 0; j < T.width[c]; j++) {
            node = go(a, node, T.letters[T.offset[c] + j]);
            if (!node) break;
        }
        out[c] = T.width[c] ? node : 0;
    }
    return out;
}

/* spelled(folded, text, groups) -> [(automaton, key, first, last)]

   compliance.spelling.spell() of the characters within ``reach`` of a Latin letter, searched
   (the automaton walked down from each character where a match may begin: built without
   links), and each match mapped back to canonical first..last, kept when it begins and ends on whole
   characters and holds a Latin letter (what words.py's spelled pass asks of a match), and
   when pinyin.verify()'s word-boundary check at its start does not turn it away. A character
   that ``relevant`` (per BMP code point) rules out is spelled as FAR_CODE: the caller passes
   the characters that can be in a verified match (Latin letters and digits, the terms' own
   characters, and for homophone terms every character that sounds like one), so leaving the
   others out only drops matches that would fail.

   ``groups`` is a tuple of (automata, reach, relevant), each searched as if spelled on its
   own; ``automaton`` numbers the automata of all groups in order. The groups share one
   spelled text (a character is spelled when some group spells it) and one list of starts: a
   walk of a group stops at a character that group leaves out, where its own spelled text
   would have held FAR_CODE, which no key holds. */
#define MAX_GROUPS 8
/* Per letter of the spelled text (qflag): bit g, the first letter of a character that group g
   does not spell (its walk stops there); Q_CHAR_END, the last letter of a character. */
#define Q_CHAR_END 0x100
/* The longest text spelled() takes: its spelled text (T.max_width letters a character at
   most, 6 with the tables of compliance.spelling: 268M characters) must index in 32 bits. */
#define SPELLED_MAX ((INT32_MAX - 16) / (T.max_width + 1))

typedef struct {
    PyObject *autos;
    Py_ssize_t reach;
    Py_buffer rel;
} Group;

static PyObject *spelled(PyObject *self, PyObject *args) {
    PyObject *fo, *text, *groups_arg;
    if (!PyArg_ParseTuple(args, "O!UO!", &FoldedType, &fo, &text, &PyTuple_Type, &groups_arg))
        return NULL;
    Py_ssize_t n_groups = PyTuple_GET_SIZE(groups_arg), n_ready = 0;
    Group groups[MAX_GROUPS];
    static const uint32_t far_code = FAR_CODE;
    Folded *f = (Folded *)fo;
    Py_ssize_t n = f->n, len = PyUnicode_GET_LENGTH(text), reach = 0;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    const uint32_t *codes = f->codes;
    Triples out = {0};
    /* Indexes into the text and the spelled text as 32 bits: the per-text arrays are half
       the size (a 10k-character chunk's fit in L2 beside the tries), the text is refused
       beyond SPELLED_MAX characters. */
    int32_t *before = NULL, *cstart = NULL, *lchar = NULL, *starts = NULL;
    uint8_t *cw = NULL, *spells = NULL, *starts_of = NULL;
    uint16_t *qflag = NULL;
    uint32_t *buf = NULL;
    PyObject *result = NULL;
    if (n_groups > MAX_GROUPS) {
        PyErr_Format(PyExc_ValueError, "groups: at most %d", MAX_GROUPS);
        return NULL;
    }
    for (; n_ready < n_groups; n_ready++) {
        Group *g = &groups[n_ready];
        PyObject *item = PyTuple_GET_ITEM(groups_arg, n_ready);
        if (!PyTuple_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "groups: (automata, reach, relevant) expected");
            goto done;
        }
        if (!PyArg_ParseTuple(item, "O!ny*;groups: "
                              "(automata, reach, relevant) expected", &PyTuple_Type, &g->autos,
                              &g->reach, &g->rel))
            goto done;
        if (g->rel.len != BMP) {
            PyBuffer_Release(&g->rel);
            PyErr_SetString(PyExc_ValueError, "relevant: one byte per BMP code point expected");
            goto done;
        }
        for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(g->autos); t++) {
            if (!PyObject_TypeCheck(PyTuple_GET_ITEM(g->autos, t), &AutomatonType)) {
                PyBuffer_Release(&g->rel);
                PyErr_SetString(PyExc_TypeError, "automata: a tuple of Automaton expected");
                goto done;
            }
        }
        if (g->reach > reach) reach = g->reach;
    }
    if (!ready() || check_original(f, text) < 0) goto done;
    if (n > SPELLED_MAX) {
        PyErr_Format(PyExc_OverflowError, "spelled: at most %d characters", (int)SPELLED_MAX);
        goto done;
    }
    before = PyMem_Malloc((n + 1) * sizeof(int32_t)); /* Latin letters before i */
    if (!before) { PyErr_NoMemory(); goto done; }
    before[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) before[i + 1] = before[i] + (int32_t)is_letter(codes[i]);
    if (before[n] == 0 || n_groups == 0) { result = PyList_New(0); goto done; }
    /* Every group of the same reach (the usual case: homophone terms as long as the others):
       one window test per character answers for all of them. */
    int same = 1;
    for (Py_ssize_t g = 0; g < n_groups; g++) same &= groups[g].reach == reach;
    const uint8_t all = (uint8_t)((1u << n_groups) - 1);
    cstart = PyMem_Malloc((n ? n : 1) * sizeof(int32_t));
    cw = PyMem_Malloc(n ? n : 1);
    spells = PyMem_Malloc(n ? n : 1); /* per character: one bit per group that spells it */
    Py_ssize_t cap = n * 2 + 16, m = 0, n_starts = 0;
    buf = PyMem_Malloc(cap * sizeof(uint32_t));
    lchar = PyMem_Malloc(cap * sizeof(int32_t));
    qflag = PyMem_Malloc(cap * sizeof(uint16_t));
    starts = PyMem_Malloc((n ? n : 1) * sizeof(int32_t));
    starts_of = PyMem_Malloc(n ? n : 1);
    if (!cstart || !cw || !spells || !buf || !lchar || !qflag || !starts || !starts_of) {
        PyErr_NoMemory();
        goto done;
    }
    /* One pass: which groups spell each character, the spelled text, and the characters where
       a verified match can begin (with the groups it can begin in). */
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t c = codes[i];
        cstart[i] = -1;
        cw[i] = 0;
        spells[i] = 0;
        if (c >= '1' && c <= '5' && i > 0 && is_letter(codes[i - 1]) &&
            !(i + 1 < n && codes[i + 1] >= '0' && codes[i + 1] <= '9')) {
            cstart[i] = (int32_t)m; /* a tone number after a letter (du3): no letters of its own */
            continue;
        }
        uint8_t sp = 0;
        Py_ssize_t lo = i - reach < 0 ? 0 : i - reach, hi = i + reach + 1 > n ? n : i + reach + 1;
        if (before[hi] > before[lo]) { /* near a letter for the widest reach */
            if (c >= BMP || is_letter(c)) {
                sp = all;
            } else {
                for (Py_ssize_t g = 0; g < n_groups; g++)
                    if (((const uint8_t *)groups[g].rel.buf)[c]) sp |= (uint8_t)(1u << g);
            }
            for (Py_ssize_t g = 0; !same && g < n_groups; g++) { /* ... and for each group's */
                Py_ssize_t r = groups[g].reach;
                lo = i - r < 0 ? 0 : i - r;
                hi = i + r + 1 > n ? n : i + r + 1;
                if (before[hi] == before[lo]) sp &= (uint8_t)~(1u << g);
            }
        }
        spells[i] = sp;
        const uint32_t *src;
        Py_ssize_t w;
        if (sp) {
            if (c < BMP) {
                w = T.width[c];
                src = T.letters + T.offset[c];
            } else {
                w = 1;
                src = &codes[i];
            }
            cstart[i] = (int32_t)m;
            cw[i] = (uint8_t)w;
        } else {
            if (m && buf[m - 1] == FAR_CODE) continue;
            w = 1;
            src = &far_code;
        }
        if (m + w > cap) {
            cap = (m + w) * 2;
            uint32_t *nb = PyMem_Realloc(buf, cap * sizeof(uint32_t));
            int32_t *nl = PyMem_Realloc(lchar, cap * sizeof(int32_t));
            uint16_t *nq = PyMem_Realloc(qflag, cap * sizeof(uint16_t));
            if (nb) buf = nb;
            if (nl) lchar = nl;
            if (nq) qflag = nq;
            if (!nb || !nl || !nq) { PyErr_NoMemory(); goto done; }
        }
        if (!sp) {
            buf[m] = FAR_CODE;
            lchar[m] = -1;
            qflag[m++] = 0;
            continue;
        }
        if (w == 0) continue;
        for (Py_ssize_t j = 0; j < w; j++) {
            buf[m + j] = src[j];
            lchar[m + j] = (int32_t)i;
            qflag[m + j] = 0;
        }
        qflag[m] = (uint8_t)~sp; /* the groups that do not spell it stop here */
        qflag[m + w - 1] |= Q_CHAR_END;
        m += w;
        /* A start? A verified match holds a Latin letter, and fewer than ``reach`` units
           (characters) stand before its first one: a start without a letter that close
           begins none; and it does not begin inside a word (verify()'s first check; in Latin
           text that rules out most letters, so it is asked once here, not per automaton). */
        uint8_t in = 0;
        if (same) {
            Py_ssize_t ahead = i + reach < n ? i + reach : n;
            if (before[ahead] > before[i]) in = sp;
        } else {
            for (Py_ssize_t g = 0; g < n_groups; g++) {
                Py_ssize_t ahead = i + groups[g].reach < n ? i + groups[g].reach : n;
                if ((sp >> g & 1) && before[ahead] > before[i]) in |= (uint8_t)(1u << g);
            }
        }
        if (!in) continue;
        int ok = bound_get(f, i, BOUND_SPELLED);
        if (ok < 0) {
            Py_ssize_t s, e;
            span_of(f, i, i, &s, &e);
            ok = bound_set(f, i, BOUND_SPELLED,
                           !(s > 0 && is_latin_char(PyUnicode_READ(kind, data, s)) &&
                             is_word(PyUnicode_READ(kind, data, s - 1))));
        }
        if (ok) {
            starts_of[n_starts] = in;
            starts[n_starts++] = (int32_t)i;
        }
    }
    /* Walks down each trie from those characters' first letters. */
    Py_ssize_t t_all = 0;
    for (Py_ssize_t g = 0; g < n_groups; g++) {
    const uint8_t bit = (uint8_t)(1u << g);
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(groups[g].autos); t++, t_all++) {
    Automaton *a = (Automaton *)PyTuple_GET_ITEM(groups[g].autos, t);
    if (!a->first_step && !(a->first_step = first_steps(a))) goto done;
    for (Py_ssize_t k = 0; k < n_starts; k++) {
        if (!(starts_of[k] & bit)) continue;
        Py_ssize_t first = starts[k], s, e;
        uint32_t c = codes[first];
        if (a->prefix4 && is_letter(c)) { /* first: a bitmap that rules out most letters */
            long x = cstart[first] + 4 <= m ? four_letters(buf + cstart[first]) : -2;
            if (x == -2 || (x >= 0 && !HAS_BIT(a->prefix4, x))) continue;
        }
        uint32_t node = c < BMP ? a->first_step[c] : go(a, 0, c);
        if (!node) continue;
        for (Py_ssize_t q = cstart[first] + cw[first] - 1;;) {
            if ((qflag[q] & Q_CHAR_END) && walk_key(a, node) >= 0) {
                Py_ssize_t last = lchar[q];
                if (before[last + 1] > before[first]) { /* whole characters, a Latin letter */
                    span_of(f, first, last, &s, &e);
                    Py_UCS4 after = e < len ? PyUnicode_READ(kind, data, e) : 0;
                    /* not a Latin end inside a word (a tone number after it: verify's) */
                    if (e >= len || (after >= '1' && after <= '5') ||
                        !is_latin_char(PyUnicode_READ(kind, data, e - 1)) || !is_word(after)) {
                        if (push(&out, t_all, walk_key(a, node), first) < 0 ||
                            push(&out, last, 0, 0) < 0)
                            goto done;
                    }
                }
            }
            if (++q >= m) break;
            /* a character this group does not spell ends the walk (its FAR_CODE) */
            if (qflag[q] & bit) break;
            if (!(node = go(a, node, buf[q]))) break;
        }
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
    for (Py_ssize_t g = 0; g < n_ready; g++) PyBuffer_Release(&groups[g].rel);
    PyMem_Free(out.v);
    PyMem_Free(before);
    PyMem_Free(cstart);
    PyMem_Free(cw);
    PyMem_Free(spells);
    PyMem_Free(buf);
    PyMem_Free(lchar);
    PyMem_Free(qflag);
    PyMem_Free(starts);
    PyMem_Free(starts_of);
    return result;
}

/* ---- module -------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(fold, sound, letters, offset, width, word, latin, exp_offsets, exp_codes, "
     "fold_astral): the tables of compliance.normalize and compliance.spelling"},
    {"fold", fold, METH_O, "fold(text) -> Folded (compliance.normalize.fold)"},
    {"spelled", spelled, METH_VARARGS, "spelled(folded, text, groups)"},
    {"hits", hits, METH_VARARGS,
     "hits(folded, text, sources, min_end, hit_type, actions) -> (hits, allows) (_hits.c)"},
    {"untrack", untrack, METH_O,
     "untrack(obj) -> int: the nested tuples of atomics in obj leave the collector (_untrack.c)"},
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
