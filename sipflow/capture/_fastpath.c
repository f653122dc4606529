/* The capture layer's compiled fast path: runs of RTP/RTCP frames counted, and measured, without
 * Python calls.
 *
 * Most frames of a VoIP capture are media. ``Decoder.feed`` rejects one on its fast path with a
 * handful of Python operations (about a microsecond); these functions walk a run of consecutive
 * records in the read buffer that take the very same fast path (Ethernet, IPv4 without options
 * or fragmentation, UDP between unprivileged ports other than DNS's, a first payload octet of
 * RTP version 2 and a payload type in ``detect.RTP_KIND``) and return how far they got, with the
 * counts. Any other record ends the run: the Python walker and decoder take it from there, with
 * their checks, warnings and error messages. Optional: without it (no C compiler at install,
 * or SIPFLOW_PURE_PYTHON=1) every frame goes through ``Decoder.feed``, with the same results.
 *
 * With a ``StreamTable`` (the media analysis, ``sipflow.media.collector``), an RTP packet of a
 * stream the table holds is measured here by the stream's ``Meter``: the C twin of
 * ``sipflow.media.rtp.StreamMeter``, the same arithmetic in the same order, so that the figures
 * are those of the Python reference. A packet of a stream the table does not hold yet, a
 * telephone event (RFC 4733: DTMF is decoded in Python), and RTCP end the run: Python takes
 * them, and registers a new stream's meter in the table.
 *
 * pcap: record header of 16 octets (ts_sec, ts_frac, incl_len, orig_len), libpcap file format.
 * pcapng: Enhanced Packet Blocks (pcapng §4.3) of the interfaces marked Ethernet.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* records.MAX_RECORD and records.MAX_BLOCK */
#define MAX_RECORD 262144u
#define MAX_BLOCK (16u << 20)
/* 2**53: the integers a double holds exactly go up to it */
#define EXACT 9007199254740992.0

enum { KIND_NONE = 0, KIND_RTP = 1, KIND_RTCP = 2 };

static unsigned char rtp_kind[256];

static void init_kinds(void) {
    for (int b = 0; b < 256; b++) {
        if (b >= 192 && b <= 223)
            rtp_kind[b] = KIND_RTCP;
        else if ((b & 0x7F) <= 34 || (b & 0x7F) >= 96)
            rtp_kind[b] = KIND_RTP;
        else
            rtp_kind[b] = KIND_NONE;
    }
}

