/* Sparse (CSR) times dense products for the "matrix" backend, with AVX-512 / AVX2 kernels.
 *
 * y[r, c] = sum_j data[j] * x[indices[j], c]   for rows r in [r0, r1) and all k columns c.
 *
 * x is (n_in, k) row-major: the batch is the fast axis, so every non-zero reads one contiguous
 * row of k values and the sum over a matrix row stays in vector registers (SciPy's csr_matvecs
 * reads and writes its accumulators in memory with SSE2 code, 2-4x slower here).  The GIL is
 * released: the Python side runs row blocks on several threads.
 *
 * The ISA is chosen at run time (__builtin_cpu_supports), so one build runs on any x86-64 CPU;
 * on other CPUs, or without AVX2, `best_level()` is 0 and the portable kernel runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define DEI_X86 1
#include <immintrin.h>
#endif

typedef struct {
    const int32_t *indptr;
    const int32_t *indices;
    const void *data;
    const void *x;
    void *y;
    int64_t r0, r1, k; /* rows [r0, r1) of y (n_out, k) and x (n_in, k), both row-major */
} spmm_args;

/* Portable kernel: k == 1 is a sparse matrix-vector product with four partial sums (one chain
 * of dependent additions would be latency bound); otherwise a chunk of up to 64 columns is
 * accumulated in a small array that the compiler vectorises with the baseline ISA. */
#define DEFINE_GENERIC(NAME, T)                                                                   \
    static void NAME(const spmm_args *a)                                                          \
    {                                                                                             \
        const T *data = (const T *)a->data, *x = (const T *)a->x;                                 \
        T *y = (T *)a->y;                                                                         \
        const int64_t k = a->k;                                                                   \
        for (int64_t r = a->r0; r < a->r1; ++r) {                                                 \
            const int64_t s = a->indptr[r], e = a->indptr[r + 1];                                 \
            if (k == 1) {                                                                         \
                T p0 = 0, p1 = 0, p2 = 0, p3 = 0;                                                 \
                int64_t j = s;                                                                    \
                for (; j + 3 < e; j += 4) {                                                       \
                    p0 += data[j] * x[a->indices[j]];                                             \
                    p1 += data[j + 1] * x[a->indices[j + 1]];                                     \
                    p2 += data[j + 2] * x[a->indices[j + 2]];                                     \
                    p3 += data[j + 3] * x[a->indices[j + 3]];                                     \
                }                                                                                 \
                for (; j < e; ++j) p0 += data[j] * x[a->indices[j]];                              \
                y[r] = (p0 + p1) + (p2 + p3);                                                     \
                continue;                                                                         \
            }                                                                                     \
            for (int64_t c = 0; c < k; c += 64) {                                                 \
                const int64_t nc = k - c < 64 ? k - c : 64;                                       \
                T acc[64] = {0};                                                                  \
                for (int64_t j = s; j < e; ++j) {                                                 \
                    const T v = data[j];                                                          \
                    const T *xr = x + (int64_t)a->indices[j] * k + c;                             \
                    for (int64_t t = 0; t < nc; ++t) acc[t] += v * xr[t];                         \
                }                                                                                 \
                memcpy(y + r * k + c, acc, (size_t)nc * sizeof(T));                               \
            }                                                                                     \
        }                                                                                         \
    }
DEFINE_GENERIC(spmm_f32_generic, float)
DEFINE_GENERIC(spmm_f64_generic, double)

#ifdef DEI_X86

/* SIMD kernel, one definition per (ISA, dtype) through the macros below.  A column chunk of up to
 * two vectors is summed in registers over the row's non-zeros, unrolled by two non-zeros for
 * independent FMA chains; the chunk's tail is handled with masked loads and stores, so any k
 * works.  A chunk that fits one vector uses a one-register loop (no wasted masked loads). */
