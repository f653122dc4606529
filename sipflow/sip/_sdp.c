/* The SDP digest of sipflow.sip.sdp.digest_sdp, compiled: the fast path for plain bodies.
 *
 * digest(body) -> (first_ok, seen_v, origin, connection, streams) or None
 *
 * Serves a body of printable ASCII, HTAB, CR and LF only; anything else (an octet of 0x80 or
 * more, another control character: Unicode white space that str.split() would cut on) returns
 * None and the Python code reads it. On such a body it reads what digest_sdp reads, the way it
 * reads it (tests/test_sdp_digest.py holds the two to it):
 *
 * first_ok    whether the first line that is not blank is a "<a-z>[ \t]*=" line (True when the
 *             body is all blank: digest_sdp then checks nothing)
 * seen_v      whether a "v" line was read
 * origin      the six fields of the last session-level "o" line with six fields, or None
 * connection  the session-level connection address (None when the last session-level "c" line
 *             had fewer than three fields, or there was none)
 * streams     a (connection address or None, port) pair per "m" line with three fields or more
 *             and a port of 1-5 digits (an "m" line without them ends the stream before it and
 *             is none: the "c" and "o" lines after it count as session level)
 *
 * Lines are cut at LF; a line's value is what follows "<v|o|c|m>[ \t]*=" up to the LF, with
 * blanks (SP, HTAB, CR, LF) stripped, and its fields are the runs between blanks.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Up to `max` fields of s[0:e] (runs between blanks) into starts/ends; returns how many there are
 * in all (counting on past `max`). */
static int fields(const char *s, const char *e, const char **starts, const char **ends, int max)
{
    int n = 0;
    while (s < e) {
        while (s < e && is_blank((unsigned char)*s))
            s++;
        if (s == e)
            break;
        const char *start = s;
        while (s < e && !is_blank((unsigned char)*s))
            s++;
        if (n < max) {
            starts[n] = start;
            ends[n] = s;
        }
        n++;
    }
    return n;
}

static PyObject *text(const char *s, const char *e) { return PyUnicode_FromStringAndSize(s, e - s); }

/* The address of a "c" line's value: its third field up to a '/', or NULL with *bad set when it
 * has fewer than three fields. Returns a new reference, or NULL with *bad clear on error. */
static PyObject *connection_address(const char *s, const char *e, int *bad)
{
    const char *starts[3], *ends[3];
    *bad = 0;
    if (fields(s, e, starts, ends, 3) < 3) {
        *bad = 1;
        return NULL;
    }
    const char *slash = memchr(starts[2], '/', (size_t)(ends[2] - starts[2]));
    return text(starts[2], slash != NULL ? slash : ends[2]);
}

static PyObject *digest(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "digest() takes bytes");
        return NULL;
    }
    const char *body = PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c >= 0x7f || (c < 0x20 && c != '\t' && c != '\r' && c != '\n'))
            Py_RETURN_NONE;
    }
    const char *end = body + n;

    /* The first line with something not blank on it. */
    int first_ok = 1;
    const char *p = body;
    while (p < end && is_blank((unsigned char)*p))
        p++;
    if (p < end) {
        const char *line = p;
        while (line > body && line[-1] != '\n')
            line--;
        const char *line_end = memchr(line, '\n', (size_t)(end - line));
        if (line_end == NULL)
            line_end = end;
        while (line_end > line && line_end[-1] == '\r')
            line_end--;
        const char *q = line;
        first_ok = 0;
        if (q < line_end && *q >= 'a' && *q <= 'z') {
            q++;
            while (q < line_end && (*q == ' ' || *q == '\t'))
                q++;
            first_ok = q < line_end && *q == '=';
        }
    }

    int seen_v = 0;
    PyObject *origin = Py_NewRef(Py_None), *connection = Py_NewRef(Py_None);
    PyObject *streams = PyList_New(0);
    Py_ssize_t current = -1; /* the open stream's index in streams, or -1: session level */
    long current_port = 0;
    if (streams == NULL)
        goto fail;
    for (const char *line = body; line <= end;) {
        const char *line_end = memchr(line, '\n', (size_t)(end - line));
        if (line_end == NULL)
            line_end = end;
        const char *q = line;
        char kind = q < line_end ? *q : 0;
        if (kind == 'v' || kind == 'o' || kind == 'c' || kind == 'm') {
            q++;
            while (q < line_end && (*q == ' ' || *q == '\t'))
                q++;
        }
        if ((kind == 'v' || kind == 'o' || kind == 'c' || kind == 'm') && q < line_end && *q == '=') {
            const char *v = q + 1, *v_end = line_end;
            if (kind == 'v') {
                seen_v = 1;
            } else if (kind == 'o') {
                const char *starts[6], *ends[6];
                if (current < 0 && fields(v, v_end, starts, ends, 6) == 6) {
                    PyObject *found = PyTuple_New(6);
                    if (found == NULL)
                        goto fail;
                    for (int i = 0; i < 6; i++) {
                        PyObject *field = text(starts[i], ends[i]);
                        if (field == NULL) {
                            Py_DECREF(found);
                            goto fail;
                        }
                        PyTuple_SET_ITEM(found, i, field);
                    }
                    Py_SETREF(origin, found);
                }
            } else if (kind == 'c') {
                int bad;
                PyObject *address = connection_address(v, v_end, &bad);
                if (address == NULL && !bad)
                    goto fail;
                if (address == NULL)
                    address = Py_NewRef(Py_None);
                if (current < 0) {
                    Py_SETREF(connection, address);
                } else {
                    PyObject *pair = Py_BuildValue("(Nl)", address, current_port);
                    if (pair == NULL || PyList_SetItem(streams, current, pair) < 0)
                        goto fail;
                }
            } else {
                const char *starts[3], *ends[3];
                current = -1;
                if (fields(v, v_end, starts, ends, 3) >= 3) {
                    const char *port = starts[1], *port_end = memchr(port, '/', (size_t)(ends[1] - port));
                    if (port_end == NULL)
                        port_end = ends[1];
                    int digits = port_end > port && port_end - port <= 5;
                    long value = 0;
                    for (const char *d = port; digits && d < port_end; d++) {
                        if (*d < '0' || *d > '9')
                            digits = 0;
                        else
                            value = value * 10 + (*d - '0');
                    }
                    if (digits) {
                        PyObject *pair = Py_BuildValue("(Ol)", Py_None, value);
                        if (pair == NULL)
                            goto fail;
                        int failed = PyList_Append(streams, pair);
                        Py_DECREF(pair);
                        if (failed)
                            goto fail;
                        current = PyList_GET_SIZE(streams) - 1;
                        current_port = value;
                    }
                }
            }
        }
        if (line_end == end)
            break;
        line = line_end + 1;
    }
    return Py_BuildValue("(OONNN)", first_ok ? Py_True : Py_False, seen_v ? Py_True : Py_False, origin,
                         connection, streams);

fail:
    Py_XDECREF(origin);
    Py_XDECREF(connection);
    Py_XDECREF(streams);
    return NULL;
}

static PyMethodDef methods[] = {
    {"digest", digest, METH_O, "What sipflow.sip.sdp.digest_sdp reads of a plain SDP body, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sipflow.sip._sdp", "Compiled SDP digest of sipflow.sip.sdp.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sdp(void) { return PyModule_Create(&module); }
