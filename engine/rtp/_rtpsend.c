/* The RTP send path's inner loop: header, payload and sendto(2) for one packet, or for every
 * quiet stream of a pacer tick in one call (engine/rtp/fastsend.py says when it is used).
 *
 * SenderBase is the state of engine.rtp.stream.RtpSender (sequence, timestamp, SSRC, marker,
 * RFC 3550 counters) as C members, so Python reads and writes them as before, plus a bound
 * socket (fd) and destination. send() builds a plain 12-byte header (V=2, no padding,
 * extension or CSRC), sends, and advances exactly as RtpSender._advance does; errors
 * (EAGAIN, ECONNREFUSED, unreachable) are counted and the packet dropped, as RTP wants:
 * a late frame is worth less than none. send_quiet() does that with each sender's silence
 * payload for a tuple of senders: the tick of every call that has nothing else to do costs
 * one syscall and no Python frame. A sender given a ``script`` (a whole prompt, already
 * encoded with a stateless codec) sends its next frame from it instead of silence, padding the
 * last frame with silence as the Python path does, until it runs out; send_quiet() then names
 * it in ``finished`` so the session takes over again on the next tick.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define RTP_HEADER_BYTES 12
#define MAX_DATAGRAM_BYTES 1500

typedef struct {
    PyObject_HEAD
    unsigned int payload_type;
    unsigned int ssrc;
    unsigned int sequence;
    unsigned int timestamp;
    unsigned int last_sent_timestamp;
    int talkspurt;
    unsigned long long packet_count;
    unsigned long long octet_count;
    /* the fast path's own: where packets go, what quiet ticks send, what happened */
    int fd;
    struct sockaddr_storage dest;
    socklen_t dest_len;
    PyObject *silence;
    PyObject *script;  /* bytes sent frame by frame before falling back to silence, or NULL */
    Py_ssize_t script_pos;  /* next byte of script to send */
    unsigned long long sent;
    unsigned long long send_errors;
    int last_errno;
} SenderBase;

static void advance(SenderBase *s, Py_ssize_t payload_bytes, unsigned int samples) {
    s->talkspurt = 0;
    s->last_sent_timestamp = s->timestamp;
    s->sequence = (s->sequence + 1) & 0xFFFF;
    s->timestamp = (unsigned int)((s->timestamp + samples) & 0xFFFFFFFFu);
    s->packet_count += 1;
    s->octet_count += (unsigned long long)payload_bytes;
}

static void put_header(unsigned char *h, unsigned int pt, int marker, unsigned int seq,
                       unsigned int ts, unsigned int ssrc) {
    h[0] = 0x80;
    h[1] = (unsigned char)((pt & 0x7F) | (marker ? 0x80 : 0));
    h[2] = (unsigned char)(seq >> 8);
    h[3] = (unsigned char)seq;
    h[4] = (unsigned char)(ts >> 24);
    h[5] = (unsigned char)(ts >> 16);
    h[6] = (unsigned char)(ts >> 8);
    h[7] = (unsigned char)ts;
    h[8] = (unsigned char)(ssrc >> 24);
    h[9] = (unsigned char)(ssrc >> 16);
    h[10] = (unsigned char)(ssrc >> 8);
    h[11] = (unsigned char)ssrc;
}

/* header + payload to the destination; 1 sent, 0 dropped (counted) */
static int transmit(SenderBase *s, const char *payload, Py_ssize_t n, unsigned int pt,
                    int marker, unsigned int ts) {
    unsigned char buf[MAX_DATAGRAM_BYTES];
    if (s->fd < 0 || s->dest_len == 0 || n > MAX_DATAGRAM_BYTES - RTP_HEADER_BYTES) {
        s->send_errors += 1;
        s->last_errno = s->fd < 0 ? EBADF : EMSGSIZE;
        return 0;
    }
    put_header(buf, pt, marker, s->sequence, ts, s->ssrc);
    memcpy(buf + RTP_HEADER_BYTES, payload, (size_t)n);
    ssize_t r = sendto(s->fd, buf, (size_t)n + RTP_HEADER_BYTES, 0,
                       (struct sockaddr *)&s->dest, s->dest_len);
    if (r < 0) {
        s->send_errors += 1;
        s->last_errno = errno;
        return 0;
    }
    s->sent += 1;
    return 1;
}