static inline uint32_t u32(const unsigned char *p, int big) {
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static inline int is_dns(unsigned port) { return port == 53 || port == 5353 || port == 5355; }

/* The kind of an Ethernet frame ``f`` of ``len`` captured octets on Decoder.feed's fast path,
 * KIND_NONE when it is not on it (the same tests, in the same terms). */
static inline int fast_kind(const unsigned char *f, uint32_t len) {
    if (len < 54)
        return KIND_NONE;
    unsigned b0 = f[42];
    if (b0 < 0x80 || b0 >= 0xC0)
        return KIND_NONE;
    if (f[12] != 0x08 || f[13] != 0x00 || f[14] != 0x45 || f[23] != 17)
        return KIND_NONE;
    unsigned total = (unsigned)f[16] << 8 | f[17];
    if (total < 40 || (f[20] & 0x3F) || f[21])
        return KIND_NONE;
    unsigned sport = (unsigned)f[34] << 8 | f[35];
    unsigned dport = (unsigned)f[36] << 8 | f[37];
    if (sport < 1024 || dport < 1024 || is_dns(sport) || is_dns(dport))
        return KIND_NONE;
    return rtp_kind[f[43]];
}

/* --- Meter: sipflow.media.rtp.StreamMeter in C ------------------------------------------ */

typedef struct {
    PyObject_HEAD
    long long packets;
    unsigned char seen[128];
    unsigned char order[128]; /* payload types in order of first appearance */
    int npts;
    long start_seq, stop_seq, last_seq;
    long long cycles;
    int under;
    long long sequence_errors;
    int pt;
    long clock_rate; /* 0: none yet */
    uint32_t first_ts;
    double time, last_nominal, delta, jitter;
    double min_delta, min_jitter, max_delta, max_jitter, mean_delta, mean_jitter;
    long long regular;
    long rates[128];          /* clock rate per payload type, 0 where jitter is not computed */
    unsigned char events[128]; /* telephone-event payload types (RFC 4733) */
    unsigned char cn[128];     /* comfort noise payload types (RFC 3389) */
    Py_ssize_t last_frame;
    double last_time;
} Meter;

/* StreamMeter.packet, step by step (see sipflow/media/rtp.py for the why of each step). */
static void meter_packet(Meter *m, int marker, int pt, long seq, uint32_t ts, double arrival) {
    if (!m->seen[pt]) {
        m->seen[pt] = 1;
        m->order[m->npts++] = (unsigned char)pt;
    }
    if (!m->packets) {
        m->packets = 1;
        m->start_seq = m->stop_seq = m->last_seq = seq;
        m->first_ts = ts;
        m->time = arrival;
        m->pt = pt;
        return;
    }
    int in_time = (uint32_t)(ts - m->first_ts) < 0x80000000u;
    if (in_time && !m->under && (seq < m->start_seq || (seq == 0 && m->stop_seq == 65535))) {
        m->cycles++;
        m->under = 1;
    } else if (in_time && m->under && seq > m->start_seq) {
        m->under = 0;
    }
    long last = m->last_seq;
    if (in_time && (seq == last + 1 || (last == 65535 && seq == 0))) {
        m->last_seq = seq;
    } else if (in_time && (last + 1 < seq || last - seq > 0xFF00)) {
        m->last_seq = seq;
        m->sequence_errors++;
    } else if (last + 1 > seq) {
        m->sequence_errors++;
    }
    int previous_pt = m->pt;
    m->pt = pt;
    long rate = m->rates[pt];
    if (in_time) {
        if (rate) {
            m->clock_rate = rate;
            double nominal = (double)(uint32_t)(ts - m->first_ts) / ((double)rate / 1000.0);
            double expected = m->time + nominal;
            expected = expected - m->last_nominal;
            double diff = fabs(arrival - expected);
            m->jitter += (diff - m->jitter) / 16.0;
            m->last_nominal = nominal;
        }
        m->delta = arrival - m->time;
    }
    if (in_time && !marker && !m->cn[pt] && !m->cn[previous_pt]) {
        double delta = m->delta;
        if (delta > m->max_delta)
            m->max_delta = delta;
        if (m->min_delta < 0 || delta < m->min_delta)
            m->min_delta = delta;
        double n = (double)m->packets;
        m->mean_delta += (delta - m->mean_delta) / n;
        if (rate) {
            double jitter = m->jitter;
            if (jitter > m->max_jitter)
                m->max_jitter = jitter;
            if (m->min_jitter < 0 || jitter < m->min_jitter)
                m->min_jitter = jitter;
            m->mean_jitter += (jitter - m->mean_jitter) / n;
        }
        m->regular++;
    }
    if (in_time)
        m->time = arrival;
    m->stop_seq = seq;
    m->packets++;
}

static int mask_arg(PyObject *obj, unsigned char out[128], const char *what) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return -1;
    if (view.len != 128) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s: 128 octets expected", what);
        return -1;
    }
    memcpy(out, view.buf, 128);
    PyBuffer_Release(&view);
    return 0;
}

/* Meter(rates, events, comfort_noise): ``rates``, 128 clock rates (one per payload type, 0 where
 * no jitter is computed); ``events`` and ``comfort_noise``, 128 octets each, non-zero for the
 * telephone-event and comfort-noise payload types. */
static int Meter_init(Meter *m, PyObject *args, PyObject *kwds) {
    PyObject *rates, *events, *cn;
    static char *kwlist[] = {"rates", "events", "comfort_noise", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO", kwlist, &rates, &events, &cn))
        return -1;
    PyObject *seq = PySequence_Fast(rates, "rates: a sequence of 128 integers expected");
    if (seq == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 128) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "rates: 128 integers expected");
        return -1;
    }
    for (int i = 0; i < 128; i++) {
        long r = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (r == -1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        m->rates[i] = r > 0 ? r : 0;
    }
    Py_DECREF(seq);
    if (mask_arg(events, m->events, "events") < 0 || mask_arg(cn, m->cn, "comfort_noise") < 0)
        return -1;
    m->packets = 0;
    memset(m->seen, 0, sizeof m->seen);
    m->npts = 0;
    m->start_seq = m->stop_seq = m->last_seq = 0;
    m->cycles = 0;
    m->under = 0;
    m->sequence_errors = 0;
    m->pt = -1;
    m->clock_rate = 0;
    m->first_ts = 0;
    m->time = m->last_nominal = m->delta = m->jitter = 0.0;
    m->min_delta = m->min_jitter = -1.0;
    m->max_delta = m->max_jitter = 0.0;
    m->mean_delta = m->mean_jitter = 0.0;
    m->regular = 0;
    m->last_frame = 0;
    m->last_time = 0.0;
    return 0;
}

