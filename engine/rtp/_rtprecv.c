/* The RTP receive path's fast lane in C (engine/media/session.py says when it is used).
 *
 * Why: at 1,000 calls every caller packet ran ~7 Python frames (the protocol's callback, the
 * session's on_datagram, the clock, the source lock, the RFC 3550 statistics, the jitter) to
 * change a few counters, since nobody consumes a quiet call's audio. An RxLane is installed as
 * the RTP protocol's ``datagram_received`` (the event loop calls it with each datagram) and does
 * exactly what session.on_datagram's Python fast lane does for the common packet: plain v2
 * audio of the negotiated payload type, from the latched source, with the locked SSRC, in
 * sequence (RFC 3550 A.1 past probation, no big jump, no duplicate), nobody consuming caller
 * audio. It reads and writes the session's own Python objects (the SourceGuard's audio lock,
 * the RtpReceiverStats, MediaStats.rx_packets, last_rx), so there is no second copy of any
 * state to keep in step. Every other packet (RTCP, RFC 4733 events, the first packets of a
 * stream, another source or SSRC, loss past MAX_DROPOUT, reordering, an IPv6 address tuple, a
 * closed session) goes to ``slow(data, addr)``, the Python path, before anything is changed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stddef.h>

#define RTP_HEADER_BYTES 12
#define MAX_DROPOUT 3000      /* RFC 3550 A.1, as engine/rtp/stream.py */
#define RTP_SEQ_MOD 65536LL

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *session;  /* MediaSession */
    PyObject *guard;    /* its SourceGuard */
    PyObject *stats;    /* its MediaStats */
    PyObject *now;      /* () -> float: the session's clock */
    PyObject *slow;     /* (data, addr): the Python path */
    unsigned long long fast;  /* datagrams handled here */
    unsigned long long passed;  /* datagrams handed to slow */
} RxLane;

static PyObject *s_closed, *s_wants_audio, *s_payload_type, *s_rx_stats, *s_ssrc, *s_audio,
    *s_source, *s_initialised, *s_probation, *s_max_seq, *s_cycles, *s_received, *s_jitter,
    *s_transit, *s_clock_rate, *s_last_seen, *s_candidate, *s_rx_packets, *s_last_rx;

/* obj.name as a C long long; -1 with an exception set on failure */
static int get_ll(PyObject *obj, PyObject *name, long long *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int get_truth(PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* whether obj.name (an int, or None for "not yet") equals the packet's SSRC: 1 yes, 0 no or
 * None, -1 error */
static int attr_is_ssrc(PyObject *obj, PyObject *name, long long ssrc) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL)
        return -1;
    if (v == Py_None) {
        Py_DECREF(v);
        return 0;
    }
    long long n = PyLong_AsLongLong(v);
    Py_DECREF(v);
    if (n == -1 && PyErr_Occurred())
        return -1;
    return n == ssrc;
}

static int set_ll(PyObject *obj, PyObject *name, long long value) {
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL)
        return -1;
    int r = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return r;
}

/* 1: handled; 0: the Python path must decide (nothing changed); -1: error (nothing changed
 * unless the error came from a write, which only memory exhaustion can cause) */
