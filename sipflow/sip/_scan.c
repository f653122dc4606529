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
    const char *comma = memchr(s, ',', (size_t)(e - s));
    if (comma != NULL) {
        /* Several values on the line: without quotes or <>, _split_values cuts at each comma, and
         * the top Via is the first value (when it has the usual shape). */
        if (memchr(s, '"', (size_t)(e - s)) != NULL || memchr(s, '<', (size_t)(e - s)) != NULL)
            return 0;
        e = comma;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
    }
    if (s == e)
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

/* The end of the header section of buf[0:n] (its first CRLF CRLF) where scan() can read the
 * section, else -1. The whole header section: CR only before LF, LF only after CR, and no line
 * after the first starting with SP or HTAB (folding), nor a CR or LF before the start line. Other
 * octets are decoded as UTF-8 (invalid ones become U+FFFD) value by value, which gives what
 * decoding the section at once gives: the cuts (colons, line ends) are ASCII octets, which no
 * UTF-8 sequence contains. */
static Py_ssize_t plain_section(const char *buf, Py_ssize_t n)
{
    if (n == 0 || buf[0] == '\r' || buf[0] == '\n')
        return -1;
    Py_ssize_t head_end = find_crlfcrlf(buf, n);
    if (head_end < 0)
        return -1;
    for (Py_ssize_t i = 0; i < head_end; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c != '\r' && c != '\n')
            continue;
        if (c == '\r' && buf[i + 1] == '\n') {
            /* buf[i + 2] exists: head_end >= i + 1 and buf[head_end..+3] is CRLF CRLF */
            if (i + 2 < head_end && (buf[i + 2] == ' ' || buf[i + 2] == '\t'))
                return -1;
            i++;
            continue;
        }
        return -1;
    }
    return head_end;
}

/* The header line at line[0:avail] (avail reaching the end of the header section) as scan()
 * reads it: *len is its length up to its CR (or the end), and its name is lower-cased into
 * lower[0:size] where it fits. Returns the name's length, or -1 where the line has no name of
 * token characters before a colon (scan() then leaves the message to the Python code). */