#define DEFINE_SIMD(NAME, TARGET, T, V, L, M, MASK, ZERO, SET1, FMA, LOAD, ADD, STORE)            \
    __attribute__((target(TARGET))) static void NAME(const spmm_args *a)                          \
    {                                                                                             \
        const T *data = (const T *)a->data, *x = (const T *)a->x;                                 \
        T *y = (T *)a->y;                                                                         \
        const int64_t k = a->k;                                                                   \
        for (int64_t c = 0; c < k; c += 2 * (L)) {                                                \
            const int64_t nc = k - c < 2 * (L) ? k - c : 2 * (L);                                 \
            const M m0 = MASK(nc), m1 = MASK(nc - (L));                                           \
            for (int64_t r = a->r0; r < a->r1; ++r) {                                             \
                int64_t j = a->indptr[r];                                                         \
                const int64_t e = a->indptr[r + 1];                                               \
                T *yr = y + r * k + c;                                                            \
                V p0 = ZERO(), q0 = ZERO();                                                       \
                if (nc <= (L)) {                                                                  \
                    for (; j + 1 < e; j += 2) {                                                   \
                        p0 = FMA(SET1(data[j]), LOAD(m0, x + (int64_t)a->indices[j] * k + c),     \
                                 p0);                                                             \
                        q0 = FMA(SET1(data[j + 1]),                                               \
                                 LOAD(m0, x + (int64_t)a->indices[j + 1] * k + c), q0);           \
                    }                                                                             \
                    if (j < e)                                                                    \
                        p0 = FMA(SET1(data[j]), LOAD(m0, x + (int64_t)a->indices[j] * k + c),     \
                                 p0);                                                             \
                    STORE(m0, yr, ADD(p0, q0));                                                   \
                    continue;                                                                     \
                }                                                                                 \
                V p1 = ZERO(), q1 = ZERO();                                                       \
                for (; j + 1 < e; j += 2) {                                                       \
                    const T *xa = x + (int64_t)a->indices[j] * k + c;                             \
                    const T *xb = x + (int64_t)a->indices[j + 1] * k + c;                         \
                    const V va = SET1(data[j]), vb = SET1(data[j + 1]);                           \
                    p0 = FMA(va, LOAD(m0, xa), p0);                                               \
                    p1 = FMA(va, LOAD(m1, xa + (L)), p1);                                         \
                    q0 = FMA(vb, LOAD(m0, xb), q0);                                               \
                    q1 = FMA(vb, LOAD(m1, xb + (L)), q1);                                         \
                }                                                                                 \
                if (j < e) {                                                                      \
                    const T *xa = x + (int64_t)a->indices[j] * k + c;                             \
                    const V va = SET1(data[j]);                                                   \
                    p0 = FMA(va, LOAD(m0, xa), p0);                                               \
                    p1 = FMA(va, LOAD(m1, xa + (L)), p1);                                         \
                }                                                                                 \
                STORE(m0, yr, ADD(p0, q0));                                                       \
                STORE(m1, yr + (L), ADD(p1, q1));                                                 \
            }                                                                                     \
        }                                                                                         \
    }

/* Masks of the first n lanes (n may be <= 0 or > lanes). */
#define CLAMP(n, L) ((n) <= 0 ? 0 : ((n) >= (L) ? (L) : (n)))
#define MASK16(n) ((__mmask16)((1u << CLAMP(n, 16)) - 1u))
#define MASK8(n) ((__mmask8)((1u << CLAMP(n, 8)) - 1u))

__attribute__((target("avx2"))) static inline __m256i mask8x32(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)CLAMP(n, 8)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
__attribute__((target("avx2"))) static inline __m256i mask4x64(int64_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(CLAMP(n, 4)), _mm256_setr_epi64x(0, 1, 2, 3));
}

#define LOAD512PS(m, p) _mm512_maskz_loadu_ps(m, p)
#define STORE512PS(m, p, v) _mm512_mask_storeu_ps(p, m, v)
#define LOAD512PD(m, p) _mm512_maskz_loadu_pd(m, p)
#define STORE512PD(m, p, v) _mm512_mask_storeu_pd(p, m, v)
#define LOAD256PS(m, p) _mm256_maskload_ps(p, m)
#define STORE256PS(m, p, v) _mm256_maskstore_ps(p, m, v)
#define LOAD256PD(m, p) _mm256_maskload_pd(p, m)
#define STORE256PD(m, p, v) _mm256_maskstore_pd(p, m, v)

DEFINE_SIMD(spmm_f32_avx512, "avx512f", float, __m512, 16, __mmask16, MASK16, _mm512_setzero_ps,
            _mm512_set1_ps, _mm512_fmadd_ps, LOAD512PS, _mm512_add_ps, STORE512PS)
DEFINE_SIMD(spmm_f64_avx512, "avx512f", double, __m512d, 8, __mmask8, MASK8, _mm512_setzero_pd,
            _mm512_set1_pd, _mm512_fmadd_pd, LOAD512PD, _mm512_add_pd, STORE512PD)
DEFINE_SIMD(spmm_f32_avx2, "avx2,fma", float, __m256, 8, __m256i, mask8x32, _mm256_setzero_ps,
            _mm256_set1_ps, _mm256_fmadd_ps, LOAD256PS, _mm256_add_ps, STORE256PS)
DEFINE_SIMD(spmm_f64_avx2, "avx2,fma", double, __m256d, 4, __m256i, mask4x64, _mm256_setzero_pd,
            _mm256_set1_pd, _mm256_fmadd_pd, LOAD256PD, _mm256_add_pd, STORE256PD)

#endif /* DEI_X86 */

