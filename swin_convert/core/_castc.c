/* swin_convert.core._castc: the floating-point casts of core/cast.py in one pass over a buffer.
 *
 *     convert(src, src_dtype, dst, dst_dtype)     # dtypes: "F64", "F32", "F16", "BF16"
 *
 * `src` is any contiguous buffer of little-endian elements of `src_dtype`; `dst` a writable contiguous
 * buffer of exactly as many elements of `dst_dtype`. The loop runs without the GIL, so a few threads
 * convert at once. Optional: core/cast.py does the same with numpy when this module is not built, and
 * tests/test_dtype.py holds both to torch's casts and to each other, bit for bit (NaN payloads too):
 *
 *   fp32 -> bf16  (u + 0x7FFF + ((u >> 16) & 1)) >> 16, c10's round_to_nearest_even; NaN -> 0xFFFF
 *   fp32 -> fp16  IEEE round to nearest even, subnormals kept, overflow to inf;
 *                 NaN -> sign | 0x7E00 | the top 9 payload bits (what the F16C instruction writes)
 *   fp16 -> fp32, bf16 -> fp32   exact (a NaN keeps its payload)
 *   fp64 -> fp32  the C conversion (round to nearest even); others go through fp32, as torch does
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "safetensors data are little-endian: this module assumes a little-endian machine"
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")          /* the loops below vectorise (Python's own flags may say -O2) */
#endif

static inline uint32_t load32(const unsigned char *p) { uint32_t u; memcpy(&u, p, 4); return u; }
static inline uint16_t load16(const unsigned char *p) { uint16_t u; memcpy(&u, p, 2); return u; }
static inline void store32(unsigned char *p, uint32_t u) { memcpy(p, &u, 4); }
static inline void store16(unsigned char *p, uint16_t u) { memcpy(p, &u, 2); }

static inline uint16_t f32_bf16(uint32_t u) {
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(((u & 0x7FFFFFFFu) > 0x7F800000u) ? 0xFFFFu : r);
}

static inline uint16_t f32_f16(uint32_t u) {
    uint32_t sign = (u >> 16) & 0x8000u, f = u & 0x7FFFFFFFu;
    /* below 2^-14 (fp16 subnormals and zero): adding 0.5f rounds at 2^-24, fp16's subnormal step */
    float v, half = 0.5f;
    uint32_t hb, sb;
    memcpy(&v, &f, 4);
    memcpy(&hb, &half, 4);
    v += half;
    memcpy(&sb, &v, 4);
    uint32_t sub = sb - hb;
    /* normal range: rebias the exponent (-112 << 23) and round at bit 13 (a carry may reach inf) */
    uint32_t norm = (f + 0xC8000FFFu + ((f >> 13) & 1u)) >> 13;
    uint32_t big = (f > 0x7F800000u) ? (0x7E00u | ((f >> 13) & 0x3FFu)) : 0x7C00u;
    uint32_t o = (f >= 0x47800000u) ? big : (f < 0x38800000u ? sub : norm);
    return (uint16_t)(o | sign);
}

static inline uint32_t f16_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1Fu)
        return sign | 0x7F800000u | (m << 13);
    if (e != 0)
        return sign | ((e + 112u) << 23) | (m << 13);
    if (m == 0)
        return sign;
    uint32_t exp = 113u;                       /* a subnormal: normalise it */
    while (!(m & 0x400u)) {
        m <<= 1;
        exp--;
    }
    return sign | (exp << 23) | ((m & 0x3FFu) << 13);
}

static inline uint32_t f64_f32(const unsigned char *p) {
    double d;
    float f;
    uint32_t u;
    memcpy(&d, p, 8);
    f = (float)d;
    memcpy(&u, &f, 4);
    return u;
}

static int code(const char *name) {
    if (!strcmp(name, "F64")) return 8;
    if (!strcmp(name, "F32")) return 4;
    if (!strcmp(name, "F16")) return 2;
    if (!strcmp(name, "BF16")) return 3;       /* 2 bytes, like F16 */
    return 0;
}

static int width(int c) { return c == 3 ? 2 : c; }

/* every element of s (n of them, type a) into d (type b); a != b, b != F64 */
static void run(const unsigned char *s, int a, unsigned char *d, int b, Py_ssize_t n) {
    Py_ssize_t i;
#define LOOP(SW, DW, EXPR) for (i = 0; i < n; i++) { const unsigned char *p = s + (SW) * i; unsigned char *q = d + (DW) * i; EXPR; }
    if (a == 4 && b == 3) LOOP(4, 2, store16(q, f32_bf16(load32(p))))
    else if (a == 4 && b == 2) LOOP(4, 2, store16(q, f32_f16(load32(p))))
    else if (a == 2 && b == 4) LOOP(2, 4, store32(q, f16_f32(load16(p))))
    else if (a == 3 && b == 4) LOOP(2, 4, store32(q, (uint32_t)load16(p) << 16))
    else if (a == 2 && b == 3) LOOP(2, 2, store16(q, f32_bf16(f16_f32(load16(p)))))
    else if (a == 3 && b == 2) LOOP(2, 2, store16(q, f32_f16((uint32_t)load16(p) << 16)))
    else if (a == 8 && b == 4) LOOP(8, 4, store32(q, f64_f32(p)))
    else if (a == 8 && b == 2) LOOP(8, 2, store16(q, f32_f16(f64_f32(p))))
    else if (a == 8 && b == 3) LOOP(8, 2, store16(q, f32_bf16(f64_f32(p))))
#undef LOOP
}

static PyObject *convert(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    const char *sname, *dname;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*sw*s:convert", &src, &sname, &dst, &dname))
        return NULL;
    int a = code(sname), b = code(dname);
    if (!a || !b || b == 8 || a == b) {
        PyErr_Format(PyExc_ValueError, "no cast from %.20s to %.20s", sname, dname);
        goto done;
    }
    if (src.len % width(a)) {
        PyErr_Format(PyExc_ValueError, "%zd bytes are not whole %.20s elements", src.len, sname);
        goto done;
    }
    Py_ssize_t n = src.len / width(a);
    if (dst.len != n * width(b)) {
        PyErr_Format(PyExc_ValueError, "%zd %.20s elements need %zd bytes, not %zd", n, dname,
                     n * width(b), dst.len);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    run((const unsigned char *)src.buf, a, (unsigned char *)dst.buf, b, n);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyMethodDef methods[] = {
    {"convert", convert, METH_VARARGS,
     "convert(src, src_dtype, dst, dst_dtype): cast every element of src into dst (F64/F32/F16/BF16)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_castc",
                                    "One-pass floating-point casts for swin_convert.core.cast.", -1, methods};

PyMODINIT_FUNC PyInit__castc(void) { return PyModule_Create(&module); }
