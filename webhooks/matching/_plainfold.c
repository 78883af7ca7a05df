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
 * The table comes from Python (normalise._plainfold_table, built from the same tables as the
 * Python paths) through init(); tests/test_matching.py compares the two.
 * BMP text only: a text stored 4 bytes wide may hold astral characters, and takes the Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define BMP 0x10000
#define SPECIAL (1u << 16) /* not plain: the Python paths fold this text */
#define WORD (1u << 17)    /* its light character is a letter, digit or mark */

/* One entry per BMP code point, in two levels so that the blocks of 256 that fold to
 * themselves (all of CJK) share one block and stay in cache: a request's text is read
 * cold, between the server's other work: 34 cache misses a 172-character text against 77
 * with one map of 256 KB (cachegrind, 1 MB last-level cache, evicted between texts).
 * entry = (light - c) mod 2^16 | SPECIAL | WORD. */
static PyObject *tables;          /* (index, blocks): bytes objects kept alive */
static const uint16_t *block_of;  /* 256 block numbers, by high byte */
static const uint32_t *blocks;    /* the blocks, 256 entries each */

static PyObject *
init(PyObject *self, PyObject *args)
{
    PyObject *index, *table;
    if (!PyArg_ParseTuple(args, "SS:init", &index, &table))
        return NULL;
    Py_ssize_t count = PyBytes_GET_SIZE(table) / (256 * (Py_ssize_t)sizeof(uint32_t));
    if (PyBytes_GET_SIZE(index) != 256 * (Py_ssize_t)sizeof(uint16_t) ||
        PyBytes_GET_SIZE(table) != count * 256 * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "init: 256 uint16 block numbers, blocks of 256 uint32");
        return NULL;
    }
    const uint16_t *numbers = (const uint16_t *)PyBytes_AS_STRING(index);
    for (int i = 0; i < 256; i++) {
        if (numbers[i] >= count) {
            PyErr_SetString(PyExc_ValueError, "init: a block number past the blocks");
            return NULL;
        }
    }
    PyObject *kept = PyTuple_Pack(2, index, table);
    if (kept == NULL)
        return NULL;
    Py_XSETREF(tables, kept);
    block_of = numbers;
    blocks = (const uint32_t *)PyBytes_AS_STRING(table);
    Py_RETURN_NONE;
}

/* Fills light[0..n) and strict[0..*ns); returns 0, or 1 when the text is not plain. */
#define FOLD_LOOP(TYPE)                                                     \
    do {                                                                    \
        const TYPE *src = (const TYPE *)data;                               \
        for (Py_ssize_t i = 0; i < n; i++) {                                \
            Py_UCS4 c = src[i];                                             \
            uint32_t e = blocks[((uint32_t)block_of[c >> 8] << 8) | (c & 0xFF)]; \
            if (e & SPECIAL)                                                \
                return 1;                                                   \
            Py_UCS4 l = (c + (e & 0xFFFF)) & 0xFFFF;                        \
            light[i] = l;                                                   \
            if (e & WORD)                                                   \
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
     "init(index, blocks): the BMP table in two levels (normalise._plainfold_table)."},
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