static PyObject *SenderBase_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    SenderBase *self = (SenderBase *)type->tp_alloc(type, 0);  /* zeroed */
    if (self != NULL)
        self->fd = -1;  /* 0 would be stdin */
    return (PyObject *)self;
}

static void SenderBase_dealloc(SenderBase *self) {
    Py_CLEAR(self->silence);
    Py_CLEAR(self->script);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(bind_doc, "bind(fd, host, port) -> bool: send from socket ``fd`` to a numeric "
             "IPv4/IPv6 ``host``; False (and unbound) for anything else.");

static PyObject *SenderBase_bind(SenderBase *self, PyObject *args) {
    int fd, port;
    const char *host;
    if (!PyArg_ParseTuple(args, "isi", &fd, &host, &port))
        return NULL;
    memset(&self->dest, 0, sizeof(self->dest));
    self->dest_len = 0;
    self->fd = -1;
    if (port <= 0 || port > 65535)
        Py_RETURN_FALSE;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&self->dest;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&self->dest;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        self->dest_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        self->dest_len = sizeof(*v6);
    } else {
        Py_RETURN_FALSE;
    }
    self->fd = fd;
    Py_RETURN_TRUE;
}

static PyObject *SenderBase_unbind(SenderBase *self, PyObject *unused) {
    self->fd = -1;
    self->dest_len = 0;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(send_doc, "send(payload, samples) -> bool: the next audio packet (marker on the "
             "first of a talkspurt), then advance as RtpSender._advance does. False: dropped.");

static PyObject *SenderBase_send(SenderBase *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "send(payload, samples)");
        return NULL;
    }
    unsigned long samples = PyLong_AsUnsignedLong(args[1]);
    if (samples == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int ok = transmit(self, view.buf, view.len, self->payload_type, self->talkspurt,
                      self->timestamp);
    advance(self, view.len, (unsigned int)samples);
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

PyDoc_STRVAR(send_event_doc, "send_event(payload, payload_type, marker, timestamp) -> bool: an "
             "RFC 4733 packet with its own timestamp; only the sequence number advances.");

static PyObject *SenderBase_send_event(SenderBase *self, PyObject *args) {
    Py_buffer view;
    unsigned int pt, ts;
    int marker;
    if (!PyArg_ParseTuple(args, "y*IpI", &view, &pt, &marker, &ts))
        return NULL;
    int ok = transmit(self, view.buf, view.len, pt, marker, ts);
    self->sequence = (self->sequence + 1) & 0xFFFF;
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyMethodDef SenderBase_methods[] = {
    {"bind", (PyCFunction)SenderBase_bind, METH_VARARGS, bind_doc},
    {"unbind", (PyCFunction)SenderBase_unbind, METH_NOARGS, "Forget the socket and destination."},
    {"send", (PyCFunction)(void (*)(void))SenderBase_send, METH_FASTCALL, send_doc},
    {"send_event", (PyCFunction)SenderBase_send_event, METH_VARARGS, send_event_doc},
    {NULL}};

static PyMemberDef SenderBase_members[] = {
    {"payload_type", T_UINT, offsetof(SenderBase, payload_type), 0, NULL},
    {"ssrc", T_UINT, offsetof(SenderBase, ssrc), 0, NULL},
    {"sequence", T_UINT, offsetof(SenderBase, sequence), 0, NULL},
    {"timestamp", T_UINT, offsetof(SenderBase, timestamp), 0, NULL},
    {"last_sent_timestamp", T_UINT, offsetof(SenderBase, last_sent_timestamp), 0, NULL},
    {"_talkspurt", T_BOOL, offsetof(SenderBase, talkspurt), 0, NULL},
    {"packet_count", T_ULONGLONG, offsetof(SenderBase, packet_count), 0, NULL},
    {"octet_count", T_ULONGLONG, offsetof(SenderBase, octet_count), 0, NULL},
    {"silence", T_OBJECT, offsetof(SenderBase, silence), 0,
     "payload send_quiet() sends (bytes)"},
    {"script", T_OBJECT, offsetof(SenderBase, script), 0,
     "encoded prompt send_quiet() sends before silence (bytes or None)"},
    {"script_pos", T_PYSSIZET, offsetof(SenderBase, script_pos), 0,
     "offset of the script's next frame"},
    {"sent", T_ULONGLONG, offsetof(SenderBase, sent), 0, "datagrams handed to the kernel"},
    {"send_errors", T_ULONGLONG, offsetof(SenderBase, send_errors), 0, "datagrams dropped"},
    {"last_errno", T_INT, offsetof(SenderBase, last_errno), READONLY, NULL},
    {"fd", T_INT, offsetof(SenderBase, fd), READONLY, "bound socket, -1 when unbound"},
    {NULL}};

static PyTypeObject SenderBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "engine.rtp._rtpsend.SenderBase",
    .tp_basicsize = sizeof(SenderBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "RtpSender's counters in C, and its socket (see the module docstring).",
    .tp_new = SenderBase_new,
    .tp_dealloc = (destructor)SenderBase_dealloc,
    .tp_methods = SenderBase_methods,
    .tp_members = SenderBase_members,
};

PyDoc_STRVAR(send_quiet_doc, "send_quiet(senders, samples, finished=None) -> int: each "
             "sender's next script frame, or its ``silence``, as its next audio packet; returns "
             "how many went out. The index of each sender whose script ran out with this packet "
             "is appended to the list ``finished``.");

static PyObject *send_quiet(PyObject *module, PyObject *args) {
    PyObject *seq, *finished = Py_None;
    unsigned int samples;
    unsigned char frame[MAX_DATAGRAM_BYTES];
    if (!PyArg_ParseTuple(args, "O!I|O", &PyTuple_Type, &seq, &samples, &finished))
        return NULL;
    if (finished != Py_None && !PyList_Check(finished)) {
        PyErr_SetString(PyExc_TypeError, "send_quiet: finished must be a list or None");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq), ok = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyTuple_GET_ITEM(seq, i);
        if (!PyObject_TypeCheck(o, &SenderBaseType)) {
            PyErr_Format(PyExc_TypeError, "send_quiet: item %zd is not a SenderBase", i);
            return NULL;
        }
        SenderBase *s = (SenderBase *)o;
        if (s->silence == NULL || !PyBytes_Check(s->silence)) {
            PyErr_Format(PyExc_TypeError, "send_quiet: sender %zd has no silence bytes", i);
            return NULL;
        }
        Py_ssize_t len = PyBytes_GET_SIZE(s->silence);
        const char *payload = PyBytes_AS_STRING(s->silence);
        int script_ends = 0;
        if (s->script != NULL && PyBytes_Check(s->script) && len <= MAX_DATAGRAM_BYTES) {
            Py_ssize_t total = PyBytes_GET_SIZE(s->script), pos = s->script_pos;
            if (pos >= 0 && pos < total) {
                Py_ssize_t take = total - pos < len ? total - pos : len;
                memcpy(frame, PyBytes_AS_STRING(s->script) + pos, (size_t)take);
                memcpy(frame + take, payload + take, (size_t)(len - take));  /* silence pad */
                payload = (const char *)frame;
                s->script_pos = pos + len;
                script_ends = s->script_pos >= total;
            }
        }
        ok += transmit(s, payload, len, s->payload_type, s->talkspurt, s->timestamp);
        advance(s, len, samples);
        if (script_ends && finished != Py_None) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(finished, index) < 0) {
                Py_XDECREF(index);
                return NULL;
            }
            Py_DECREF(index);
        }
    }
    return PyLong_FromSsize_t(ok);
}

static PyMethodDef module_methods[] = {
    {"send_quiet", send_quiet, METH_VARARGS, send_quiet_doc},
    {NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "engine.rtp._rtpsend",
    "The RTP send path's inner loop in C (see engine/rtp/_rtpsend.c).", -1, module_methods};

PyMODINIT_FUNC PyInit__rtpsend(void) {
    if (PyType_Ready(&SenderBaseType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SenderBaseType);
    if (PyModule_AddObject(m, "SenderBase", (PyObject *)&SenderBaseType) < 0) {
        Py_DECREF(&SenderBaseType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