/* packet(header, arrival_ms): ``header`` an RtpHeader (marker, payload_type, sequence,
 * timestamp, ssrc). */
static PyObject *Meter_packet(Meter *m, PyObject *args) {
    int marker, pt;
    unsigned long seq, ts, ssrc;
    double arrival;
    if (!PyArg_ParseTuple(args, "(pikkk)d", &marker, &pt, &seq, &ts, &ssrc, &arrival))
        return NULL;
    if (pt < 0 || pt > 127 || seq > 65535 || ts > 0xFFFFFFFFul) {
        PyErr_SetString(PyExc_ValueError, "not an RTP header");
        return NULL;
    }
    meter_packet(m, marker, pt, (long)seq, (uint32_t)ts, arrival);
    Py_RETURN_NONE;
}

static PyObject *opt_float(int present, double value) {
    if (!present)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(value);
}

/* figures() -> dict of StreamFigures' fields. */
static PyObject *Meter_figures(Meter *m, PyObject *unused) {
    long long expected = m->packets ? m->stop_seq + 65536 * m->cycles - m->start_seq + 1 : 0;
    int deltas = m->regular > 0;
    int jitter = deltas && m->clock_rate && m->min_jitter >= 0;
    PyObject *pts = PyTuple_New(m->npts);
    if (pts == NULL)
        return NULL;
    for (int i = 0; i < m->npts; i++) {
        PyObject *v = PyLong_FromLong(m->order[i]);
        if (v == NULL) {
            Py_DECREF(pts);
            return NULL;
        }
        PyTuple_SET_ITEM(pts, i, v);
    }
    PyObject *rate;
    if (m->clock_rate)
        rate = PyLong_FromLong(m->clock_rate);
    else
        rate = Py_NewRef(Py_None);
    return Py_BuildValue(
        "{s:L,s:L,s:L,s:L,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N}", "packets", m->packets, "expected", expected,
        "lost", expected - m->packets, "sequence_errors", m->sequence_errors, "min_delta_ms",
        opt_float(deltas, m->min_delta), "mean_delta_ms", opt_float(deltas, m->mean_delta), "max_delta_ms",
        opt_float(deltas, m->max_delta), "min_jitter_ms", opt_float(jitter, m->min_jitter), "mean_jitter_ms",
        opt_float(jitter, m->mean_jitter), "max_jitter_ms", opt_float(jitter, m->max_jitter), "clock_rate", rate,
        "payload_types", pts);
}

static PyMemberDef Meter_members[] = {
    {"last_frame", T_PYSSIZET, offsetof(Meter, last_frame), 0, "Frame of the stream's last packet."},
    {"last_time", T_DOUBLE, offsetof(Meter, last_time), 0, "Capture time of the stream's last packet."},
    {"packets", T_LONGLONG, offsetof(Meter, packets), READONLY, "Packets measured."},
    {NULL},
};

static PyMethodDef Meter_methods[] = {
    {"packet", (PyCFunction)Meter_packet, METH_VARARGS, "One packet of the stream."},
    {"figures", (PyCFunction)Meter_figures, METH_NOARGS, "What was measured, as StreamFigures' fields."},
    {NULL},
};

static PyTypeObject MeterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sipflow.capture._fastpath.Meter",
    .tp_basicsize = sizeof(Meter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The measurements of one RTP stream (sipflow.media.rtp.StreamMeter in C).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Meter_init,
    .tp_methods = Meter_methods,
    .tp_members = Meter_members,
};

/* --- StreamTable: (src, sport, dst, dport, ssrc) of IPv4 streams -> Meter -------------------- */

#define KEY_LEN 16

typedef struct {
    unsigned char key[KEY_LEN];
    Meter *meter; /* NULL: empty slot */
} Slot;

typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t cap; /* a power of two */
    size_t used;
    double origin;
    int has_origin;
} Table;

static inline uint64_t key_hash(const unsigned char *k) {
    uint64_t a, b;
    memcpy(&a, k, 8);
    memcpy(&b, k + 8, 8);
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 31;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return h;
}

static Slot *table_find(const Table *t, const unsigned char *key) {
    size_t mask = t->cap - 1;
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
        Slot *s = &t->slots[i];
        if (s->meter == NULL || memcmp(s->key, key, KEY_LEN) == 0)
            return s;
    }
}

static int table_grow(Table *t) {
    size_t cap = t->cap ? t->cap * 2 : 1024;
    Slot *old = t->slots;
    size_t old_cap = t->cap;
    t->slots = PyMem_Calloc(cap, sizeof(Slot));
    if (t->slots == NULL) {
        t->slots = old;
        PyErr_NoMemory();
        return -1;
    }
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].meter != NULL)
            *table_find(t, old[i].key) = old[i];
    }
    PyMem_Free(old);
    return 0;
}

