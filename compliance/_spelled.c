/* The word scanner's spelled pass, native: spelled(folded, text, groups) finds the candidate
 * matches of keys typed as pinyin letters (du博 for 赌博): it spells the characters near a
 * Latin letter, picks the characters where a verified match can begin, and walks each trie of
 * spelled keys down from there. It finds fewer candidates than the Python path, never other
 * ones: what a spelled match is stays decided in compliance/pinyin.py.
 *
 * Its own file because it is the scanner's largest single piece, with its own set-up arrays and
 * limits (MAX_GROUPS, SPELLED_MAX); it reads the tables (T, _wordscan.c), the Folded
 * (_fold.c) and the tries (_automaton.c) through _wordscan.h. See _wordscan.c for why the
 * scanner has native inner loops at all.
 */
#include "_wordscan.h"

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

PyObject *ws_spelled(PyObject *self, PyObject *args) {
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
