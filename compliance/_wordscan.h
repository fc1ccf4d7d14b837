/* Shared by the word scanner's native parts (compliance/_wordscan.c: the tables and the
   module; _fold.c: the folding; _spelled.c: the spelled pass; _automaton.c: the automata;
   _hits.c, _untrack.c). See _wordscan.c for why they exist. Functions one part defines and
   another calls are declared here once; the rest are static in their file. */
#ifndef COMPLIANCE_WORDSCAN_H
#define COMPLIANCE_WORDSCAN_H

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
#define HOT_ROWS 1024           /* ... per trie that is only walked down (see WalkNode) */

/* ---- tables, set once by configure() (_wordscan.c) ---- */

/* T.fold's values are below 2^29; its top bits carry is_word() and is_latin_char() of the
   character, so fold() reads one table per character. */
#define FOLD_WORD (1u << 31)
#define FOLD_LATIN (1u << 30)
#define FOLD_VALUE (FOLD_LATIN - 1)

typedef struct {
    uint32_t *fold, *sound, *letters, *offset, *exp_offsets, *exp_codes;
    uint8_t *width, *word, *latin;
    uint8_t max_width; /* the most letters a character is spelled with */
    Py_ssize_t n_letters, n_exp;
    PyObject *fold_astral;
} Tables;

extern Tables T;

int ready(void);
int copy_buffer(PyObject *obj, void **dst, Py_ssize_t itemsize, Py_ssize_t want,
                Py_ssize_t *count, const char *name);

static inline int is_word(Py_UCS4 c) { return c < BMP && T.word[c]; }
static inline int is_latin_char(Py_UCS4 c) { return c < BMP && T.latin[c]; }
static inline int is_letter(uint32_t c) { return c >= 'a' && c <= 'z'; }

/* ---- IntArray: a read-only sequence of ints (indexes into the text; _fold.c) --------------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    Py_ssize_t *v;
} IntArray;

extern PyTypeObject IntArrayType;
IntArray *intarray_new(Py_ssize_t n);

/* ---- Folded: canonical text and its way back (normalize.Folded's fields; _fold.c) -------- */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;      /* canonical length */
    uint32_t *codes;   /* canonical code points */
    IntArray *orig;    /* per kept code: its index in the original text */
    IntArray *run_start, *run_len;
    PyObject *text;    /* the canonical str, made on first use */
    /* Per canonical position, word-boundary answers about the original text, asked by every
       walked trie and both spelled passes over the same folding: bits 0-1 may_start()
       (0 not asked yet, 1 no, 2 yes), bits 2-3 the spelled pass's start check. fold() fills
       both while it reads the text; a folding made otherwise (sounds()) fills them on first
       use (NULL until then). */
    uint8_t *bound;
    /* The positions where a Latin word can start (an a-z or 0-9 code with may_start()), in
       order: the walks of Latin tries jump from one to the next instead of visiting every
       position (word_starts(), made on first use; NULL until then). */
    Py_ssize_t *wstart, n_wstart;
} Folded;

#define BOUND_MAY_START 0
#define BOUND_SPELLED 2

/* The cached answer at ``shift`` of ``f``'s position ``i``, or -1 when not asked yet (or no
   cache could be made: the caller then just works it out). */
static inline int bound_get(Folded *f, Py_ssize_t i, int shift) {
    if (!f->bound && !(f->bound = PyMem_Calloc(f->n ? f->n : 1, 1))) {
        PyErr_Clear();
        return -1;
    }
    int v = (f->bound[i] >> shift) & 3;
    return v ? v - 1 : -1;
}

static inline int bound_set(Folded *f, Py_ssize_t i, int shift, int yes) {
    if (f->bound) f->bound[i] |= (uint8_t)((yes ? 2 : 1) << shift);
    return yes;
}

extern PyTypeObject FoldedType;

static inline void span_of(Folded *f, Py_ssize_t first, Py_ssize_t last, Py_ssize_t *start,
                           Py_ssize_t *end) {
    *start = f->orig->v[f->run_start->v[first]];
    *end = f->orig->v[f->run_start->v[last] + f->run_len->v[last] - 1] + 1;
}


/* ---- Automaton: Aho-Corasick over code points ---------------------------------------------- */

typedef struct {
    uint32_t first_child, n_child; /* children: consecutive ids, sorted by symbol (``sym``) */
    uint32_t fail, out;            /* failure link; the next node down it that ends a key */
    int32_t pattern;               /* the key that ends here, or -1 */
} Node;