static int Table_init(Table *t, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "", kwlist))
        return -1;
    return 0;
}

static void Table_dealloc(Table *t) {
    for (size_t i = 0; i < t->cap; i++)
        Py_XDECREF(t->slots[i].meter);
    PyMem_Free(t->slots);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

/* add(key, meter): ``key`` the 16 octets source address, source port, destination address,
 * destination port and SSRC, in network order. */
static PyObject *Table_add(Table *t, PyObject *args) {
    Py_buffer key;
    PyObject *meter;
    if (!PyArg_ParseTuple(args, "y*O!", &key, &MeterType, &meter))
        return NULL;
    if (key.len != KEY_LEN) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "a stream key is 16 octets");
        return NULL;
    }
    if ((t->used + 1) * 2 > t->cap && table_grow(t) < 0) {
        PyBuffer_Release(&key);
        return NULL;
    }
    Slot *s = table_find(t, key.buf);
    if (s->meter == NULL) {
        memcpy(s->key, key.buf, KEY_LEN);
        t->used++;
    } else {
        Py_DECREF(s->meter);
    }
    s->meter = (Meter *)Py_NewRef(meter);
    PyBuffer_Release(&key);
    Py_RETURN_NONE;
}

static PyObject *Table_get_origin(Table *t, void *closure) {
    return opt_float(t->has_origin, t->origin);
}

static int Table_set_origin(Table *t, PyObject *value, void *closure) {
    if (value == NULL || value == Py_None) {
        t->has_origin = 0;
        return 0;
    }
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    t->origin = v;
    t->has_origin = 1;
    return 0;
}

static Py_ssize_t Table_len(Table *t) { return (Py_ssize_t)t->used; }

static PyGetSetDef Table_getset[] = {
    {"origin", (getter)Table_get_origin, (setter)Table_set_origin,
     "Capture time (s) that arrival times count from (the first RTP packet's); None: not yet.", NULL},
    {NULL},
};

static PyMethodDef Table_methods[] = {
    {"add", (PyCFunction)Table_add, METH_VARARGS, "Measure the stream of this key with this meter."},
    {NULL},
};

static PySequenceMethods Table_sequence = {.sq_length = (lenfunc)Table_len};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sipflow.capture._fastpath.StreamTable",
    .tp_basicsize = sizeof(Table),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The IPv4 RTP streams whose packets the fast path measures.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Table_init,
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_methods = Table_methods,
    .tp_getset = Table_getset,
    .tp_as_sequence = &Table_sequence,
};

/* An RTP frame ``f`` of ``len`` captured octets (fast_kind said KIND_RTP) measured with the
 * table: 1 when taken (measured, or not an RTP header that a stream could count), 0 when
 * Python must take it (a stream the table does not hold, a telephone event). */
static inline int measure(Table *t, const unsigned char *f, uint32_t len, Py_ssize_t frame, double ts) {
    /* Decoder._fast_datagram's payload bounds: the IP, then the UDP length, then the capture. */
    Py_ssize_t ip_end = 14 + ((Py_ssize_t)f[16] << 8 | f[17]);
    Py_ssize_t ulen = (Py_ssize_t)f[38] << 8 | f[39];
    if (ulen >= 8 && 34 + ulen <= ip_end)
        ip_end = 34 + ulen;
    Py_ssize_t end = ip_end < (Py_ssize_t)len ? ip_end : (Py_ssize_t)len;
    const unsigned char *r = f + 42;
    /* rtp.parse_header: the fixed header and the CSRC list (the version is 2 already). */
    if (end - 42 < 12 || end - 42 < 12 + 4 * (r[0] & 0x0F))
        return 1;
    if (t->cap == 0 || !t->has_origin)
        return 0;
    unsigned char key[KEY_LEN];
    memcpy(key, f + 26, 4);     /* source address */
    memcpy(key + 4, f + 34, 2); /* source port */
    memcpy(key + 6, f + 30, 4); /* destination address */
    memcpy(key + 10, f + 36, 2); /* destination port */
    memcpy(key + 12, r + 8, 4); /* SSRC */
    Slot *s = table_find(t, key);
    Meter *m = s->meter;
    int pt = r[1] & 0x7F;
    if (m == NULL || m->events[pt])
        return 0;
    meter_packet(m, r[1] >> 7, pt, (long)r[2] << 8 | r[3], u32(r + 4, 1), (ts - t->origin) * 1000.0);
    m->last_frame = frame;
    m->last_time = ts;
    return 1;
}

