/* The plain and homophone passes of the word scanner after the fold, native (see
 * compliance/words.py, _Automaton and WordFilter._raw_hits): the automata's matches, in the
 * order one Aho-Corasick pass over all keys finds them, their checks, and the Hit objects.
 *
 * A 4 MB mixed text gives ~7,000 raw matches, and each one in Python cost ~4 us: its span read
 * element by element through the folding's arrays (an int object each), the run-length check
 * and the Latin word-boundary search in Python loops. Then, with the checks here, still ~5 us
 * a match: a tuple per raw match, a sort of them in Python, a tuple per checked one, and a
 * Hit made through the dataclass's __init__ (~2 us). Here one call does all of it. The checks
 * are compliance/scantext.py's MatchArrays (span, enough_repeats, latin_bounds) word for word:
 * the Python paths keep using those, and tests/unit/test_compliance_native.py compares both.
 */
#include "_wordscan.h"
#include <structmember.h>

/* A key's checks: its entry, a words.Check tuple (or an object whose ``check`` attribute is
   one), read once per key of a match. */
typedef struct {
    int allow, bound_start, bound_end;
    PyObject *repeats; /* tuple of ints, or None: any run length will do */
    Py_ssize_t run_first, run_last;
    PyObject *check;   /* the tuple (borrowed): from CHECK_HIT on, what a Hit
                          of the key holds after its span (term, category, severity, action,
                          via_pinyin), the action by its place in hits()'s ``actions`` */
} Check;

/* Hit's fields, in its order: start, end, matched, then the key's (Check.check). */
#define HIT_FIELDS 8
#define CHECK_HIT 6 /* where a Hit's fields after the span begin in words.Check */
static const char *const HIT_NAMES[HIT_FIELDS] = {
    "start", "end", "matched", "term", "category", "severity", "action", "via_pinyin"};

static int read_check(PyObject *key, PyObject *name, Check *c) {
    PyObject *t = PyTuple_Check(key) ? Py_NewRef(key) : PyObject_GetAttr(key, name);
    if (!t) return -1;
    int ok = PyTuple_Check(t) && PyTuple_GET_SIZE(t) == CHECK_HIT + HIT_FIELDS - 3;
    if (ok) {
        c->allow = PyObject_IsTrue(PyTuple_GET_ITEM(t, 0));
        c->repeats = PyTuple_GET_ITEM(t, 1);
        c->bound_start = PyObject_IsTrue(PyTuple_GET_ITEM(t, 2));
        c->bound_end = PyObject_IsTrue(PyTuple_GET_ITEM(t, 3));
        c->run_first = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 4));
        c->run_last = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 5));
        c->check = t;
        ok = c->repeats == Py_None || PyTuple_Check(c->repeats);
    }
    Py_DECREF(t); /* the key holds the tuple, and the tuple its items */
    if (!ok) {
        PyErr_SetString(PyExc_TypeError, "key: (allow, repeats, bound_start, bound_end, "
                        "first run, last run, term, category, severity, action, via_pinyin) "
                        "expected");
        return -1;
    }
    return PyErr_Occurred() ? -1 : 0;
}

/* MatchArrays.enough_repeats: the match's runs are at least as long as the key's. */
static int enough_repeats(Folded *f, Py_ssize_t first, PyObject *repeats) {
    if (repeats == Py_None) return 1;
    Py_ssize_t n = PyTuple_GET_SIZE(repeats);
    if (first + n > f->n) return 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        Py_ssize_t want = PyLong_AsSsize_t(PyTuple_GET_ITEM(repeats, j));
        if (f->run_len->v[first + j] < want) return 0;
    }
    return 1;
}

/* MatchArrays.latin_bounds: the span of a key whose Latin edges sit on word boundaries, the
   first start in its first run (and the last end in its last run) that leaves enough letters
   and is not inside a character that folded to several; 0 when there is none. */
static int latin_bounds(Folded *f, int kind, const void *data, Py_ssize_t len, Py_ssize_t first,
                        Py_ssize_t last, const Check *c, Py_ssize_t *start, Py_ssize_t *end) {
    const Py_ssize_t *orig = f->orig->v;
    Py_ssize_t n_orig = f->orig->n;
    Py_ssize_t r0 = f->run_start->v[first], n0 = f->run_len->v[first];
    Py_ssize_t s = -1, e = -1;
    if (c->bound_start) {
        for (Py_ssize_t i = r0; i < r0 + n0 - c->run_first + 1; i++) {
            Py_ssize_t p = orig[i];
            if (i > 0 && orig[i - 1] == p) continue;
            if (p == 0 || !is_word(PyUnicode_READ(kind, data, p - 1))) { s = p; break; }
        }
    } else {
        s = orig[r0];
    }
    Py_ssize_t rl = f->run_start->v[last], nl = f->run_len->v[last];
    if (c->bound_end) {
        for (Py_ssize_t i = rl + nl - 1; i >= rl + c->run_last - 1; i--) {
            Py_ssize_t p = orig[i];
            if (i + 1 < n_orig && orig[i + 1] == p) continue;
            if (p + 1 == len || !is_word(PyUnicode_READ(kind, data, p + 1))) { e = p + 1; break; }
        }
    } else {
        e = orig[rl + nl - 1] + 1;
    }
    if (s < 0 || e < 0 || s >= e) return 0;
    *start = s;
    *end = e;
    return 1;
}

