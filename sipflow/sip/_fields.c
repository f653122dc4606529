/* The header lookup of sipflow.sip.message.Headers on a plain header section, compiled.
 *
 * find(data, start, end, names, first) -> (index, value) or None        when first
 *                                      -> [(index, value), ...]         otherwise
 *
 * What the Python lookup's pattern finds in data[start:end] (tests/test_header_lookup.py holds
 * the two to it): at each line start (start itself when data[start-1] is LF or start is 0, and
 * after each LF), a name equal in ASCII case to one of `names` (a tuple of lower-case bytes:
 * tokens, so none holds a blank or a colon), then blanks [ \t\x0b\x0c\r\x1c-\x1f]*, then a colon,
 * then [ \t]*: `index` is the name's position in `names` and `value` the rest of the line up to
 * the LF (one CR before it is the line end's) without the SP and HTAB around it, decoded as UTF-8
 * with U+FFFD for invalid octets.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int is_name_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == 0x0b || c == 0x0c || c == '\r' || (c >= 0x1c && c <= 0x1f);
}

static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

/* The position in `names` of data[s:e] (ASCII case ignored), or -1. */
static Py_ssize_t name_index(const char *s, const char *e, PyObject *names)
{
    Py_ssize_t n = e - s, count = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(name) || PyBytes_GET_SIZE(name) != n)
            continue;
        const char *want = PyBytes_AS_STRING(name);
        Py_ssize_t k = 0;
        while (k < n && lower((unsigned char)s[k]) == (unsigned char)want[k])
            k++;
        if (k == n)
            return i;
    }
    return -1;
}

static PyObject *find(PyObject *self, PyObject *args)
{
    PyObject *data, *names;
    Py_ssize_t start, end;
    int first;
    if (!PyArg_ParseTuple(args, "O!nnO!p", &PyBytes_Type, &data, &start, &end, &PyTuple_Type, &names, &first))
        return NULL;
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    /* As re's search(data, pos, endpos) takes them. */
    if (end > size)
        end = size;
    if (end < 0)
        end = 0;
    if (start < 0)
        start = 0;
    if (start > end)
        start = end;
    PyObject *out = NULL;
    if (!first && (out = PyList_New(0)) == NULL)
        return NULL;
    const char *limit = buf + end;
    const char *line = buf + start;
    if (start > 0 && buf[start - 1] != '\n') { /* not a line start: the next one is */
        line = start < end ? memchr(line, '\n', (size_t)(limit - line)) : NULL;
        line = line != NULL ? line + 1 : limit;
    }
    while (line < limit) {
        const char *p = line;
        while (p < limit && *p != ':' && *p != '\n' && !is_name_blank((unsigned char)*p))
            p++;
        const char *name_end = p;
        while (p < limit && is_name_blank((unsigned char)*p))
            p++;
        Py_ssize_t index = -1;
        if (p < limit && *p == ':' && name_end > line)
            index = name_index(line, name_end, names);
        if (index >= 0) {
            p++;
            while (p < limit && (*p == ' ' || *p == '\t'))
                p++;
            const char *lf = memchr(p, '\n', (size_t)(limit - p));
            const char *v_end = lf != NULL ? lf : limit;
            if (lf != NULL && v_end > buf && v_end[-1] == '\r')
                v_end--;
            const char *v = p;
            while (v < v_end && (*v == ' ' || *v == '\t'))
                v++;
            while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
                v_end--;
            PyObject *value = PyUnicode_DecodeUTF8(v, v_end - v, "replace");
            if (value == NULL)
                goto fail;
            PyObject *pair = Py_BuildValue("(nN)", index, value);
            if (pair == NULL)
                goto fail;
            if (first)
                return pair;
            int failed = PyList_Append(out, pair);
            Py_DECREF(pair);
            if (failed)
                goto fail;
            if (lf == NULL)
                break;
            line = lf + 1;
            continue;
        }
        const char *lf = memchr(line, '\n', (size_t)(limit - line));
        if (lf == NULL)
            break;
        line = lf + 1;
    }
    if (first)
        Py_RETURN_NONE;
    return out;

fail:
    Py_XDECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"find", find, METH_VARARGS, "The header lines of a plain header section called one of names."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sipflow.sip._fields", "Compiled header lookup of sipflow.sip.message.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fields(void) { return PyModule_Create(&module); }
