/* The per-match checks of the word scanner's plain and homophone passes, native (see
 * compliance/words.py, _Automaton and WordFilter._raw_hits).
 *
 * A 4 MB mixed text gives ~7,000 raw matches, and each one in Python cost ~4 us: its span read
 * element by element through the folding's arrays (an int object each), the run-length check
 * and the Latin word-boundary search in Python loops. Here one call does them for every
 * match and hands back finished spans; Python only makes the Hit objects. The checks are
 * compliance/scantext.py's MatchArrays (span, enough_repeats, latin_bounds) word for word:
 * the Python paths keep using those, and tests/unit/test_compliance_native.py compares both.
 */
#include "_wordscan.h"

/* A key's checks: the tuple _Key.check (words.py), read once per key of a match. */
typedef struct {
    int allow, bound_start, bound_end;
    PyObject *repeats; /* tuple of ints, or None: any run length will do */
    Py_ssize_t run_first, run_last;
} Check;

static int read_check(PyObject *key, PyObject *name, Check *c) {
    PyObject *t = PyObject_GetAttr(key, name);
    if (!t) return -1;
    int ok = PyTuple_Check(t) && PyTuple_GET_SIZE(t) == 6;
    if (ok) {
        c->allow = PyObject_IsTrue(PyTuple_GET_ITEM(t, 0));
        c->repeats = PyTuple_GET_ITEM(t, 1);
        c->bound_start = PyObject_IsTrue(PyTuple_GET_ITEM(t, 2));
        c->bound_end = PyObject_IsTrue(PyTuple_GET_ITEM(t, 3));
        c->run_first = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 4));
        c->run_last = PyLong_AsSsize_t(PyTuple_GET_ITEM(t, 5));
        ok = c->repeats == Py_None || PyTuple_Check(c->repeats);
    }
    Py_DECREF(t); /* the key holds the tuple, and the tuple its items */
    if (!ok) {
        PyErr_SetString(PyExc_TypeError, "key.check: (allow, repeats, bound_start, bound_end, "
                        "first run, last run) expected");
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

/* checked(folded, text, matches, min_end) -> [(start, end, key)]

   For automaton ``matches`` (stop, first, key index, values) over ``folded`` (of ``text``),
   every key of values[index] whose checks pass, with its span in ``text``: what
   WordFilter._raw_hits keeps, in the same order. */
PyObject *checked(PyObject *self, PyObject *args) {
    PyObject *fo, *text, *matches;
    Py_ssize_t min_end;
    static PyObject *name = NULL;
    if (!PyArg_ParseTuple(args, "O!UO!n", &FoldedType, &fo, &text, &PyList_Type, &matches,
                          &min_end))
        return NULL;
    if (!name && !(name = PyUnicode_InternFromString("check"))) return NULL;
    Folded *f = (Folded *)fo;
    if (check_original(f, text) < 0) return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(matches); i++) {
        PyObject *m = PyList_GET_ITEM(matches, i);
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 4 ||
            !PyList_Check(PyTuple_GET_ITEM(m, 3))) {
            PyErr_SetString(PyExc_TypeError, "matches: (stop, first, index, values) expected");
            goto fail;
        }
        Py_ssize_t stop = PyLong_AsSsize_t(PyTuple_GET_ITEM(m, 0));
        Py_ssize_t first = PyLong_AsSsize_t(PyTuple_GET_ITEM(m, 1));
        Py_ssize_t idx = PyLong_AsSsize_t(PyTuple_GET_ITEM(m, 2));
        PyObject *values = PyTuple_GET_ITEM(m, 3);
        if (PyErr_Occurred()) goto fail;
        Py_ssize_t last = stop - 1;
        if (first < 0 || last < first || last >= f->n || idx < 0 ||
            idx >= PyList_GET_SIZE(values) || !PyList_Check(PyList_GET_ITEM(values, idx))) {
            PyErr_SetString(PyExc_ValueError, "matches: not of this folding and values");
            goto fail;
        }
        PyObject *keys = PyList_GET_ITEM(values, idx);
        Py_ssize_t s0, e0;
        span_of(f, first, last, &s0, &e0);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(keys); j++) {
            PyObject *k = PyList_GET_ITEM(keys, j);
            Check c;
            if (read_check(k, name, &c) < 0) goto fail;
            Py_ssize_t start = s0, end = e0;
            if (!c.allow && end <= min_end) continue;
            int ok = enough_repeats(f, first, c.repeats);
            if (ok && PyErr_Occurred()) goto fail;
            if (!ok) continue;
            if ((c.bound_start || c.bound_end) &&
                !latin_bounds(f, kind, data, len, first, last, &c, &start, &end))
                continue;
            PyObject *a = PyLong_FromSsize_t(start), *b = PyLong_FromSsize_t(end);
            PyObject *x = a && b ? PyTuple_Pack(3, a, b, k) : NULL;
            Py_XDECREF(a);
            Py_XDECREF(b);
            if (!x || PyList_Append(out, x) < 0) { Py_XDECREF(x); goto fail; }
            Py_DECREF(x);
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}
