/* The word scanner's automata: Aho-Corasick over code points, and tries walked down from
   chosen starts (see compliance/_wordscan.c and compliance/native.py). */
#include "_wordscan.h"

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
    PyMem_RawFree(a->prefix2);
    PyMem_RawFree(a->first_step);
    PyMem_RawFree(a->walk);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

/* Build: a hash trie in insertion order, renumbered breadth-first so that each node's children
   are consecutive ids sorted by symbol (binary search, no edge arrays), then failure links. */
static int automaton_init(Automaton *a, PyObject *args, PyObject *kw) {
    static char *names[] = {"keys", "links", "prefix4", "prefix2", "bounded", NULL};
    PyObject *keys;
    int links = 1, prefix4 = 0, prefix2 = 0, bounded = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|pppp", names, &PyList_Type, &keys, &links,
                                     &prefix4, &prefix2, &bounded))
        return -1;
    if (a->node) { PyErr_SetString(PyExc_RuntimeError, "Automaton: already built"); return -1; }
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
        if (prefix2 && PyUnicode_GET_LENGTH(k) < 2) {
            PyErr_SetString(PyExc_ValueError, "keys: prefix2 needs every key 2+ symbols long");
            return -1;
        }
    }
    if (total >= (1u << 31)) { PyErr_SetString(PyExc_ValueError, "keys: too many"); return -1; }
    a->n_patterns = (uint32_t)nk;
    a->links = links;
    a->bounded = bounded;
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
    if (prefix2 && !(a->prefix2 = PyMem_RawCalloc(PREFIX2_BITS / 8, 1))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nk; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        int kind = PyUnicode_KIND(k);
        const void *data = PyUnicode_DATA(k);
        Py_ssize_t len = PyUnicode_GET_LENGTH(k);
        if (prefix2) {
            uint32_t x = two_symbols(PyUnicode_READ(kind, data, 0), PyUnicode_READ(kind, data, 1));
            a->prefix2[x >> 3] |= (uint8_t)(1u << (x & 7));
        }
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
    a->alnum_roots = 1;
    for (uint32_t e = 0; e < a->node[0].n_child; e++) {
        uint32_t c = a->node[0].first_child + e;
        if (a->sym[c] < BMP) a->root[a->sym[c]] = c;
        if (class_of(a->sym[c]) < 0) a->alnum_roots = 0;
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
        if (v == 0 || (a->row[v] == 0 && rows < (links ? MAX_ROWS : HOT_ROWS))) {
            a->row[v] = (int32_t)rows++;
            a->n_hot = v + 1;
        } else {
            a->row[v] = -1;
        }
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
    if (!links) {
        if (!(a->walk = PyMem_RawMalloc(n * sizeof(WalkNode)))) { PyErr_NoMemory(); goto done; }
        for (uint32_t v = 0; v < n; v++)
            a->walk[v] = (WalkNode){a->node[v].first_child, a->node[v].n_child, a->sym[v],
                                    a->node[v].pattern};
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

int push(Triples *t, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c) {
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

PyObject *to_list(Triples *t) {
    PyObject *out = PyList_New(t->n / 3);
    for (Py_ssize_t i = 0; out && i < t->n / 3; i++) {
        PyObject *x = Py_BuildValue("nnn", t->v[3 * i], t->v[3 * i + 1], t->v[3 * i + 2]);
        if (!x) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, x);
    }
    PyMem_Free(t->v);
    return out;
}
/* Can a bounded (Latin) key start at canonical ``first``: has some character of its run a word
   boundary before it? (words.py's latin_bounds() looks for one.) Asked once per position of a
   folding (Folded.bound): a folding is only ever scanned with its own original text. */
static int may_start_asked(Folded *f, Py_ssize_t first, int kind, const void *data) {
    int known = bound_get(f, first, BOUND_MAY_START);
    if (known >= 0) return known; /* another trie asked already */
    Py_ssize_t r0 = f->run_start->v[first], n0 = f->run_len->v[first];
    for (Py_ssize_t j = 0; j < n0; j++) {
        Py_ssize_t p = f->orig->v[r0 + j];
        if (p == 0 || !is_word(PyUnicode_READ(kind, data, p - 1)))
            return bound_set(f, first, BOUND_MAY_START, 1);
    }
    return bound_set(f, first, BOUND_MAY_START, 0);
}

/* may_start_asked(), inline where the answer is known: fold() fills every position's, so a
   call per Latin letter (word_starts(), the walks) cost more than the answer. */
static inline int may_start(Folded *f, Py_ssize_t first, int kind, const void *data) {
    if (f->bound) {
        int v = (f->bound[first] >> BOUND_MAY_START) & 3;
        if (v) return v - 1;
    }
    return may_start_asked(f, first, kind, data);
}

/* The positions where a Latin word can start (Folded.wstart), made on first use: -1 (an error
   set) when there is no memory for them. */
static Py_ssize_t word_starts(Folded *f, int kind, const void *data) {
    if (f->wstart) return f->n_wstart;
    Py_ssize_t *w = PyMem_Malloc((f->n ? f->n : 1) * sizeof(Py_ssize_t)), n = 0;
    if (!w) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < f->n; i++)
        if (class_of(f->codes[i]) >= 0 && may_start(f, i, kind, data)) w[n++] = i;
    f->wstart = w;
    f->n_wstart = n;
    return n;
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

int check_original(Folded *f, PyObject *text) {
    if (!PyUnicode_Check(text)) { PyErr_SetString(PyExc_TypeError, "text: str expected"); return -1; }
    if (f->orig->n && f->orig->v[f->orig->n - 1] >= PyUnicode_GET_LENGTH(text)) {
        PyErr_SetString(PyExc_ValueError, "text: not the folded text's original");
        return -1;
    }
    return 0;
}

/* find()'s matches into ``out``: 0, or -1 with an error set. */
int automaton_find_into(Automaton *a, Folded *f, Triples *out) {
    WALK(a, f->codes, f->n, {
        if (push(out, key, start, stop) < 0) return -1;
    });
    return 0;
}

static PyObject *automaton_find(Automaton *a, PyObject *arg) {
    if (!PyObject_TypeCheck(arg, &FoldedType)) {
        PyErr_SetString(PyExc_TypeError, "folded: a Folded expected");
        return NULL;
    }
    Triples out = {0};
    if (automaton_find_into(a, (Folded *)arg, &out) < 0) {
        PyMem_Free(out.v);
        return NULL;
    }
    return to_list(&out);
}

/* Keys that need a word boundary at both ends can only start where one may be: instead of
   following failure links through every letter of Latin text (deep, dense letter tries), walk
   down the trie from each such start. Same matches as find() less those may_start()/may_end()
   rule out, in start order. Built with bounded=False, every match (prefix2 still skips the
   starts whose first two symbols begin no key). */
int automaton_walk_into(Automaton *a, Folded *f, PyObject *text, Triples *out) {
    if (!ready() || check_original(f, text) < 0) return -1;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    /* Keys that need a boundary and begin with a-z or 0-9 can only begin at a word start:
       those are visited, not every position (identical matches, in the same order). */
    int jump = a->bounded && a->alnum_roots;
    Py_ssize_t n_at = jump ? word_starts(f, kind, data) : f->n;
    if (n_at < 0) return -1;
    for (Py_ssize_t at = 0; at < n_at; at++) {
        Py_ssize_t i = jump ? f->wstart[at] : at;
        uint32_t s = go(a, 0, f->codes[i]);
        if (!s) continue;
        if (a->prefix2 && (i + 1 == f->n ||
                           !HAS_BIT(a->prefix2, two_symbols(f->codes[i], f->codes[i + 1]))))
            continue;
        if (a->bounded && !may_start(f, i, kind, data)) continue;
        if (a->prefix4) {
            long x = i + 4 <= f->n ? four_letters(f->codes + i) : -2;
            if (x == -2 || (x >= 0 && !HAS_BIT(a->prefix4, x))) continue;
        }
        for (Py_ssize_t j = i; s; s = ++j < f->n ? go(a, s, f->codes[j]) : 0) {
            if (walk_key(a, s) >= 0 && (!a->bounded || may_end(f, j, kind, data, len)) &&
                push(out, walk_key(a, s), i, j + 1) < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *automaton_walk(Automaton *a, PyObject *args) {
    PyObject *fo, *text;
    if (!PyArg_ParseTuple(args, "O!U", &FoldedType, &fo, &text)) return NULL;
    Triples out = {0};
    if (automaton_walk_into(a, (Folded *)fo, text, &out) < 0) {
        PyMem_Free(out.v);
        return NULL;
    }
    return to_list(&out);
}

static PyMethodDef automaton_methods[] = {
    {"find", (PyCFunction)automaton_find, METH_O,
     "find(folded): (key, first, stop) of every match over the canonical text, by stop and "
     "longest first (ahocorasick-rs's overlapping order)"},
    {"walk", (PyCFunction)automaton_walk, METH_VARARGS,
     "walk(folded, text): the matches of keys that need word boundaries, where they can have "
     "them (bounded=False: every match), by start"},
    {NULL},
};

static PyObject *automaton_nodes(Automaton *a, void *unused) {
    return PyLong_FromUnsignedLong(a->n_nodes);
}

static PyGetSetDef automaton_getset[] = {
    {"nodes", (getter)automaton_nodes, NULL, "trie nodes", NULL},
    {NULL},
};

PyTypeObject AutomatonType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "compliance._wordscan.Automaton",
    .tp_basicsize = sizeof(Automaton),
    .tp_dealloc = (destructor)automaton_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_init = (initproc)automaton_init,
    .tp_new = PyType_GenericNew,
    .tp_methods = automaton_methods,
    .tp_getset = automaton_getset,
    .tp_doc = "Automaton(keys, links=True, prefix4=False, prefix2=False, bounded=True): "
              "Aho-Corasick over code points (links=False: a trie only walked).",
};