static int fast_lane(RxLane *self, PyObject *data, PyObject *addr) {
    if (!PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) <= RTP_HEADER_BYTES)
        return 0;
    const unsigned char *h = (const unsigned char *)PyBytes_AS_STRING(data);
    if (h[0] != 0x80)
        return 0;
    int t;
    long long pt;
    if ((t = get_truth(self->session, s_closed)) != 0)
        return t < 0 ? -1 : 0;
    if ((t = get_truth(self->session, s_wants_audio)) != 0)
        return t < 0 ? -1 : 0;
    if (get_ll(self->session, s_payload_type, &pt) < 0)
        return -1;
    if ((h[1] & 0x7F) != pt)
        return 0;
    long long seq = ((long long)h[2] << 8) | h[3];
    long long ts = ((long long)h[4] << 24) | ((long long)h[5] << 16) | ((long long)h[6] << 8) | h[7];
    long long ssrc = ((long long)h[8] << 24) | ((long long)h[9] << 16) | ((long long)h[10] << 8) | h[11];

    int result = -1;
    PyObject *rx = NULL, *lock = NULL, *source = NULL, *transit_obj = NULL, *now = NULL;
    long long v, max_seq, cycles, received, clock_rate, prev_transit = 0;
    double jitter;
    rx = PyObject_GetAttr(self->session, s_rx_stats);
    if (rx == NULL)
        goto done;
    result = 0;
    if (rx == Py_None)
        goto done;
    /* the stream's statistics and the source's audio lock are both this packet's SSRC */
    if ((t = attr_is_ssrc(rx, s_ssrc, ssrc)) != 1) {
        result = t;
        goto done;
    }
    result = -1;
    if ((lock = PyObject_GetAttr(self->guard, s_audio)) == NULL)
        goto done;
    if ((t = attr_is_ssrc(lock, s_ssrc, ssrc)) != 1) {
        result = t;
        goto done;
    }
    if ((source = PyObject_GetAttr(self->guard, s_source)) == NULL)
        goto done;
    if ((t = PyObject_RichCompareBool(addr, source, Py_EQ)) != 1) {
        result = t < 0 ? -1 : 0;
        goto done;
    }
    /* the locked source: RtpReceiverStats.update_fields' common case, or the Python path */
    if ((t = get_truth(rx, s_initialised)) != 1) {
        result = t < 0 ? -1 : 0;
        goto done;
    }
    if (get_ll(rx, s_probation, &v) < 0 || get_ll(rx, s_max_seq, &max_seq) < 0
        || get_ll(rx, s_cycles, &cycles) < 0 || get_ll(rx, s_received, &received) < 0
        || get_ll(rx, s_clock_rate, &clock_rate) < 0)
        goto done;
    result = 0;
    if (v != 0 || ((seq - max_seq) & 0xFFFF) >= MAX_DROPOUT)
        goto done;  /* probation, a jump, a duplicate or a late packet: the full algorithm */
    result = -1;
    PyObject *jitter_obj = PyObject_GetAttr(rx, s_jitter);
    if (jitter_obj == NULL)
        goto done;
    jitter = PyFloat_AsDouble(jitter_obj);
    Py_DECREF(jitter_obj);
    if (jitter == -1.0 && PyErr_Occurred())
        goto done;
    if ((transit_obj = PyObject_GetAttr(rx, s_transit)) == NULL)
        goto done;
    if (transit_obj != Py_None) {
        prev_transit = PyLong_AsLongLong(transit_obj);
        if (prev_transit == -1 && PyErr_Occurred())
            goto done;
    }
    if ((now = PyObject_CallNoArgs(self->now)) == NULL)
        goto done;
    double arrival = PyFloat_AsDouble(now);
    if (arrival == -1.0 && PyErr_Occurred())
        goto done;
    double scaled = arrival * (double)clock_rate;
    result = 0;
    if (!isfinite(scaled) || fabs(scaled) > 9.0e15)
        goto done;  /* int() of it would not fit: let Python's integers do it */

    /* every check passed: apply what is_locked_audio and update_fields would */
    result = -1;
    long long rx_packets;
    if (PyObject_SetAttr(lock, s_last_seen, now) < 0
        || PyObject_SetAttr(lock, s_candidate, Py_None) < 0
        || get_ll(self->stats, s_rx_packets, &rx_packets) < 0
        || set_ll(self->stats, s_rx_packets, rx_packets + 1) < 0
        || PyObject_SetAttr(self->session, s_last_rx, now) < 0)
        goto done;
    if (seq < max_seq && set_ll(rx, s_cycles, cycles + RTP_SEQ_MOD) < 0)
        goto done;
    long long transit = ((long long)scaled - ts) & 0xFFFFFFFFLL;
    if (transit_obj != Py_None) {
        long long d = (transit - prev_transit) & 0xFFFFFFFFLL;
        if (d & 0x80000000LL)
            d -= 1LL << 32;
        jitter += ((double)(d < 0 ? -d : d) - jitter) / 16.0;
        PyObject *j = PyFloat_FromDouble(jitter);
        if (j == NULL)
            goto done;
        int r = PyObject_SetAttr(rx, s_jitter, j);
        Py_DECREF(j);
        if (r < 0)
            goto done;
    }
    if (set_ll(rx, s_max_seq, seq) < 0 || set_ll(rx, s_received, received + 1) < 0
        || set_ll(rx, s_transit, transit) < 0)
        goto done;
    result = 1;
done:
    Py_XDECREF(rx);
    Py_XDECREF(lock);
    Py_XDECREF(source);
    Py_XDECREF(transit_obj);
    Py_XDECREF(now);
    return result;
}