static int table_arg(PyObject *obj, Table **out) {
    if (obj == Py_None) {
        *out = NULL;
        return 1;
    }
    if (!PyObject_TypeCheck(obj, &TableType)) {
        PyErr_SetString(PyExc_TypeError, "a StreamTable or None expected");
        return 0;
    }
    *out = (Table *)obj;
    return 1;
}

/* --- SipMaker: the SIP datagrams of the fast path, made into SipPayload here ------------------
 *
 * A record that Decoder.feed would decode as Ethernet II, IPv4 (not a fragment, its total length
 * set and within the capture), UDP (its length within the IP datagram) and a payload that
 * detect.is_sip_start accepts becomes the SipPayload the Python decoder makes of it: the same
 * fields, the endpoints shared through a bounded cache. Everything else (VLAN tags, IPv6,
 * fragments, cut datagrams, HEP, TCP...) ends the run and is Python's. */

typedef struct {
    PyObject_HEAD
    PyTypeObject *payload_type;
    PyObject *slots[11]; /* SipPayload's member descriptors, in restore_sip_payload's order */
    PyTypeObject *endpoint_type;
    PyObject *udp;       /* Transport.UDP */
    PyObject *file;
    PyObject *endpoints; /* (address << 16 | port) -> Endpoint */
    PyObject *hosts;     /* address -> dotted quad */
    PyObject *packets;   /* made since the last take() */
} SipMaker;

#define MAKER_CACHE_MAX 65536

static const char *const payload_names[11] = {"frame", "frames", "timestamp", "src", "dst", "transport",
                                              "payload", "truncated", "file", "interface", "ip_id"};

static int SipMaker_init(SipMaker *m, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"payload_type", "endpoint_type", "udp", "file", NULL};
    PyObject *payload_type, *endpoint_type, *udp, *file;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OU", kwlist, &PyType_Type, &payload_type, &PyType_Type,
                                     &endpoint_type, &udp, &file))
        return -1;
    if (!PyType_IsSubtype((PyTypeObject *)endpoint_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "endpoint_type must be a tuple type");
        return -1;
    }
    for (int i = 0; i < 11; i++) {
        PyObject *d = PyObject_GetAttrString(payload_type, payload_names[i]);
        if (d == NULL)
            return -1;
        if (Py_TYPE(d)->tp_descr_set == NULL) {
            Py_DECREF(d);
            PyErr_Format(PyExc_TypeError, "%s is not a slot", payload_names[i]);
            return -1;
        }
        Py_XSETREF(m->slots[i], d);
    }
    Py_XSETREF(m->payload_type, (PyTypeObject *)Py_NewRef(payload_type));
    Py_XSETREF(m->endpoint_type, (PyTypeObject *)Py_NewRef(endpoint_type));
    Py_XSETREF(m->udp, Py_NewRef(udp));
    Py_XSETREF(m->file, Py_NewRef(file));
    Py_XSETREF(m->endpoints, PyDict_New());
    Py_XSETREF(m->hosts, PyDict_New());
    Py_XSETREF(m->packets, PyList_New(0));
    if (m->endpoints == NULL || m->hosts == NULL || m->packets == NULL)
        return -1;
    return 0;
}

