/* untrack(obj): a compiled word filter's tables leave the cyclic garbage collector at once.
 *
 * A filter keeps its per-key tables as plain tuples of str, int, bool and None, nested up to
 * five deep (compliance/words.py: a unit's spellings in a unit, in a term's units, in a key's
 * entry, in a key's entries, in an automaton's values). The collector untracks such a tuple
 * when a collection finds all its items untracked, but it visits a generation in no set
 * order, so an outer tuple seen before its items stays tracked until a later collection: a
 * 100k-term filter came out of its compile with ~75k of them still tracked, which the first
 * full collections walked. This does, depth first, what the collector does to each tuple
 * (CPython's _PyTuple_MaybeUntrack, with the public API), so the tables are untracked when
 * the compile returns. Without the extension the collector gets there by itself.
 */
#include "_wordscan.h"

#define MAX_DEPTH 16 /* deeper than any table; beyond it a tuple is left to the collector */

/* Whether the collector may ever need to look at ``o``: what _PyObject_GC_MAY_BE_TRACKED
   says (a GC object other than a tuple may become tracked again, an untracked tuple not). */
static int may_be_tracked(PyObject *o) {
    return PyObject_IS_GC(o) && (!PyTuple_CheckExact(o) || PyObject_GC_IsTracked(o));
}

/* Untracks ``o`` (a tuple) and the tuples in it whose items are all untracked or atomic;
   the number of tuples untracked. */
static Py_ssize_t settle(PyObject *o, int depth) {
    if (!PyTuple_CheckExact(o) || !PyObject_GC_IsTracked(o) || depth > MAX_DEPTH) return 0;
    Py_ssize_t n = 0;
    int atomic = 1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); i++) {
        PyObject *item = PyTuple_GET_ITEM(o, i);
        n += settle(item, depth + 1);
        if (may_be_tracked(item)) atomic = 0;
    }
    if (atomic) {
        PyObject_GC_UnTrack(o);
        n++;
    }
    return n;
}

/* untrack(obj) -> int: the tuples untracked in ``obj`` (a tuple; anything else: 0). */
PyObject *untrack(PyObject *self, PyObject *obj) {
    return PyLong_FromSsize_t(settle(obj, 0));
}