/* Making Hits. words.Hit is a slots dataclass: its __init__ (Python) only stores its eight
   arguments in their slots, and cost ~2 us a hit, a third of a plain match. When the type is
   just that (Hit's eight fields in Hit's order, each a slot member, no __post_init__), a Hit
   is allocated and its slots filled here (~0.1 us); else it is called like any type. */
typedef struct {
    PyTypeObject *type; /* the last type checked (a reference held) */
    int direct;
    Py_ssize_t offset[HIT_FIELDS];
} HitMaker;

static HitMaker maker;

static int hit_maker_for(PyObject *type) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "hit_type: a type expected");
        return -1;
    }
    if ((PyTypeObject *)type == maker.type) return 0;
    Py_CLEAR(maker.type);
    maker.direct = 0;
    PyObject *fields = PyObject_GetAttrString(type, "__dataclass_fields__"), *name, *value;
    int simple = fields && PyDict_Check(fields) && PyDict_GET_SIZE(fields) == HIT_FIELDS &&
                 !PyObject_HasAttrString(type, "__post_init__");
    Py_ssize_t pos = 0;
    for (int k = 0; simple && PyDict_Next(fields, &pos, &name, &value); k++) /* in order */
        simple = PyUnicode_Check(name) &&
                 PyUnicode_CompareWithASCIIString(name, HIT_NAMES[k]) == 0;
    Py_XDECREF(fields);
    PyErr_Clear();
    PyObject *dict = ((PyTypeObject *)type)->tp_dict;
    for (int k = 0; simple && k < HIT_FIELDS; k++) {
        PyObject *d = PyDict_GetItemString(dict, HIT_NAMES[k]);
        simple = d && Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX &&
                 !(((PyMemberDescrObject *)d)->d_member->flags & READONLY);
        if (simple) maker.offset[k] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    maker.direct = simple;
    Py_INCREF(type);
    maker.type = (PyTypeObject *)type;
    return 0;
}

#define HIT_ACTION 6 /* the field that ``check`` holds as an index into ``actions`` */

/* A new Hit over text[start:end) with the fields of a key's ``check`` tuple. */
static PyObject *make_hit(PyObject *text, Py_ssize_t start, Py_ssize_t end, PyObject *check,
                          PyObject *actions) {
    PyObject *v[HIT_FIELDS] = {PyLong_FromSsize_t(start), PyLong_FromSsize_t(end),
                               PyUnicode_Substring(text, start, end)};
    PyObject *hit = NULL;
    if (!v[0] || !v[1] || !v[2]) goto done;
    for (int k = 3; k < HIT_FIELDS; k++) v[k] = PyTuple_GET_ITEM(check, CHECK_HIT + k - 3);
    Py_ssize_t action = PyLong_AsSsize_t(v[HIT_ACTION]);
    if (action < 0 || action >= PyTuple_GET_SIZE(actions)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "key.check: action index out of range");
        goto done;
    }
    v[HIT_ACTION] = PyTuple_GET_ITEM(actions, action);
    if (!maker.direct) {
        hit = PyObject_Vectorcall((PyObject *)maker.type, v, HIT_FIELDS, NULL);
        goto done;
    }
    hit = maker.type->tp_alloc(maker.type, 0);
    if (!hit) goto done;
    for (int k = 0; k < HIT_FIELDS; k++) {
        if (k >= 3) Py_INCREF(v[k]);
        *(PyObject **)((char *)hit + maker.offset[k]) = v[k];
    }
    return hit; /* the slots own v[0..2] now */
done:
    Py_XDECREF(v[0]);
    Py_XDECREF(v[1]);
    Py_XDECREF(v[2]);
    return hit;
}

/* One raw match: where it comes from, for the order of one Aho-Corasick pass (by stop, the
   longest first; a span is one key: the automata hold different keys). */
typedef struct {
    Py_ssize_t stop, first, key, source;
} Match;

static int match_cmp(const void *x, const void *y) {
    const Match *a = x, *b = y;
    if (a->stop != b->stop) return a->stop < b->stop ? -1 : 1;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    return (a->source > b->source) - (a->source < b->source);
}

/* Every key of the match ``m`` whose checks pass, as a Hit appended to ``hits`` (or its span
   to ``allows``, for an allow-list term): what WordFilter._raw_hits keeps, in its order. */
