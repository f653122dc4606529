/* The header scan of sipflow.sip.parse.parse_message, compiled: the fast path for plain messages.
 *
 * scan(data, names, unknown) -> (first_line, found, repeated, head_end, first_end, from_tag, to_tag,
 *                                branch, sent_by) or None
 *
 * Accepts only a message whose header section the Python loop would read without a defect:
 * no CR or LF before the start line, a CRLF CRLF ending the header section, every line in it
 * ended by CRLF (no bare CR or LF), no folded line, and every header line a token name
 * directly followed by its colon. Anything else returns None and the
 * Python code reads the message (the same answers: tests/test_sip_scan.py holds the two to it).
 *
 * first_line  the start line (str)
 * found       {canonical name: [values]} for the names in `names` (a dict mapping each lower-case
 *             name, compact forms included, to its canonical name), values stripped of SP/HTAB
 * repeated    whether a name of `names` occurred on more than one line
 * head_end    offset of the CRLF CRLF
 * first_end   offset of the LF ending the start line, or -1 when the start line is the only line
 * from_tag, to_tag, branch, sent_by
 *             the envelope fields as _envelope_tag and _via_envelope give them, read here where
 *             the value has the usual shape; `unknown` (the caller's sentinel) where the Python
 *             code must decide (both branch and sent_by together)
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int is_token_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '-': case '.': case '!': case '%': case '*': case '_': case '+': case '`': case '\'': case '~':
        return 1;
    default:
        return 0;
    }
}

/* An octet that may stand in a parameter value of the fast shapes: not in [\s;,"] (Python's \s
 * on str: ASCII blanks and \x1c-\x1f). 0: ends the value; -1: not ASCII, the Python code decides
 * (a non-ASCII character may be Unicode white space). */
static int param_value_char(unsigned char c)
{
    if (c >= 0x80)
        return -1;
    if (c == ' ' || c == ';' || c == ',' || c == '"' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))
        return 0;
    return 1;
}

/* Parameters ``(;token[=value])*`` filling s[0:e] (at least one when `one`), as _SIMPLE_PARAMS_RE
 * and the tail of _VIA_FAST_RE match them; finds the first parameter called `want` (lower-case,
 * matched in any case). Returns 1 when they match (*value NULL when `want` is absent, *value ==
 * *value_end when it has no value; *has_eq tells), 0 otherwise. */
static int simple_params(const char *s, const char *e, int one, const char *want, const char **value,
                         const char **value_end, int *has_eq)
{
    size_t want_len = strlen(want);
    *value = NULL;
    *value_end = NULL;
    *has_eq = 0;
    if (one && s == e)
        return 0;
    int found = 0;
    while (s < e) {
        if (*s != ';')
            return 0;
        s++;
        const char *name = s;
        while (s < e && is_token_char((unsigned char)*s))
            s++;
        if (s == name)
            return 0;
        const char *name_end = s, *v = s, *v_end = s;
        int eq = 0;
        if (s < e && *s == '=') {
            eq = 1;
            s++;
            v = s;
            while (s < e) {
                int ok = param_value_char((unsigned char)*s);
                if (ok < 0)
                    return 0;
                if (ok == 0)
                    break;
                s++;
            }
            v_end = s;
        }
        if (s < e && *s != ';')
            return 0;
        if (!found && (size_t)(name_end - name) == want_len) {
            size_t k = 0;
            for (; k < want_len; k++) {
                char c = name[k];
                if (c >= 'A' && c <= 'Z')
                    c = (char)(c + 32);
                if (c != want[k])
                    break;
            }
            if (k == want_len) {
                found = 1;
                *value = v;
                *value_end = v_end;
                *has_eq = eq;
            }
        }
    }
    return 1;
}

/* The From/To tag as _envelope_tag reads a plain value s[0:e] (SP/HTAB stripped). Returns 1
 * with *out a new reference (str or None), 0 when the full parse must decide, -1 on error. */
static int decide_tag(const char *s, const char *e, PyObject **out)
{
    const char *p = s;
    if (p < e && *p == '"') {
        p++;
        while (p < e && *p != '"') {
            if (*p == '\\') {
                if (p + 1 >= e)
                    return 0;
                p += 2;
            } else {
                p++;
            }
        }
        if (p >= e)
            return 0;
        p++;
    }
    if (memchr(p, '"', (size_t)(e - p)) != NULL)
        return 0;
    const char *tail;
    const char *lt = memchr(p, '<', (size_t)(e - p));
    if (lt != NULL) {
        const char *gt = memchr(lt, '>', (size_t)(e - lt));
        if (gt == NULL)
            return 0;
        tail = gt + 1;
    } else {
        const char *semi = memchr(p, ';', (size_t)(e - p));
        tail = semi != NULL ? semi : e;
    }
    if (tail == e) {
        Py_INCREF(Py_None);
        *out = Py_None;
        return 1;
    }
    const char *v, *v_end;
    int eq;
    if (!simple_params(tail, e, 1, "tag", &v, &v_end, &eq))
        return 0;
    if (v == NULL) {
        Py_INCREF(Py_None);
        *out = Py_None;
        return 1;
    }
    *out = PyUnicode_DecodeASCII(v, eq ? v_end - v : 0, NULL);
    return *out == NULL ? -1 : 1;
}