/* A node of a trie that is only walked down (links=False), in 16 bytes: its children (ids
   first_child.., sorted by symbol), the symbol that leads to it and the key that ends at it.
   The spelled pass walks tries of 35k-270k nodes from thousands of starts; with a DFA row per
   node (144 bytes; 4.7 MB of rows per trie) every step cost two cache misses, the node's row
   number and then the row, and a third for the key bit. Here a step reads the current node
   (in cache: it was read as the child found) and its children's records, usually one cache
   line, which then hold the next node and whether a key ends there. Only the HOT_ROWS
   shallowest nodes keep rows (147 KB, read at nearly every start). */
typedef struct {
    uint32_t first_child, n_child, sym;
    int32_t pattern;
} WalkNode;

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
    /* For tries of keys that need no word boundary, walked from every start (links=False,
       bounded=False: the homophone pass): one bit per hash of two symbols that begin some key
       (every key 2+ symbols). Most starts of Chinese text begin no key, but nearly every
       syllable begins one: the second symbol rules them out without touching the trie. */
    uint8_t *prefix2;
    int bounded;        /* walk(): matches need word boundaries (may_start, may_end) */
    /* For tries walked by the spelled pass: per BMP code point, the node after its spelled
       letters from the root (0: none), made on first use: most walks start on a Chinese
       character and end inside its syllable. */
    uint32_t *first_step;
    int alnum_roots;    /* every key begins with a-z or 0-9 (walk() may jump word starts) */
    int32_t *row;       /* per node: its DFA row, or -1 */
    uint32_t *dfa;      /* rows x CLASSES next states */
    WalkNode *walk;     /* links=False: the trie as WalkNodes (NULL with links) */
    uint32_t n_hot;     /* links=False: nodes from this id on have no row */
} Automaton;

#define PREFIX4_BITS (26 * 26 * 26 * 26)
#define PREFIX2_SHIFT 12 /* 2^20 bits: 128 KiB, a few thousand pairs set */
#define PREFIX2_BITS (1u << (32 - PREFIX2_SHIFT))

static inline uint32_t two_symbols(uint32_t c0, uint32_t c1) {
    return ((c0 * 0x9E3779B1u) ^ c1) * 0x85EBCA77u >> PREFIX2_SHIFT;
}
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

extern PyTypeObject AutomatonType;


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

/* The child of ``s`` on ``c`` (0: none): walks down the trie. Without links, by a row where
   there is one (the shallowest nodes), else through the WalkNodes. */
static inline uint32_t go(const Automaton *a, uint32_t s, uint32_t c) {
    if (a->links) return child(a, s, c);
    if (s < a->n_hot) {
        int k = class_of(c);
        if (k >= 0 && a->row[s] >= 0) return a->dfa[(size_t)a->row[s] * CLASSES + k];
        if (s == 0) return c < BMP ? a->root[c] : child(a, 0, c);
    }
    const WalkNode *w = a->walk;
    uint32_t lo = w[s].first_child, hi = lo + w[s].n_child;
    if (hi - lo <= 8) { /* most nodes: one or two children, in one cache line */
        for (uint32_t t = lo; t < hi; t++) {
            if (w[t].sym == c) return t;
            if (w[t].sym > c) break;
        }
        return 0;
    }
    while (lo < hi) {
        uint32_t mid = (lo + hi) >> 1, m = w[mid].sym;
        if (m == c) return mid;
        if (m < c) lo = mid + 1; else hi = mid;
    }
    return 0;
}

/* The key that ends at node ``s`` (walked down by go()), or -1. */
static inline int32_t walk_key(const Automaton *a, uint32_t s) {
    return a->walk ? a->walk[s].pattern : a->node[s].pattern;
}

typedef struct {
    Py_ssize_t *v;
    Py_ssize_t n, cap;
} Triples;

int push(Triples *t, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c);
PyObject *to_list(Triples *t);
int check_original(Folded *f, PyObject *text);
PyObject *hits(PyObject *self, PyObject *args); /* _hits.c */
PyObject *untrack(PyObject *self, PyObject *obj); /* _untrack.c */
PyObject *ws_fold(PyObject *self, PyObject *arg); /* fold(text) -> Folded: _fold.c */
PyObject *ws_spelled(PyObject *self, PyObject *args); /* spelled(...): _spelled.c */
/* An automaton's matches over ``f`` as (key, first, stop) triples appended to ``out``: find()
   (Aho-Corasick, by stop) and walk() (from chosen starts, by start); 0, or -1 (error set). */
int automaton_find_into(Automaton *a, Folded *f, Triples *out);
int automaton_walk_into(Automaton *a, Folded *f, PyObject *text, Triples *out);


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


#endif
