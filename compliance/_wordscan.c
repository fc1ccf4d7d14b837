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
 *
 * The parts, one file each (shared declarations in _wordscan.h): this file holds the tables
 * that configure() sets (T) and the module itself; _fold.c the folding (Folded, fold(),
 * sounds()); _automaton.c the automata; _hits.c the plain and homophone passes' checks;
 * _spelled.c the spelled pass; _untrack.c untrack().
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

/* ---- module -------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(fold, sound, letters, offset, width, word, latin, exp_offsets, exp_codes, "
     "fold_astral): the tables of compliance.normalize and compliance.spelling"},
    {"fold", ws_fold, METH_O, "fold(text) -> Folded (compliance.normalize.fold)"},
    {"spelled", ws_spelled, METH_VARARGS, "spelled(folded, text, groups)"},
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