static Py_ssize_t header_name(const char *line, Py_ssize_t avail, char *lower, Py_ssize_t size, Py_ssize_t *len)
{
    const char *eol = memchr(line, '\r', (size_t)avail);
    *len = eol == NULL ? avail : eol - line;
    const char *colon = memchr(line, ':', (size_t)*len);
    if (colon == NULL || colon == line)
        return -1;
    Py_ssize_t name_len = colon - line;
    int fits = name_len <= size;
    for (Py_ssize_t k = 0; k < name_len; k++) {
        unsigned char c = (unsigned char)line[k];
        if (!is_token_char(c))
            return -1;
        if (fits)
            lower[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    return name_len;
}

/* The value of the header line line[0:len] whose name is name_len long, blanks stripped. */
static void header_value(const char *line, Py_ssize_t name_len, Py_ssize_t len, const char **v, const char **vend)
{
    const char *s = line + name_len + 1, *e = line + len;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *v = s;
    *vend = e;
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

    Py_ssize_t head_end = plain_section(buf, n);
    if (head_end < 0)
        goto fallback;

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
        Py_ssize_t len;
        Py_ssize_t name_len = header_name(line, head_end - pos, lower, (Py_ssize_t)sizeof(lower), &len);
        if (name_len < 0)
            goto fallback;
        if (name_len <= (Py_ssize_t)sizeof(lower)) {
            PyObject *name = PyUnicode_DecodeASCII(lower, name_len, NULL);
            if (name == NULL)
                goto error;
            PyObject *key = PyDict_GetItemWithError(names, name); /* borrowed */
            Py_DECREF(name);
            if (key == NULL && PyErr_Occurred())
                goto error;
            if (key != NULL) {
                const char *v, *vend;
                header_value(line, name_len, len, &v, &vend);
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

/* ---- parse: the whole message, for a message the Python parser would read without a defect ----
 *
 * parse(data) -> SipRequest | SipResponse | None
 *
 * The message parse_message builds, where the Python code would find nothing to report: the
 * header section as scan() accepts it; one each of Call-ID (not empty), CSeq, From, To,
 * Content-Type, Max-Forwards and Content-Length, and a Via; the start line on the strict
 * grammar (REQUEST_LINE_RE or STATUS_LINE_RE, version SIP/2.0, status 100-699, a Request-URI
 * with a scheme, no <>, no headers in a sip: URI); a CSeq of 1*DIGIT LWS token below 2**31
 * whose method is the request's; From and To tags and the top Via in the shapes scan() reads;
 * Max-Forwards (required in a request) and Expires plain numbers in range; Content-Length a
 * number no larger than the bytes after the header section; every Contact a <>-enclosed
 * value without ";;" or an expires parameter; Retry-After a plain number in range before any
 * comment or parameter; no Warning or Date (their checks are left to the Python code). Anything else returns None and parse_message reads the
 * message itself (tests/test_sip_scan.py holds the two to the same message).
 *
 * configure(SipRequest, SipResponse, Headers, CSeq) must be called first: the objects are
 * made with their slots set directly (the classes are frozen dataclasses).
 */

enum { H_CALL_ID, H_CSEQ, H_FROM, H_TO, H_VIA, H_CONTENT_LENGTH, H_MAX_FORWARDS, H_CONTENT_TYPE, H_EXPIRES,
       H_RETRY_AFTER, H_OTHER_CHECKED, H_CONTACT, H_COUNT };

/* Which header a lower-case name is (compact forms too), or -1. */
static int header_id(const char *s, Py_ssize_t n)
{
    switch (n) {
    case 1:
        switch (s[0]) {
        case 'i': return H_CALL_ID;
        case 'f': return H_FROM;
        case 't': return H_TO;
        case 'v': return H_VIA;
        case 'l': return H_CONTENT_LENGTH;
        case 'c': return H_CONTENT_TYPE;
        case 'm': return H_CONTACT;
        default: return -1;
        }
    case 2: return memcmp(s, "to", 2) == 0 ? H_TO : -1;
    case 3: return memcmp(s, "via", 3) == 0 ? H_VIA : -1;
    case 4:
        if (memcmp(s, "cseq", 4) == 0) return H_CSEQ;
        if (memcmp(s, "from", 4) == 0) return H_FROM;
        if (memcmp(s, "date", 4) == 0) return H_OTHER_CHECKED;
        return -1;
    case 7:
        if (memcmp(s, "call-id", 7) == 0) return H_CALL_ID;
        if (memcmp(s, "expires", 7) == 0) return H_EXPIRES;
        if (memcmp(s, "contact", 7) == 0) return H_CONTACT;
        if (memcmp(s, "warning", 7) == 0) return H_OTHER_CHECKED;
        return -1;
    case 11: return memcmp(s, "retry-after", 11) == 0 ? H_RETRY_AFTER : -1;
    case 12:
        if (memcmp(s, "max-forwards", 12) == 0) return H_MAX_FORWARDS;
        if (memcmp(s, "content-type", 12) == 0) return H_CONTENT_TYPE;
        return -1;
    case 14: return memcmp(s, "content-length", 14) == 0 ? H_CONTENT_LENGTH : -1;
    default: return -1;
    }
}

static PyTypeObject *request_type, *response_type, *headers_type, *cseq_type;
/* Member descriptors of the slots, in the order of the tables below. */
static PyObject *base_slots[14], *request_slots[3], *response_slots[3], *headers_slots[4], *cseq_slots[2];
static const char *const base_names[14] = {"headers", "raw", "body_start", "call_id", "cseq", "from_tag", "to_tag",
                                           "branch", "sent_by", "content_length", "ingest_defects", "trailing",
                                           "_names", "_vias"};
static const char *const request_names[3] = {"method", "uri", "version"};
static const char *const response_names[3] = {"status", "reason", "version"};
static const char *const headers_names[4] = {"data", "start", "end", "plain"};
static const char *const cseq_names[2] = {"seq", "method"};
static PyObject *empty_tuple, *empty_bytes;
/* Shared str objects for the few distinct methods, versions and reason phrases. */
static PyObject *word_cache;
#define WORD_CACHE_MAX 512
/* Shared str objects for the identifiers the messages of a call repeat (Call-ID, tags, top
   Via branch and sent-by): each message keeps a reference, not a copy of its own. Cleared when
   full; sized for the identifiers of some ten thousand calls in progress at once. */
static PyObject *ident_cache;
#define IDENT_CACHE_MAX 65536
/* Shared CSeq objects, by the text of the header's value: a transaction's request and
   responses, and a call's in-dialog requests at the usual small numbers, repeat it. */
static PyObject *cseq_cache;
#define CSEQ_CACHE_MAX 16384

static int load_slots(PyTypeObject *type, const char *const *names, PyObject **out, int count)
{
    for (int i = 0; i < count; i++) {
        PyObject *d = PyObject_GetAttrString((PyObject *)type, names[i]);
        if (d == NULL)
            return -1;
        if (Py_TYPE(d)->tp_descr_set == NULL) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, names[i]);
            Py_DECREF(d);
            return -1;
        }
        Py_XSETREF(out[i], d);
    }
    return 0;
}

static PyObject *configure(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *req, *resp, *hdrs, *cs;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:configure", &PyType_Type, &req, &PyType_Type, &resp, &PyType_Type,
                          &hdrs, &PyType_Type, &cs))
        return NULL;
    if (load_slots((PyTypeObject *)req, base_names, base_slots, 14) < 0 ||
        load_slots((PyTypeObject *)req, request_names, request_slots, 3) < 0 ||
        load_slots((PyTypeObject *)resp, response_names, response_slots, 3) < 0 ||
        load_slots((PyTypeObject *)hdrs, headers_names, headers_slots, 4) < 0 ||
        load_slots((PyTypeObject *)cs, cseq_names, cseq_slots, 2) < 0)
        return NULL;
    Py_INCREF(req);
    Py_INCREF(resp);
    Py_INCREF(hdrs);
    Py_INCREF(cs);
    Py_XSETREF(request_type, (PyTypeObject *)req);
    Py_XSETREF(response_type, (PyTypeObject *)resp);
    Py_XSETREF(headers_type, (PyTypeObject *)hdrs);
    Py_XSETREF(cseq_type, (PyTypeObject *)cs);
    if (empty_tuple == NULL && (empty_tuple = PyTuple_New(0)) == NULL)
        return NULL;
    if (empty_bytes == NULL && (empty_bytes = PyBytes_FromStringAndSize(NULL, 0)) == NULL)
        return NULL;
    if (word_cache == NULL && (word_cache = PyDict_New()) == NULL)
        return NULL;
    if (ident_cache == NULL && (ident_cache = PyDict_New()) == NULL)
        return NULL;
    if (cseq_cache == NULL && (cseq_cache = PyDict_New()) == NULL)
        return NULL;
    Py_RETURN_NONE;
}

/* A new object of `type` with its slots set to `values` (references stolen, also on error). */
static PyObject *make(PyTypeObject *type, PyObject **slots, PyObject **values, int count)
{
    PyObject *obj = type->tp_alloc(type, 0);
    int i = 0;
    if (obj != NULL) {
        for (; i < count; i++) {
            int failed = Py_TYPE(slots[i])->tp_descr_set(slots[i], obj, values[i]);
            Py_DECREF(values[i]);
            if (failed) {
                i++;
                Py_CLEAR(obj);
                break;
            }
        }
    }
    for (; i < count; i++)
        Py_XDECREF(values[i]);
    return obj;
}

/* Keep `value` in `cache` under `key`; the cache is cleared first when it holds `max` entries.
   0, or -1 with an exception set. */
static int remember(PyObject *cache, Py_ssize_t max, PyObject *key, PyObject *value)
{
    if (PyDict_GET_SIZE(cache) >= max)
        PyDict_Clear(cache);
    return PyDict_SetItem(cache, key, value);
}

/* `text` (a new reference; NULL passed through), or the equal str `cache` already holds. The
   cache keeps at most `max` entries and is cleared when full. */
static PyObject *shared(PyObject *cache, Py_ssize_t max, PyObject *text)
{
    if (text == NULL)
        return NULL;
    PyObject *known = PyDict_GetItemWithError(cache, text); /* borrowed */
    if (known != NULL) {
        Py_DECREF(text);
        return Py_NewRef(known);
    }
    if (PyErr_Occurred() || remember(cache, max, text, text) < 0) {
        Py_DECREF(text);
        return NULL;
    }
    return text;
}

/* A shared str for a short word (method, version, reason phrase), decoded as UTF-8. */
static PyObject *word(const char *s, Py_ssize_t n)
{
    PyObject *text = PyUnicode_DecodeUTF8(s, n, "replace");
    return n > 64 ? text : shared(word_cache, WORD_CACHE_MAX, text);
}

/* `text` (a new reference, NULL or None passed through), or the equal str seen before. */
static PyObject *ident(PyObject *text)
{
    if (text == NULL || !PyUnicode_CheckExact(text))
        return text;
    return shared(ident_cache, IDENT_CACHE_MAX, text);
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* An unsigned number of at most `max_digits` digits filling s[0:e], or -1. */
static long long plain_number(const char *s, const char *e, int max_digits)
{
    if (s == e || e - s > max_digits)
        return -1;
    long long v = 0;
    for (; s < e; s++) {
        if (!is_digit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int is_version(const char *s, const char *e)
{
    return e - s == 7 && (s[0] == 'S' || s[0] == 's') && (s[1] == 'I' || s[1] == 'i') &&
           (s[2] == 'P' || s[2] == 'p') && memcmp(s + 3, "/2.0", 4) == 0;
}

static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* The Request-URI s[0:e] passes _check_request_uri without a defect. */
static int plain_request_uri(const char *s, const char *e)
{
    if (s[0] == '<' && e[-1] == '>')
        return 0;
    const char *p = s;
    if (!is_alpha((unsigned char)*p))
        return 0;
    p++;
    while (p < e && (is_alpha((unsigned char)*p) || is_digit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))
        p++;
    if (p >= e || *p != ':')
        return 0;
    Py_ssize_t scheme_len = p - s;
    int sip = (scheme_len == 3 && (s[0] | 32) == 's' && (s[1] | 32) == 'i' && (s[2] | 32) == 'p') ||
              (scheme_len == 4 && (s[0] | 32) == 's' && (s[1] | 32) == 'i' && (s[2] | 32) == 'p' &&
               (s[3] | 32) == 's');
    if (sip) {
        const char *at = NULL;
        for (const char *q = s; q < e; q++)
            if (*q == '@')
                at = q;
        const char *from = at != NULL ? at + 1 : s;
        if (memchr(from, '?', (size_t)(e - from)) != NULL)
            return 0;
    }
    return 1;
}

static int has_text(const char *s, const char *e, const char *what)
{
    size_t n = strlen(what);
    for (const char *p = s; p + n <= e; p++)
        if (memcmp(p, what, n) == 0)
            return 1;
    return 0;
}

static PyObject *parse(PyObject *self, PyObject *arg)
{
    (void)self;
    if (request_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "sipflow.sip._scan.configure() was not called");
        return NULL;
    }
    if (!PyBytes_CheckExact(arg))
        Py_RETURN_NONE;
    const char *buf = PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    Py_ssize_t head_end = plain_section(buf, n);
    if (head_end < 0)
        Py_RETURN_NONE;
    const char *nl = memchr(buf, '\n', (size_t)head_end);
    if (nl == NULL)
        Py_RETURN_NONE; /* no header lines: the mandatory ones are missing */
    const char *first_e = nl - 1;
    Py_ssize_t first_end = nl - buf;

    const char *vs[H_COUNT] = {0}, *ve[H_COUNT] = {0};
    int count[H_COUNT] = {0};
    Py_ssize_t pos = first_end + 1;
    char lower[16];
    while (pos < head_end) {
        const char *line = buf + pos;
        Py_ssize_t len;
        Py_ssize_t name_len = header_name(line, head_end - pos, lower, (Py_ssize_t)sizeof(lower), &len);
        if (name_len < 0)
            Py_RETURN_NONE;
        int id = name_len <= (Py_ssize_t)sizeof(lower) ? header_id(lower, name_len) : -1;
        if (id >= 0) {
            const char *v, *vend;
            header_value(line, name_len, len, &v, &vend);
            if (id == H_OTHER_CHECKED)
                Py_RETURN_NONE;
            if (id == H_CONTACT) {
                if (memchr(v, '<', (size_t)(vend - v)) == NULL || has_text(v, vend, ";;") ||
                    has_text(v, vend, "xpires") || has_text(v, vend, "XPIRES"))
                    Py_RETURN_NONE;
            } else if (count[id]++ == 0) {
                vs[id] = v;
                ve[id] = vend;
            } else if (id != H_VIA) {
                Py_RETURN_NONE; /* a repeated single-valued header */
            }
        }
        pos += len + 2;
    }
    if (count[H_CALL_ID] == 0 || vs[H_CALL_ID] == ve[H_CALL_ID] || count[H_CSEQ] == 0 || count[H_FROM] == 0 ||
        count[H_TO] == 0 || count[H_VIA] == 0)
        Py_RETURN_NONE;
    if (count[H_MAX_FORWARDS] && plain_number(vs[H_MAX_FORWARDS], ve[H_MAX_FORWARDS], 3) > 255)
        Py_RETURN_NONE;
    if (count[H_MAX_FORWARDS] && plain_number(vs[H_MAX_FORWARDS], ve[H_MAX_FORWARDS], 3) < 0)
        Py_RETURN_NONE;
    if (count[H_EXPIRES]) {
        long long v = plain_number(vs[H_EXPIRES], ve[H_EXPIRES], 10);
        if (v < 0 || v > 4294967295LL)
            Py_RETURN_NONE;
    }
    if (count[H_RETRY_AFTER]) {
        /* delta-seconds before any comment or parameter, blanks stripped */
        const char *r = vs[H_RETRY_AFTER], *re_ = r;
        while (re_ < ve[H_RETRY_AFTER] && *re_ != '(' && *re_ != ';')
            re_++;
        while (re_ > r && (re_[-1] == ' ' || re_[-1] == '\t'))
            re_--;
        long long v = plain_number(r, re_, 10);
        if (v < 0 || v > 4294967295LL)
            Py_RETURN_NONE;
    }
    long long content_length = -1;
    Py_ssize_t body_start = head_end + 4, end = n;
    if (count[H_CONTENT_LENGTH]) {
        content_length = plain_number(vs[H_CONTENT_LENGTH], ve[H_CONTENT_LENGTH], 9);
        if (content_length < 0 || content_length > n - body_start)
            Py_RETURN_NONE;
        end = body_start + (Py_ssize_t)content_length;
    }
    /* CSeq: 1*DIGIT 1*WSP token */
    const char *c = vs[H_CSEQ], *ce = ve[H_CSEQ], *d = c;
    while (d < ce && is_digit((unsigned char)*d))
        d++;
    long long seq = plain_number(c, d, 10);
    if (seq < 0 || seq > 2147483647LL || d >= ce || (*d != ' ' && *d != '\t'))
        Py_RETURN_NONE;
    while (d < ce && (*d == ' ' || *d == '\t'))
        d++;
    const char *cseq_method = d;
    while (d < ce && is_token_char((unsigned char)*d))
        d++;
    if (d == cseq_method || d != ce)
        Py_RETURN_NONE;

    /* The start line. */
    int is_request;
    const char *m_s = NULL, *m_e = NULL, *u_s = NULL, *u_e = NULL, *v_s, *v_e, *r_s = NULL;
    long status = 0;
    if (first_e - buf >= 12 && (buf[0] | 32) == 's' && (buf[1] | 32) == 'i' && (buf[2] | 32) == 'p' && buf[3] == '/') {
        /* Status-Line: SIP/2.0 SP 3DIGIT SP reason */
        v_s = buf;
        v_e = buf + 7;
        if (!is_version(v_s, v_e) || buf[7] != ' ' || !is_digit((unsigned char)buf[8]) ||
            !is_digit((unsigned char)buf[9]) || !is_digit((unsigned char)buf[10]) || buf[11] != ' ')
            Py_RETURN_NONE;
        status = (buf[8] - '0') * 100 + (buf[9] - '0') * 10 + (buf[10] - '0');
        if (status < 100 || status > 699)
            Py_RETURN_NONE;
        r_s = buf + 12;
        is_request = 0;
    } else {
        /* Request-Line: token SP 1*(not CTL or SP) SP SIP/2.0 */
        const char *p = buf;
        while (p < first_e && is_token_char((unsigned char)*p))
            p++;
        if (p == buf || p >= first_e || *p != ' ')
            Py_RETURN_NONE;
        m_s = buf;
        m_e = p;
        u_s = p + 1;
        const char *q = u_s;
        while (q < first_e && (unsigned char)*q > 0x20 && (unsigned char)*q != 0x7f)
            q++;
        if (q == u_s || q >= first_e || *q != ' ')
            Py_RETURN_NONE;
        u_e = q;
        v_s = q + 1;
        v_e = first_e;
        if (!is_version(v_s, v_e) || !plain_request_uri(u_s, u_e))
            Py_RETURN_NONE;
        if (count[H_MAX_FORWARDS] == 0)
            Py_RETURN_NONE;
        if (ce - cseq_method != m_e - m_s || memcmp(cseq_method, m_s, (size_t)(m_e - m_s)) != 0)
            Py_RETURN_NONE;
        is_request = 1;
    }

    /* The envelope: tags and the top Via, where their shape is the usual one. */
    PyObject *from_tag = NULL, *to_tag = NULL, *branch = NULL, *sent_by = NULL;
    int decided = decide_tag(vs[H_FROM], ve[H_FROM], &from_tag);
    if (decided <= 0)
        return decided < 0 ? NULL : Py_NewRef(Py_None);
    decided = decide_tag(vs[H_TO], ve[H_TO], &to_tag);
    if (decided <= 0) {
        Py_DECREF(from_tag);
        return decided < 0 ? NULL : Py_NewRef(Py_None);
    }
    decided = decide_via(vs[H_VIA], ve[H_VIA], &branch, &sent_by);
    if (decided <= 0) {
        Py_DECREF(from_tag);
        Py_DECREF(to_tag);
        return decided < 0 ? NULL : Py_NewRef(Py_None);
    }

    PyObject *raw, *trailing;
    if (end == n) {
        raw = Py_NewRef(arg);
        trailing = Py_NewRef(empty_bytes);
    } else {
        raw = PyBytes_FromStringAndSize(buf, end);
        trailing = PyBytes_FromStringAndSize(buf + end, n - end);
    }
    PyObject *headers = NULL, *cseq = NULL;
    if (raw != NULL) {
        PyObject *hv[4] = {Py_NewRef(raw), PyLong_FromSsize_t(first_end + 1), PyLong_FromSsize_t(head_end),
                           Py_NewRef(Py_True)};
        if (hv[1] == NULL || hv[2] == NULL) {
            for (int i = 0; i < 4; i++)
                Py_XDECREF(hv[i]);
        } else {
            headers = make(headers_type, headers_slots, hv, 4);
        }
    }
    /* the value is ASCII here: digits, blanks and a token */
    PyObject *cseq_text = PyUnicode_FromStringAndSize(c, ce - c);
    if (cseq_text != NULL) {
        cseq = PyDict_GetItemWithError(cseq_cache, cseq_text); /* borrowed */
        if (cseq != NULL) {
            Py_INCREF(cseq);
        } else if (!PyErr_Occurred()) {
            PyObject *cv[2] = {PyLong_FromLongLong(seq), word(cseq_method, ce - cseq_method)};
            if (cv[0] == NULL || cv[1] == NULL) {
                Py_XDECREF(cv[0]);
                Py_XDECREF(cv[1]);
            } else if ((cseq = make(cseq_type, cseq_slots, cv, 2)) != NULL &&
                       remember(cseq_cache, CSEQ_CACHE_MAX, cseq_text, cseq) < 0) {
                Py_CLEAR(cseq);
            }
        }
        Py_DECREF(cseq_text);
    }
    PyObject *values[17] = {
        headers,
        raw,
        PyLong_FromSsize_t(body_start),
        ident(PyUnicode_DecodeUTF8(vs[H_CALL_ID], ve[H_CALL_ID] - vs[H_CALL_ID], "replace")),
        cseq,
        ident(from_tag),
        ident(to_tag),
        ident(branch),
        ident(sent_by),
        content_length < 0 ? Py_NewRef(Py_None) : PyLong_FromLongLong(content_length),
        Py_NewRef(empty_tuple),
        trailing,
        Py_NewRef(Py_None),
        Py_NewRef(Py_None),
        NULL,
        NULL,
        NULL,
    };
    PyObject **tail_slots;
    PyTypeObject *type;
    if (is_request) {
        values[14] = word(m_s, m_e - m_s);
        values[15] = PyUnicode_DecodeUTF8(u_s, u_e - u_s, "replace");
        values[16] = word(v_s, v_e - v_s);
        tail_slots = request_slots;
        type = request_type;
    } else {
        values[14] = PyLong_FromLong(status);
        values[15] = word(r_s, first_e - r_s);
        values[16] = word(v_s, v_e - v_s);
        tail_slots = response_slots;
        type = response_type;
    }
    int missing = 0;
    for (int i = 0; i < 17; i++)
        missing |= values[i] == NULL;
    if (missing) {
        for (int i = 0; i < 17; i++)
            Py_XDECREF(values[i]);
        return NULL;
    }
    PyObject *message = make(type, base_slots, values, 14);
    if (message == NULL) {
        for (int i = 14; i < 17; i++)
            Py_DECREF(values[i]);
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        int failed = Py_TYPE(tail_slots[i])->tp_descr_set(tail_slots[i], message, values[14 + i]);
        Py_DECREF(values[14 + i]);
        if (failed) {
            for (int k = i + 1; k < 3; k++)
                Py_DECREF(values[14 + k]);
            Py_DECREF(message);
            return NULL;
        }
    }
    return message;
}

/* ---- call_id: the Call-ID alone, for sharing out a capture's messages by it ----
 *
 * call_id(data) -> str | None
 *
 * The Call-ID parse_message(data) gives (when it gives a message), read without parsing the
 * rest: where scan() reads the header section (plain_section, and every header line a token
 * name and a colon), the value of its first Call-ID or i header field, blanks stripped, decoded
 * as scan() decodes it; parse() and the Python code that reads scan()'s result take that same
 * value. None where the section is another shape or the value is missing or empty: then
 * nothing is said, and only parsing tells (tests/test_sip_scan.py holds the two together).
 */
static PyObject *call_id(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyBytes_CheckExact(arg))
        Py_RETURN_NONE;
    const char *buf = PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    Py_ssize_t head_end = plain_section(buf, n);
    if (head_end < 0)
        Py_RETURN_NONE;
    const char *nl = memchr(buf, '\n', (size_t)head_end);
    Py_ssize_t pos = nl == NULL ? head_end : (nl - buf) + 1;
    const char *value = NULL, *value_end = NULL;
    while (pos < head_end) {
        const char *line = buf + pos;
        char lower[7];
        Py_ssize_t len;
        Py_ssize_t name_len = header_name(line, head_end - pos, lower, (Py_ssize_t)sizeof(lower), &len);
        if (name_len < 0)
            Py_RETURN_NONE;
        if (value == NULL &&
            ((name_len == 1 && lower[0] == 'i') || (name_len == 7 && memcmp(lower, "call-id", 7) == 0))) {
            header_value(line, name_len, len, &value, &value_end);
            if (value == value_end)
                Py_RETURN_NONE; /* empty: parse_message says so, with no Call-ID */
        }
        pos += len + 2;
    }
    if (value == NULL)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(value, value_end - value, "replace");
}

static PyMethodDef methods[] = {
    {"call_id", call_id, METH_O, "The Call-ID parse_message would give, read alone, or None (not known)."},
    {"scan", scan, METH_VARARGS, "The header scan of a plain SIP message, or None (see sipflow.sip.parse)."},
    {"parse", parse, METH_O, "The message parse_message gives for a message without a defect, or None."},
    {"configure", configure, METH_VARARGS, "The classes parse() makes: SipRequest, SipResponse, Headers, CSeq."},
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