static int keep_match(Folded *f, PyObject *text, int kind, const void *data, Py_ssize_t len,
                      const Match *m, PyObject *keys, Py_ssize_t min_end, PyObject *actions,
                      PyObject *hits, PyObject *allows) {
    static PyObject *name = NULL;
    if (!name && !(name = PyUnicode_InternFromString("check"))) return -1;
    Py_ssize_t first = m->first, last = m->stop - 1, s0, e0;
    span_of(f, first, last, &s0, &e0);
    for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(keys); j++) {
        Check c;
        if (read_check(PySequence_Fast_GET_ITEM(keys, j), name, &c) < 0) return -1;
        Py_ssize_t start = s0, end = e0;
        if (!c.allow && end <= min_end) continue;
        int ok = enough_repeats(f, first, c.repeats);
        if (ok && PyErr_Occurred()) return -1;
        if (!ok) continue;
        if ((c.bound_start || c.bound_end) &&
            !latin_bounds(f, kind, data, len, first, last, &c, &start, &end))
            continue;
        PyObject *x = c.allow ? Py_BuildValue("nn", start, end)
                              : make_hit(text, start, end, c.check, actions);
        if (!x || PyList_Append(c.allow ? allows : hits, x) < 0) { Py_XDECREF(x); return -1; }
        Py_DECREF(x);
    }
    return 0;
}

/* hits(folded, text, sources, min_end, hit_type, actions) -> (hits, allows)

   The matches over ``folded`` (of ``text``) of every automaton of ``sources`` ((automaton,
   values, walked): walk() when ``walked``, else find()), in the order one Aho-Corasick pass
   over all their keys finds them; for each, every key of values[key] whose checks pass, as a
   ``hit_type`` (words.Hit; its action the key's item of ``actions``) or, for an allow-list
   term, its (start, end) span. ``values`` and its items: tuples, as a compiled filter keeps
   them (a list is never untracked by the garbage collector), or lists. */
PyObject *hits(PyObject *self, PyObject *args) {
    PyObject *fo, *text, *sources, *hit_type, *actions, *result = NULL, *found = NULL,
             *allows = NULL;
    Py_ssize_t min_end;
    if (!PyArg_ParseTuple(args, "O!UO!nOO!", &FoldedType, &fo, &text, &PyTuple_Type, &sources,
                          &min_end, &hit_type, &PyTuple_Type, &actions))
        return NULL;
    Folded *f = (Folded *)fo;
    if (check_original(f, text) < 0 || hit_maker_for(hit_type) < 0) return NULL;
    Py_ssize_t n_sources = PyTuple_GET_SIZE(sources), n_matches = 0;
    Match *matches = NULL;
    Triples got = {0};
    int sorted = 1;
    for (Py_ssize_t src = 0; src < n_sources; src++) {
        PyObject *item = PyTuple_GET_ITEM(sources, src);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 ||
            !PyObject_TypeCheck(PyTuple_GET_ITEM(item, 0), &AutomatonType) ||
            !(PyList_Check(PyTuple_GET_ITEM(item, 1)) ||
              PyTuple_Check(PyTuple_GET_ITEM(item, 1)))) {
            PyErr_SetString(PyExc_TypeError, "sources: (automaton, values, walked) expected");
            goto done;
        }
        Automaton *a = (Automaton *)PyTuple_GET_ITEM(item, 0);
        if (a->n_patterns != (uint32_t)PySequence_Fast_GET_SIZE(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_ValueError, "sources: one value per key of the automaton");
            goto done;
        }
        got.n = 0;
        int walked = PyObject_IsTrue(PyTuple_GET_ITEM(item, 2));
        if (walked < 0 || (walked ? automaton_walk_into(a, f, text, &got)
                                  : automaton_find_into(a, f, &got)) < 0)
            goto done;
        if (!got.n) continue;
        Match *more = PyMem_Realloc(matches, (n_matches + got.n / 3) * sizeof(Match));
        if (!more) { PyErr_NoMemory(); goto done; }
        matches = more;
        for (Py_ssize_t i = 0; i < got.n; i += 3) {
            Match *m = &matches[n_matches++];
            *m = (Match){got.v[i + 2], got.v[i + 1], got.v[i], src};
            if (n_matches > 1 && match_cmp(m - 1, m) > 0) sorted = 0;
        }
    }
    if (!sorted) qsort(matches, n_matches, sizeof(Match), match_cmp);
    found = PyList_New(0);
    allows = PyList_New(0);
    if (!found || !allows) goto done;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n_matches; i++) {
        PyObject *values = PyTuple_GET_ITEM(PyTuple_GET_ITEM(sources, matches[i].source), 1);
        PyObject *keys = PySequence_Fast_GET_ITEM(values, matches[i].key);
        if (!PyList_Check(keys) && !PyTuple_Check(keys)) {
            PyErr_SetString(PyExc_TypeError, "values: a list of keys per automaton key expected");
            goto done;
        }
        if (keep_match(f, text, kind, data, len, &matches[i], keys, min_end, actions, found,
                       allows) < 0)
            goto done;
    }
    result = PyTuple_Pack(2, found, allows);
done:
    Py_XDECREF(found);
    Py_XDECREF(allows);
    PyMem_Free(got.v);
    PyMem_Free(matches);
    return result;
}
