/* The light and letters-only forms of a plain text, in one pass (webhooks/matching/normalise.py).
 *
 * A text is plain when none of its characters is special (normalise._Tables.special: a character
 * NFKC changes into none or several, a mark, a Hangul jamo, an invisible character, one the
 * look-alike table folds, a lone surrogate). Each character of a plain text then folds on its own,
 * one for one: its light form is the table's character (NFKC, then case folding), and the
 * letters-only form keeps the light characters of categories L, N and M.
 *
 * In Python that is five C passes over the text, each with its own objects (a search for special
 * characters, NFKC of the few characters it changes, case folding, a join and a substitution of
 * separators): about 9 µs for 170 characters of mixed Chinese and English. Here it is one pass.
 *
 * The tables come from Python (normalise._Tables, built from unicodedata) through init(), so the
 * two implementations share one definition; tests/test_matching.py compares them.
 * BMP text only: a text stored 4 bytes wide may hold astral characters, and takes the Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define BMP 0x10000

static PyObject *tables;          /* (special, mapping, word): bytes objects kept alive */
static const unsigned char *special_bits; /* BMP bitmap: not plain */
static const Py_UCS4 *mapping;    /* BMP code point -> its light code point */
static const unsigned char *word_bits;    /* BMP bitmap: categories L, N, M */

#define HAS(bits, c) ((bits)[(c) >> 3] & (1u << ((c) & 7)))

static PyObject *
init(PyObject *self, PyObject *args)
{
    PyObject *special, *map, *word;
    if (!PyArg_ParseTuple(args, "SSS:init", &special, &map, &word))
        return NULL;
    if (PyBytes_GET_SIZE(special) != BMP / 8 || PyBytes_GET_SIZE(word) != BMP / 8 ||
        PyBytes_GET_SIZE(map) != BMP * (Py_ssize_t)sizeof(Py_UCS4)) {
        PyErr_SetString(PyExc_ValueError, "init: two BMP bitmaps and a BMP map of UCS4");
        return NULL;
    }
    PyObject *kept = PyTuple_Pack(3, special, map, word);
    if (kept == NULL)
        return NULL;
    Py_XSETREF(tables, kept);
    special_bits = (const unsigned char *)PyBytes_AS_STRING(special);
    mapping = (const Py_UCS4 *)PyBytes_AS_STRING(map);
    word_bits = (const unsigned char *)PyBytes_AS_STRING(word);
    Py_RETURN_NONE;
}

/* Fills light[0..n) and strict[0..*ns); returns 0, or 1 when the text is not plain. */
#define FOLD_LOOP(TYPE)                                                     \
    do {                                                                    \
        const TYPE *src = (const TYPE *)data;                               \
        for (Py_ssize_t i = 0; i < n; i++) {                                \
            Py_UCS4 c = src[i];                                             \
            if (HAS(special_bits, c))                                       \
                return 1;                                                   \
            Py_UCS4 l = mapping[c];                                         \
            if (l >= BMP)                                                   \
                return 1;                                                   \
            light[i] = l;                                                   \
            if (HAS(word_bits, l))                                          \
                strict[(*ns)++] = l;                                        \
        }                                                                   \
    } while (0)

static int
fold(int kind, const void *data, Py_ssize_t n, Py_UCS4 *light, Py_UCS4 *strict, Py_ssize_t *ns)
{
    if (kind == PyUnicode_1BYTE_KIND)
        FOLD_LOOP(Py_UCS1);
    else
        FOLD_LOOP(Py_UCS2);
    return 0;
}

static PyObject *
light_strict(PyObject *self, PyObject *text)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "light_strict: a str");
        return NULL;
    }
    if (tables == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "light_strict: init() first");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0)
        return NULL;
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_4BYTE_KIND)
        Py_RETURN_NONE;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS4 stack[2 * 512];
    Py_UCS4 *buf = n <= 512 ? stack : PyMem_New(Py_UCS4, 2 * (size_t)n);
    if (buf == NULL)
        return PyErr_NoMemory();
    Py_UCS4 *light = buf, *strict = buf + n;
    Py_ssize_t ns = 0;
    PyObject *result = NULL;
    if (fold(kind, PyUnicode_DATA(text), n, light, strict, &ns)) {
        result = Py_NewRef(Py_None);
    }
    else {
        PyObject *ls = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, light, n);
        PyObject *ss = ls ? PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, strict, ns) : NULL;
        if (ss != NULL)
            result = PyTuple_Pack(2, ls, ss);
        Py_XDECREF(ls);
        Py_XDECREF(ss);
    }
    if (buf != stack)
        PyMem_Free(buf);
    return result;
}

static PyMethodDef methods[] = {
    {"init", init, METH_VARARGS,
     "init(special, mapping, word): the BMP tables (bitmaps of 8,192 bytes, a map of 65,536 UCS4)."},
    {"light_strict", light_strict, METH_O,
     "light_strict(text) -> (light, strict), or None when the text is not plain or not BMP-only."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_plainfold", "One-pass folding of plain text (normalise.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__plainfold(void)
{
    return PyModule_Create(&module);
}