static void SipMaker_dealloc(SipMaker *m) {
    Py_XDECREF(m->payload_type);
    for (int i = 0; i < 11; i++)
        Py_XDECREF(m->slots[i]);
    Py_XDECREF(m->endpoint_type);
    Py_XDECREF(m->udp);
    Py_XDECREF(m->file);
    Py_XDECREF(m->endpoints);
    Py_XDECREF(m->hosts);
    Py_XDECREF(m->packets);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyObject *SipMaker_take(SipMaker *m, PyObject *unused) {
    PyObject *out = m->packets;
    m->packets = PyList_New(0);
    if (m->packets == NULL) {
        m->packets = out;
        return NULL;
    }
    return out;
}

static PyMethodDef SipMaker_methods[] = {
    {"take", (PyCFunction)SipMaker_take, METH_NOARGS, "The packets made since the last take(), in order."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SipMakerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipflow.capture._fastpath.SipMaker",
    .tp_basicsize = sizeof(SipMaker),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Makes the SipPayload of each plain SIP-over-UDP record of a fast-path run.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)SipMaker_init,
    .tp_dealloc = (destructor)SipMaker_dealloc,
    .tp_methods = SipMaker_methods,
};

static int token_char[256];

static void init_tokens(void) {
    const char *t = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~";
    for (; *t; t++)
        token_char[(unsigned char)*t] = 1;
}

static inline int is_sip_version(const unsigned char *p) {
    return (p[0] | 32) == 's' && (p[1] | 32) == 'i' && (p[2] | 32) == 'p' && p[3] == '/' && p[4] == '2' &&
           p[5] == '.' && p[6] == '0';
}

/* detect.is_sip_start on p[0:n]: a Request-Line up to its LF, or "SIP/2.0 NNN" and SP or CR. */
static int sip_start(const unsigned char *p, Py_ssize_t n) {
    if (n <= 0 || !token_char[p[0]])
        return 0;
    if (n >= 12 && is_sip_version(p) && p[7] == ' ' && p[8] >= '0' && p[8] <= '9' && p[9] >= '0' &&
        p[9] <= '9' && p[10] >= '0' && p[10] <= '9' && (p[11] == ' ' || p[11] == '\r'))
        return 1;
    Py_ssize_t i = 0;
    while (i < n && token_char[p[i]])
        i++;
    if (i >= n || p[i] != ' ')
        return 0;
    Py_ssize_t u = ++i;
    while (i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n' && p[i] != 0)
        i++;
    if (i == u || i >= n || p[i] != ' ')
        return 0;
    i++;
    if (n - i < 8 || !is_sip_version(p + i))
        return 0;
    i += 7;
    if (p[i] == '\r')
        i++;
    return i < n && p[i] == '\n';
}

/* Where the SIP payload of Ethernet frame f (len octets) lies, when the Python decoder would make
 * a plain UDP SipPayload of it (see above): 1 and the bounds, else 0. */
static inline int sip_datagram(const unsigned char *f, Py_ssize_t len, Py_ssize_t *u, Py_ssize_t *end) {
    if (len < 14 + 20 + 8 || f[12] != 0x08 || f[13] != 0x00)
        return 0;
    const unsigned char *ip = f + 14;
    unsigned ihl = (unsigned)(ip[0] & 15) << 2;
    if (ip[0] >> 4 != 4 || ihl < 20)
        return 0;
    Py_ssize_t total = (Py_ssize_t)ip[2] << 8 | ip[3];
    if (total == 0 || total < ihl || 14 + total > len)
        return 0;
    if ((ip[6] & 0x3F) || ip[7] || ip[9] != 17)
        return 0;
    Py_ssize_t p = 14 + ihl, ip_end = 14 + total;
    if (ip_end - p < 8)
        return 0;
    Py_ssize_t ulen = (Py_ssize_t)f[p + 4] << 8 | f[p + 5];
    if (ulen >= 8) {
        if (p + ulen > ip_end)
            return 0;
        ip_end = p + ulen;
    }
    if (!sip_start(f + p + 8, ip_end - p - 8))
        return 0;
    *u = p + 8;
    *end = ip_end;
    return 1;
}

/* The shared Endpoint of an IPv4 address (4 octets at a) and a port. */
static PyObject *endpoint(SipMaker *m, const unsigned char *a, unsigned port) {
    uint32_t addr = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    PyObject *key = PyLong_FromUnsignedLongLong((unsigned long long)addr << 16 | port);
    if (key == NULL)
        return NULL;
    PyObject *known = PyDict_GetItemWithError(m->endpoints, key); /* borrowed */
    if (known != NULL) {
        Py_DECREF(key);
        return Py_NewRef(known);
    }
    if (PyErr_Occurred())
        goto fail;
    PyObject *akey = PyLong_FromUnsignedLong(addr);
    if (akey == NULL)
        goto fail;
    PyObject *host = PyDict_GetItemWithError(m->hosts, akey); /* borrowed */
    if (host != NULL) {
        Py_INCREF(host);
    } else if (!PyErr_Occurred()) {
        host = PyUnicode_FromFormat("%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        if (host != NULL) {
            if (PyDict_GET_SIZE(m->hosts) >= MAKER_CACHE_MAX)
                PyDict_Clear(m->hosts);
            if (PyDict_SetItem(m->hosts, akey, host) < 0)
                Py_CLEAR(host);
        }
    }
    Py_DECREF(akey);
    if (host == NULL)
        goto fail;
    PyObject *number = PyLong_FromLong((long)port);
    if (number == NULL) {
        Py_DECREF(host);
        goto fail;
    }
    PyObject *ep = m->endpoint_type->tp_alloc(m->endpoint_type, 2);
    if (ep == NULL) {
        Py_DECREF(host);
        Py_DECREF(number);
        goto fail;
    }
    PyTuple_SET_ITEM(ep, 0, host);
    PyTuple_SET_ITEM(ep, 1, number);
    if (PyDict_GET_SIZE(m->endpoints) >= MAKER_CACHE_MAX)
        PyDict_Clear(m->endpoints);
    if (PyDict_SetItem(m->endpoints, key, ep) < 0) {
        Py_DECREF(ep);
        goto fail;
    }
    Py_DECREF(key);
    return ep;
fail:
    Py_DECREF(key);
    return NULL;
}

/* The SipPayload of frame number `frame` (its octets f[u:end]), appended to m->packets: 0, or -1
 * on error. */
static int make_payload(SipMaker *m, const unsigned char *f, Py_ssize_t u, Py_ssize_t end, Py_ssize_t frame,
                        double ts) {
    const unsigned char *ip = f + 14;
    Py_ssize_t p = 14 + ((Py_ssize_t)(ip[0] & 15) << 2);
    PyObject *values[11];
    values[0] = PyLong_FromSsize_t(frame);
    values[1] = values[0] != NULL ? PyTuple_Pack(1, values[0]) : NULL;
    values[2] = PyFloat_FromDouble(ts);
    values[3] = endpoint(m, ip + 12, (unsigned)f[p] << 8 | f[p + 1]);
    values[4] = endpoint(m, ip + 16, (unsigned)f[p + 2] << 8 | f[p + 3]);
    values[5] = Py_NewRef(m->udp);
    values[6] = PyBytes_FromStringAndSize((const char *)f + u, end - u);
    values[7] = Py_NewRef(Py_False);
    values[8] = Py_NewRef(m->file);
    values[9] = PyLong_FromLong(0);
    values[10] = PyLong_FromLong((long)ip[4] << 8 | ip[5]);
    int missing = 0;
    for (int i = 0; i < 11; i++)
        missing |= values[i] == NULL;
    PyObject *obj = missing ? NULL : m->payload_type->tp_alloc(m->payload_type, 0);
    int failed = obj == NULL;
    for (int i = 0; i < 11; i++) {
        if (!failed && Py_TYPE(m->slots[i])->tp_descr_set(m->slots[i], obj, values[i]) < 0)
            failed = 1;
        Py_XDECREF(values[i]);
    }
    if (failed) {
        Py_XDECREF(obj);
        return -1;
    }
    failed = PyList_Append(m->packets, obj);
    Py_DECREF(obj);
    return failed;
}

static int maker_arg(PyObject *obj, SipMaker **out) {
    if (obj == Py_None) {
        *out = NULL;
        return 1;
    }
    if (!PyObject_TypeCheck(obj, &SipMakerType)) {
        PyErr_SetString(PyExc_TypeError, "a SipMaker or None expected");
        return 0;
    }
    *out = (SipMaker *)obj;
    return 1;
}

/* skip_pcap(buffer, pos, big_endian, header_length, table, frame, scale[, maker]) -> (pos, frames, rtp, rtcp)
 * ``header_length``: 16, or 24 for the "modified" pcap format's longer record headers.
 * ``maker``: None, or a SipMaker that takes the plain SIP datagrams too (frames - rtp - rtcp of
 * them, in maker.take()).
 * ``table``: None (count only) or a StreamTable whose streams' packets are measured; ``frame``
 * the number of the record before ``pos``; ``scale`` seconds per timestamp fraction unit. */
static PyObject *skip_pcap(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, hlen, frame;
    int big;
    double scale;
    Table *table;
    SipMaker *maker = NULL;
    if (!PyArg_ParseTuple(args, "y*npnO&nd|O&", &view, &pos, &big, &hlen, table_arg, &table, &frame, &scale,
                          maker_arg, &maker))
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t frames = 0, rtp = 0, rtcp = 0;
    while (pos >= 0 && hlen >= 16 && pos + hlen <= n) {
        const unsigned char *h = buf + pos;
        uint32_t incl = u32(h + 8, big);
        if (incl > MAX_RECORD || pos + hlen + (Py_ssize_t)incl > n)
            break;
        int kind = fast_kind(h + hlen, incl);
        Py_ssize_t u, end;
        if (kind == KIND_NONE && maker != NULL && sip_datagram(h + hlen, incl, &u, &end)) {
            /* records._pcap's timestamp: seconds + fraction * scale */
            double ts = (double)u32(h, big) + (double)u32(h + 4, big) * scale;
            if (make_payload(maker, h + hlen, u, end, frame + frames + 1, ts) < 0) {
                PyBuffer_Release(&view);
                return NULL;
            }
            frames++;
            pos += hlen + (Py_ssize_t)incl;
            if (table != NULL)
                break; /* the media analysis reads each SDP before the RTP after it */
            continue;
        }
        if (kind == KIND_NONE)
            break;
        if (table != NULL) {
            if (kind == KIND_RTCP)
                break;
            double ts = (double)u32(h, big) + (double)u32(h + 4, big) * scale;
            if (!measure(table, h + hlen, incl, frame + frames + 1, ts))
                break;
        }
        if (kind == KIND_RTP)
            rtp++;
        else
            rtcp++;
        frames++;
        pos += hlen + (Py_ssize_t)incl;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nnnn", pos, frames, rtp, rtcp);
}

/* skip_pcapng(buffer, pos, big_endian, ethernet, table, frame, clocks) -> (pos, frames, rtp, rtcp, last)
 * ``ethernet[i]`` is non-zero when interface i of the section is Ethernet; ``last`` is where
 * the run's last block starts (its timestamp is the walker's last one), -1 for no run.
 * ``table`` and ``frame`` as for skip_pcap; ``clocks``: two native doubles per interface, its
 * timestamp units per second and its if_tsoffset in seconds (needed with a table only). */
static PyObject *skip_pcapng(PyObject *self, PyObject *args) {
    Py_buffer view, eth, clk;
    Py_ssize_t pos, frame;
    int big;
    Table *table;
    if (!PyArg_ParseTuple(args, "y*npy*O&ny*", &view, &pos, &big, &eth, table_arg, &table, &frame, &clk))
        return NULL;
    const unsigned char *buf = view.buf;
    const unsigned char *mask = eth.buf;
    const unsigned char *clocks = clk.buf;
    Py_ssize_t n = view.len, nif = eth.len, nclocks = clk.len / 16;
    Py_ssize_t frames = 0, rtp = 0, rtcp = 0, last = -1;
    while (pos >= 0 && pos + 28 <= n) {
        const unsigned char *b = buf + pos;
        if (u32(b, big) != 6)
            break;
        uint32_t blen = u32(b + 4, big);
        if (blen < 32 || blen % 4 || blen > MAX_BLOCK || pos + (Py_ssize_t)blen > n)
            break;
        if (u32(b + blen - 4, big) != blen)
            break;
        uint32_t iface = u32(b + 8, big);
        uint32_t caplen = u32(b + 20, big);
        if ((Py_ssize_t)iface >= nif || !mask[iface] || (uint64_t)caplen + 32 > blen)
            break;
        int kind = fast_kind(b + 28, caplen);
        if (kind == KIND_NONE)
            break;
        if (table != NULL) {
            if (kind == KIND_RTCP || (Py_ssize_t)iface >= nclocks)
                break;
            double units, offset;
            memcpy(&units, clocks + 16 * iface, 8);
            memcpy(&offset, clocks + 16 * iface + 8, 8);
            if (!(units >= 1.0 && units <= EXACT))
                break; /* not an integer the double holds exactly: Python does it */
            uint64_t ticks = (uint64_t)u32(b + 12, big) << 32 | u32(b + 16, big);
            /* records._seconds, the same arithmetic: one division below 2**53 ticks, else the
             * whole seconds and their fraction apart. */
            double ts;
            if (ticks < (1ull << 53)) {
                ts = (double)ticks / units + offset;
            } else {
                uint64_t per = (uint64_t)units;
                ts = (double)(ticks / per) + (double)(ticks % per) / units + offset;
            }
            if (!measure(table, b + 28, caplen, frame + frames + 1, ts))
                break;
        }
        if (kind == KIND_RTP)
            rtp++;
        else
            rtcp++;
        frames++;
        last = pos;
        pos += blen;
    }
    PyBuffer_Release(&view);
    PyBuffer_Release(&eth);
    PyBuffer_Release(&clk);
    return Py_BuildValue("nnnnn", pos, frames, rtp, rtcp, last);
}

static PyMethodDef methods[] = {
    {"skip_pcap", skip_pcap, METH_VARARGS, "Count (and measure) a run of fast-path media records of a pcap buffer."},
    {"skip_pcapng", skip_pcapng, METH_VARARGS, "Count (and measure) a run of fast-path media blocks of a pcapng buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The capture layer's compiled fast path for media frames.", -1, methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    init_kinds();
    init_tokens();
    if (PyType_Ready(&MeterType) < 0 || PyType_Ready(&TableType) < 0 || PyType_Ready(&SipMakerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Meter", (PyObject *)&MeterType) < 0 ||
        PyModule_AddObjectRef(m, "StreamTable", (PyObject *)&TableType) < 0 ||
        PyModule_AddObjectRef(m, "SipMaker", (PyObject *)&SipMakerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
