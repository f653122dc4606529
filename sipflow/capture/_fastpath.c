/* The capture layer's compiled fast path: runs of RTP/RTCP frames counted without Python calls.
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
 * pcap: record header of 16 octets (ts_sec, ts_frac, incl_len, orig_len), libpcap file format.
 * pcapng: Enhanced Packet Blocks (pcapng §4.3) of the interfaces marked Ethernet.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* records.MAX_RECORD and records.MAX_BLOCK */
#define MAX_RECORD 262144u
#define MAX_BLOCK (16u << 20)

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

/* skip_pcap(buffer, pos, big_endian, header_length) -> (pos, frames, rtp, rtcp)
 * ``header_length``: 16, or 24 for the "modified" pcap format's longer record headers. */
static PyObject *skip_pcap(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos, hlen;
    int big;
    if (!PyArg_ParseTuple(args, "y*npn", &view, &pos, &big, &hlen))
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t frames = 0, rtp = 0, rtcp = 0;
    while (pos >= 0 && hlen >= 16 && pos + hlen <= n) {
        uint32_t incl = u32(buf + pos + 8, big);
        if (incl > MAX_RECORD || pos + hlen + (Py_ssize_t)incl > n)
            break;
        int kind = fast_kind(buf + pos + hlen, incl);
        if (kind == KIND_NONE)
            break;
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

/* skip_pcapng(buffer, pos, big_endian, ethernet) -> (pos, frames, rtp, rtcp, last)
 * ``ethernet[i]`` is non-zero when interface i of the section is Ethernet; ``last`` is where
 * the run's last block starts (its timestamp is the walker's last one), -1 for no run. */
static PyObject *skip_pcapng(PyObject *self, PyObject *args) {
    Py_buffer view, eth;
    Py_ssize_t pos;
    int big;
    if (!PyArg_ParseTuple(args, "y*npy*", &view, &pos, &big, &eth))
        return NULL;
    const unsigned char *buf = view.buf;
    const unsigned char *mask = eth.buf;
    Py_ssize_t n = view.len, nif = eth.len;
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
    return Py_BuildValue("nnnnn", pos, frames, rtp, rtcp, last);
}

static PyMethodDef methods[] = {
    {"skip_pcap", skip_pcap, METH_VARARGS, "Count a run of fast-path media records of a pcap buffer."},
    {"skip_pcapng", skip_pcapng, METH_VARARGS, "Count a run of fast-path media blocks of a pcapng buffer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "The capture layer's compiled fast path for media frames.", -1, methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    init_kinds();
    return PyModule_Create(&module);
}