/* 2 = AVX-512F, 1 = AVX2 + FMA, 0 = neither (the portable kernel only). */
static int cpu_level(void)
{
#ifdef DEI_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

static PyObject *py_best_level(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyLong_FromLong(cpu_level());
}

typedef void (*kernel_fn)(const spmm_args *);

static kernel_fn pick_kernel(int level, Py_ssize_t itemsize, Py_ssize_t k)
{
    /* Below 4 columns the vector kernels mostly load masked-off lanes. */
#ifdef DEI_X86
    if (k >= 4 && level == 2) return itemsize == 4 ? spmm_f32_avx512 : spmm_f64_avx512;
    if (k >= 4 && level == 1) return itemsize == 4 ? spmm_f32_avx2 : spmm_f64_avx2;
#else
    (void)level;
    (void)k;
#endif
    return itemsize == 4 ? spmm_f32_generic : spmm_f64_generic;
}

/* spmm(indptr, indices, data, x, y, bounds, k, itemsize, level): the row blocks
 * [bounds[i], bounds[i+1]) run in parallel, one per thread of an OpenMP team (one block: on the
 * calling thread; without OpenMP the blocks run one after the other).  Built with OpenMP,
 * this loads as the libgomp that torch already loaded (same soname), so the team is torch's own
 * intra-op thread pool: threads that are still spinning after torch's last parallel region take
 * the blocks at once, instead of competing for the cores with a second pool. */
static PyObject *py_spmm(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer ip, ix, da, xb, yb, bb;
    Py_ssize_t k, itemsize;
    int level;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*y*nni", &ip, &ix, &da, &xb, &yb, &bb, &k, &itemsize,
                          &level))
        return NULL;
    const char *err = NULL;
    const int64_t *bounds = (const int64_t *)bb.buf;
    const Py_ssize_t n_bounds = bb.len / 8, n_ptr = ip.len / 4, nnz = ix.len / 4;
    /* Sizes are compared in elements, by division, so that no product can overflow. */
    const Py_ssize_t x_elems = xb.len / (itemsize == 8 ? 8 : 4);
    const Py_ssize_t y_elems = yb.len / (itemsize == 8 ? 8 : 4);
    if (itemsize != 4 && itemsize != 8) err = "itemsize must be 4 (float32) or 8 (float64)";
    else if (level < 0 || level > cpu_level()) err = "this CPU does not support the requested level";
    else if (n_bounds < 2 || n_bounds > 65537) err = "bounds needs 2 to 65537 entries";
    else if (k < 1) err = "need k >= 1 columns";
    else if (da.len / itemsize != nnz || da.len % itemsize) err = "data and indices differ in length";
    else if (xb.len % itemsize || x_elems % k) err = "x is not a whole number of rows of k values";
    if (!err) {
        for (Py_ssize_t i = 0; i + 1 < n_bounds && !err; ++i)
            if (bounds[i] < 0 || bounds[i + 1] < bounds[i] || bounds[i + 1] + 1 > n_ptr)
                err = "bounds must increase and stay inside indptr";
        if (!err && bounds[n_bounds - 1] > y_elems / k) err = "y has fewer rows than the last bound";
    }
    if (!err) {
        /* Every row the kernel reads must point inside indices: 0 <= ptr[r] <= ptr[r+1] <= nnz. */
        const int32_t *ptr = (const int32_t *)ip.buf;
        if (ptr[bounds[0]] < 0) err = "indptr points outside indices";
        for (int64_t r = bounds[0]; r < bounds[n_bounds - 1] && !err; ++r)
            if (ptr[r + 1] < ptr[r] || ptr[r + 1] > nnz) err = "indptr points outside indices";
    }
    if (!err) {
        const kernel_fn fn = pick_kernel(level, itemsize, k);
        const int n_blocks = (int)(n_bounds - 1);
        spmm_args a = {(const int32_t *)ip.buf, (const int32_t *)ix.buf, da.buf, xb.buf,
                       yb.buf, 0, 0, k};
        Py_BEGIN_ALLOW_THREADS
#ifdef _OPENMP
#pragma omp parallel for num_threads(n_blocks) schedule(static, 1) firstprivate(a) if (n_blocks > 1)
#endif
        for (int i = 0; i < n_blocks; ++i) {
            a.r0 = bounds[i];
            a.r1 = bounds[i + 1];
            fn(&a);
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&ip);
    PyBuffer_Release(&ix);
    PyBuffer_Release(&da);
    PyBuffer_Release(&xb);
    PyBuffer_Release(&yb);
    PyBuffer_Release(&bb);
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_has_openmp(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
#ifdef _OPENMP
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"best_level", py_best_level, METH_NOARGS,
     "Fastest kernel this CPU runs: 2 (AVX-512F), 1 (AVX2+FMA) or 0 (portable C)."},
    {"spmm", py_spmm, METH_VARARGS,
     "spmm(indptr, indices, data, x, y, bounds, k, itemsize, level): y = A @ x on the rows "
     "[bounds[0], bounds[-1]) of CSR A (int32 indptr/indices), for row-major x (n_in, k) and "
     "y (n_out, k); the blocks [bounds[i], bounds[i+1]) (int64) run in parallel on an OpenMP "
     "team. Releases the GIL. indices must be < len(x) // k: the caller checks this once."},
    {"has_openmp", py_has_openmp, METH_NOARGS, "Whether spmm runs its blocks in parallel."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_spmm",
    .m_doc = "CSR times dense kernels (AVX-512, AVX2, portable C) for deepinv_ei's matrix backend.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__spmm(void) { return PyModule_Create(&module); }