static PyObject *RxLane_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames) {
    RxLane *self = (RxLane *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "RxLane(data, addr)");
        return NULL;
    }
    if (self->session != NULL) {
        int r = fast_lane(self, args[0], args[1]);
        if (r == 1) {
            self->fast += 1;
            Py_RETURN_NONE;
        }
        if (r < 0)  /* an attribute of unexpected type: the Python path knows what to do */
            PyErr_Clear();
    }
    self->passed += 1;
    if (self->slow == NULL)  /* cleared by the garbage collector: nobody to hand it to */
        Py_RETURN_NONE;
    return PyObject_Vectorcall(self->slow, args, 2, NULL);
}

static PyObject *RxLane_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"session", "guard", "stats", "now", "slow", NULL};
    PyObject *session, *guard, *stats, *now, *slow;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO", names, &session, &guard, &stats, &now,
                                     &slow))
        return NULL;
    if (!PyCallable_Check(now) || !PyCallable_Check(slow)) {
        PyErr_SetString(PyExc_TypeError, "RxLane: now and slow must be callable");
        return NULL;
    }
    RxLane *self = (RxLane *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = RxLane_vectorcall;
    self->session = Py_NewRef(session);
    self->guard = Py_NewRef(guard);
    self->stats = Py_NewRef(stats);
    self->now = Py_NewRef(now);
    self->slow = Py_NewRef(slow);
    return (PyObject *)self;
}

static int RxLane_traverse(RxLane *self, visitproc visit, void *arg) {
    Py_VISIT(self->session);
    Py_VISIT(self->guard);
    Py_VISIT(self->stats);
    Py_VISIT(self->now);
    Py_VISIT(self->slow);
    return 0;
}

static void forget_session(RxLane *self) {
    Py_CLEAR(self->session);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->now);
}

static int RxLane_clear(RxLane *self) {
    forget_session(self);
    Py_CLEAR(self->slow);
    return 0;
}

static void RxLane_dealloc(RxLane *self) {
    PyObject_GC_UnTrack(self);
    RxLane_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *RxLane_detach(RxLane *self, PyObject *unused) {
    forget_session(self);  /* slow stays: a datagram the loop still delivers goes there */
    Py_RETURN_NONE;
}

static PyObject *RxLane_get_fast(RxLane *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->fast);
}

static PyObject *RxLane_get_passed(RxLane *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->passed);
}

static PyMethodDef RxLane_methods[] = {
    {"detach", (PyCFunction)RxLane_detach, METH_NOARGS,
     "Forget the session: every later datagram goes to slow (the session closed)."},
    {NULL}};

static PyGetSetDef RxLane_getset[] = {
    {"fast", (getter)RxLane_get_fast, NULL, "datagrams handled in C", NULL},
    {"passed", (getter)RxLane_get_passed, NULL, "datagrams handed to the Python path", NULL},
    {NULL}};

static PyTypeObject RxLaneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "engine.rtp._rtprecv.RxLane",
    .tp_basicsize = sizeof(RxLane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "RxLane(session, guard, stats, now, slow): a media session's receive fast lane "
              "(see the module docstring), called as datagram_received(data, addr).",
    .tp_new = RxLane_new,
    .tp_dealloc = (destructor)RxLane_dealloc,
    .tp_traverse = (traverseproc)RxLane_traverse,
    .tp_clear = (inquiry)RxLane_clear,
    .tp_vectorcall_offset = offsetof(RxLane, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_methods = RxLane_methods,
    .tp_getset = RxLane_getset,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "engine.rtp._rtprecv",
    "The RTP receive path's fast lane in C (see engine/rtp/_rtprecv.c).", -1, NULL};

#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL

PyMODINIT_FUNC PyInit__rtprecv(void) {
    INTERN(s_closed, "closed");
    INTERN(s_wants_audio, "wants_audio");
    INTERN(s_payload_type, "payload_type");
    INTERN(s_rx_stats, "rx_stats");
    INTERN(s_ssrc, "ssrc");
    INTERN(s_audio, "_audio");
    INTERN(s_source, "source");
    INTERN(s_initialised, "_initialised");
    INTERN(s_probation, "probation");
    INTERN(s_max_seq, "max_seq");
    INTERN(s_cycles, "cycles");
    INTERN(s_received, "received");
    INTERN(s_jitter, "jitter");
    INTERN(s_transit, "_transit");
    INTERN(s_clock_rate, "clock_rate");
    INTERN(s_last_seen, "last_seen");
    INTERN(s_candidate, "candidate");
    INTERN(s_rx_packets, "rx_packets");
    INTERN(s_last_rx, "last_rx");
    if (PyType_Ready(&RxLaneType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "RxLane", (PyObject *)&RxLaneType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