static int is_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

static int is_hex6_char(unsigned char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

/* The top Via's branch and sent-by as _via_envelope reads them when the first Via value has the
 * usual shape (_VIA_FAST_RE): 1 with new references, 0 when the Python code must decide, -1 on
 * error. */
static int decide_via(const char *s, const char *e, PyObject **branch, PyObject **sent_by)
{
    if (s == e || memchr(s, ',', (size_t)(e - s)) != NULL)
        return 0;
    if (e - s < 8 || memcmp(s, "SIP/2.0/", 8) != 0)
        return 0;
    const char *p = s + 8, *q = p;
    while (q < e && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        q++;
    if (q == p || q >= e || *q != ' ')
        return 0;
    const char *host = q + 1, *h = host;
    if (h < e && *h == '[') {
        h++;
        while (h < e && is_hex6_char((unsigned char)*h))
            h++;
        if (h == host + 1 || h >= e || *h != ']')
            return 0;
        h++;
    } else {
        while (h < e && is_host_char((unsigned char)*h))
            h++;
        if (h == host)
            return 0;
    }
    const char *host_end = h;
    long port = -1;
    if (h < e && *h == ':') {
        const char *d = ++h;
        while (h < e && *h >= '0' && *h <= '9' && h - d < 5)
            h++;
        if (h == d)
            return 0;
        port = 0;
        for (const char *x = d; x < h; x++)
            port = port * 10 + (*x - '0');
        if (port > 65535)
            return 0;
    }
    const char *v, *v_end;
    int eq;
    if (!simple_params(h, e, 0, "branch", &v, &v_end, &eq))
        return 0;
    char text[300];
    Py_ssize_t host_len = host_end - host;
    if (host_len > 256)
        return 0;
    for (Py_ssize_t k = 0; k < host_len; k++) {
        char c = host[k];
        text[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    Py_ssize_t len = host_len;
    if (port >= 0)
        len += snprintf(text + host_len, sizeof(text) - (size_t)host_len, ":%ld", port);
    *sent_by = PyUnicode_DecodeASCII(text, len, NULL);
    if (*sent_by == NULL)
        return -1;
    if (v == NULL) {
        Py_INCREF(Py_None);
        *branch = Py_None;
        return 1;
    }
    *branch = PyUnicode_DecodeASCII(v, eq ? v_end - v : 0, NULL);
    if (*branch == NULL) {
        Py_CLEAR(*sent_by);
        return -1;
    }
    return 1;
}

/* Offset of the first CRLF CRLF in buf[0:n], or -1. */
static Py_ssize_t find_crlfcrlf(const char *buf, Py_ssize_t n)
{
    const char *p = buf, *end = buf + n;
    while (p + 4 <= end) {
        const char *cr = memchr(p, '\r', (size_t)(end - p - 3));
        if (cr == NULL)
            return -1;
        if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n')
            return cr - buf;
        p = cr + 1;
    }
    return -1;
}

static PyObject *scan(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer view;
    PyObject *names, *unknown;
    if (!PyArg_ParseTuple(args, "y*O!O:scan", &view, &PyDict_Type, &names, &unknown))
        return NULL;
    const char *from_s = NULL, *from_e = NULL, *to_s = NULL, *to_e = NULL, *via_s = NULL, *via_e = NULL;
    const char *buf = (const char *)view.buf;
    Py_ssize_t n = view.len;
    PyObject *found = NULL, *first = NULL, *result = NULL;

    if (n == 0 || buf[0] == '\r' || buf[0] == '\n')
        goto fallback;
    Py_ssize_t head_end = find_crlfcrlf(buf, n);
    if (head_end < 0)
        goto fallback;
    /* The whole header section: CR only before LF, LF only after CR, and no line after the first
     * starting with SP or HTAB (folding). Other octets are decoded as UTF-8 (invalid ones become
     * U+FFFD) value by value, which gives what decoding the section at once gives: the cuts
     * (colons, line ends) are ASCII octets, which no UTF-8 sequence contains. */
    for (Py_ssize_t i = 0; i < head_end; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c != '\r' && c != '\n')
            continue;
        if (c == '\r' && buf[i + 1] == '\n') {
            /* buf[i + 2] exists: head_end >= i + 1 and buf[head_end..+3] is CRLF CRLF */
            if (i + 2 < head_end && (buf[i + 2] == ' ' || buf[i + 2] == '\t'))
                goto fallback;
            i++;
            continue;
        }
        goto fallback;
    }

    const char *nl = memchr(buf, '\n', (size_t)head_end);
    Py_ssize_t first_len = nl == NULL ? head_end : (nl - buf) - 1;
    Py_ssize_t first_end = nl == NULL ? -1 : nl - buf;
    first = PyUnicode_DecodeUTF8(buf, first_len, "replace");
    if (first == NULL)
        goto error;
    found = PyDict_New();
    if (found == NULL)
        goto error;
    int repeated = 0;
    Py_ssize_t pos = first_end < 0 ? head_end : first_end + 1;
    char lower[64];
    while (pos < head_end) {
        const char *line = buf + pos;
        const char *eol = memchr(line, '\r', (size_t)(head_end - pos));
        Py_ssize_t len = eol == NULL ? head_end - pos : eol - line;
        const char *colon = memchr(line, ':', (size_t)len);
        if (colon == NULL || colon == line)
            goto fallback;
        Py_ssize_t name_len = colon - line;
        int fits = name_len <= (Py_ssize_t)sizeof(lower);
        for (Py_ssize_t k = 0; k < name_len; k++) {
            unsigned char c = (unsigned char)line[k];
            if (!is_token_char(c))
                goto fallback;
            if (fits)
                lower[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        if (fits) {
            PyObject *name = PyUnicode_DecodeASCII(lower, name_len, NULL);
            if (name == NULL)
                goto error;
            PyObject *key = PyDict_GetItemWithError(names, name); /* borrowed */
            Py_DECREF(name);
            if (key == NULL && PyErr_Occurred())
                goto error;
            if (key != NULL) {
                const char *v = colon + 1, *vend = line + len;
                while (v < vend && (*v == ' ' || *v == '\t'))
                    v++;
                while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                    vend--;
                if (from_s == NULL && PyUnicode_CompareWithASCIIString(key, "from") == 0) {
                    from_s = v;
                    from_e = vend;
                } else if (to_s == NULL && PyUnicode_CompareWithASCIIString(key, "to") == 0) {
                    to_s = v;
                    to_e = vend;
                } else if (via_s == NULL && PyUnicode_CompareWithASCIIString(key, "via") == 0) {
                    via_s = v;
                    via_e = vend;
                }
                PyObject *value = PyUnicode_DecodeUTF8(v, vend - v, "replace");
                if (value == NULL)
                    goto error;
                PyObject *bucket = PyDict_GetItemWithError(found, key); /* borrowed */
                if (bucket == NULL) {
                    if (PyErr_Occurred()) {
                        Py_DECREF(value);
                        goto error;
                    }
                    bucket = PyList_New(1);
                    if (bucket == NULL) {
                        Py_DECREF(value);
                        goto error;
                    }
                    PyList_SET_ITEM(bucket, 0, value); /* steals */
                    int failed = PyDict_SetItem(found, key, bucket);
                    Py_DECREF(bucket);
                    if (failed)
                        goto error;
                } else {
                    int failed = PyList_Append(bucket, value);
                    Py_DECREF(value);
                    if (failed)
                        goto error;
                    repeated = 1;
                }
            }
        }
        /* names longer than the buffer are no name of `names` */
        pos += len + 2;
    }
    PyObject *from_tag = NULL, *to_tag = NULL, *branch = NULL, *sent_by = NULL;
    int decided;
    if (from_s == NULL) {
        from_tag = Py_NewRef(Py_None);
    } else if ((decided = decide_tag(from_s, from_e, &from_tag)) <= 0) {
        if (decided < 0)
            goto error;
        from_tag = Py_NewRef(unknown);
    }
    if (to_s == NULL) {
        to_tag = Py_NewRef(Py_None);
    } else if ((decided = decide_tag(to_s, to_e, &to_tag)) <= 0) {
        if (decided < 0) {
            Py_DECREF(from_tag);
            goto error;
        }
        to_tag = Py_NewRef(unknown);
    }
    if (via_s == NULL) {
        branch = Py_NewRef(Py_None);
        sent_by = Py_NewRef(Py_None);
    } else if ((decided = decide_via(via_s, via_e, &branch, &sent_by)) <= 0) {
        if (decided < 0) {
            Py_DECREF(from_tag);
            Py_DECREF(to_tag);
            goto error;
        }
        branch = Py_NewRef(unknown);
        sent_by = Py_NewRef(unknown);
    }
    result = Py_BuildValue("(NNinnNNNN)", first, found, repeated, head_end, first_end, from_tag, to_tag, branch,
                           sent_by);
    PyBuffer_Release(&view);
    return result; /* every "N" reference stolen */

fallback:
    Py_XDECREF(first);
    Py_XDECREF(found);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
error:
    Py_XDECREF(first);
    Py_XDECREF(found);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "The header scan of a plain SIP message, or None (see sipflow.sip.parse)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sipflow.sip._scan", "Compiled header scan of sipflow.sip.parse.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void)
{
    return PyModule_Create(&module);
}
