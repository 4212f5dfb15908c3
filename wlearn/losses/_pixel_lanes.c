/*
 * Per-pixel Sinkhorn on the CPU, every pass fused: the kernel behind
 * wlearn.losses._pixel_sinkhorn.pixel_sinkhorn for float32 and float64 CPU tensors.
 *
 * One entropic transport problem per column b of h and y (C classes each), all with the same
 * Gibbs kernel G = exp(-M/reg). Sixteen columns ("lanes") are iterated together, one vector of
 * 16 values per class, so the (C x C) matrix-vector products run on full SIMD registers and the
 * whole state of the 16 problems stays in the L1 cache between iterations. The iteration is the
 * one of the PyTorch path in _pixel_sinkhorn.py (Sinkhorn-Knopp in the scaling domain, Cuturi
 * 2013 Alg. 1; Frogner et al. 2015 Sec. 4.1), from the same warm start (the one-hot closed
 * form of Liu et al. 2020, Theorem 1) and with the same stopping rule per column:
 *
 *   v = y / (G^T u);  G v;  stop once |h - u * G v|_1 / |h|_1 <= tol (from iteration
 *   first_check on), else u = h / (G v).
 *
 * A lane that stops keeps its own u, v (the plan diag(u) G diag(v) whose error was measured);
 * the others go on until the last lane of the 16 stops. Threads (POSIX) take blocks of columns
 * from a shared counter, so a thread that is descheduled leaves its blocks to the others.
 *
 * The Python module exposes one function, solve(...), that takes the addresses and strides of
 * tensors allocated and checked by the caller (_pixel_sinkhorn.py); it releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LANES 16
#define GRAIN 256 /* columns a thread takes at a time */
#define MAX_THREADS 256

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
/* one clone per x86-64 level, chosen at load time: AVX-512, AVX2 + FMA, baseline SSE2 */
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

typedef struct {
    const void *h, *y, *G, *GT, *GM;
    int64_t h_sc, h_sp, y_sc, y_sp; /* strides (elements): class, column */
    int64_t C, B, max_iter, first_check;
    double tol;
    void *u_out, *v_out; /* (C, B) contiguous; v_out may be NULL */
    void *value_out, *err_out; /* (B,) */
    int32_t *iters_out; /* (B,) */
    atomic_llong next; /* first column not yet taken */
    atomic_int failed;
} job_t;

/* The kernel, written once with T = the element type: sinkhorn_block_<T>(job, a) solves the
 * columns [a, a + LANES) (fewer at the end), with `work` 7 * C vectors of scratch. */
#define DEFINE_KERNEL(T)                                                                          \
    typedef T vec_##T __attribute__((vector_size(LANES * sizeof(T))));                            \
                                                                                                  \
    /* out[i] = sum_j A[i, j] x[j], i < C, one vector (16 columns) per class */                   \
    static inline __attribute__((always_inline)) void matvec_##T(const T *restrict A, const vec_##T *restrict x,                 \
                                  vec_##T *restrict out, int64_t C) {                             \
        int64_t i = 0;                                                                            \
        for (; i + 4 <= C; i += 4) { /* four rows at a time: four independent sums */            \
            vec_##T a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                       \
            const T *r = A + i * C;                                                               \
            for (int64_t j = 0; j < C; j++) {                                                     \
                vec_##T xj = x[j];                                                                \
                a0 += r[j] * xj;                                                                  \
                a1 += r[C + j] * xj;                                                              \
                a2 += r[2 * C + j] * xj;                                                          \
                a3 += r[3 * C + j] * xj;                                                          \
            }                                                                                     \
            out[i] = a0;                                                                          \
            out[i + 1] = a1;                                                                      \
            out[i + 2] = a2;                                                                      \
            out[i + 3] = a3;                                                                      \
        }                                                                                         \
        for (; i < C; i++) {                                                                      \
            vec_##T a0 = {0};                                                                     \
            const T *r = A + i * C;                                                               \
            for (int64_t j = 0; j < C; j++) a0 += r[j] * x[j];                                    \
            out[i] = a0;                                                                          \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    CLONES static void block_##T(job_t *J, int64_t a, vec_##T *work) {                                   \
        const int64_t C = J->C;                                                                   \
        const T *h = J->h, *y = J->y, *G = J->G, *GT = J->GT, *GM = J->GM;                        \
        const T tol = (T)J->tol;                                                                  \
        vec_##T *hl = work, *ql = hl + C, *ul = ql + C, *vl = ul + C, *kl = vl + C;              \
        vec_##T *us = kl + C, *vs = us + C; /* u, v of each lane where it stopped */              \
        const int n = J->B - a < LANES ? (int)(J->B - a) : LANES;                                 \
        int active[LANES], n_active = 0;                                                          \
        /* lanes past the last column repeat the column a (never written back) */                \
        for (int64_t i = 0; i < C; i++)                                                           \
            for (int l = 0; l < LANES; l++) {                                                     \
                int64_t p = a + (l < n ? l : 0);                                                  \
                hl[i][l] = h[i * J->h_sc + p * J->h_sp];                                          \
                ql[i][l] = y[i * J->y_sc + p * J->y_sp];                                          \
            }                                                                                     \
        vec_##T mh = {0}, my = {0}, top = ql[0];                                                  \
        for (int64_t i = 0; i < C; i++) {                                                         \
            mh += hl[i];                                                                          \
            my += ql[i];                                                                          \
            for (int l = 0; l < LANES; l++) top[l] = ql[i][l] > top[l] ? ql[i][l] : top[l];       \
        }                                                                                         \
        /* warm start: v = 1 on the largest entries of y, 0 elsewhere; u = h / (G v) */           \
        for (int64_t i = 0; i < C; i++)                                                           \
            for (int l = 0; l < LANES; l++) vl[i][l] = ql[i][l] == top[l] ? 1 : 0;                \
        matvec_##T(G, vl, kl, C);                                                                 \
        for (int64_t i = 0; i < C; i++) ul[i] = hl[i] / kl[i];                                    \
        for (int l = 0; l < LANES; l++) {                                                         \
            /* L1 column error of the closed-form plan h e_k^T, relative to the mass */          \
            T off = 2 * (1 - top[l] / my[l]);                                                     \
            active[l] = 0;                                                                        \
            if (l >= n) continue;                                                                 \
            if (off <= tol) { /* (almost) one-hot target: the closed form is the answer */        \
                for (int64_t i = 0; i < C; i++) {                                                 \
                    us[i][l] = ul[i][l];                                                          \
                    vs[i][l] = vl[i][l];                                                          \
                }                                                                                 \
                J->iters_out[a + l] = 0;                                                          \
                ((T *)J->err_out)[a + l] = off;                                                   \
            } else {                                                                              \
                active[l] = 1;                                                                    \
                n_active++;                                                                       \
            }                                                                                     \
        }                                                                                         \
        for (int l = n; l < LANES; l++) /* padding lanes: copies of a stopped one */              \
            for (int64_t i = 0; i < C; i++) {                                                     \
                us[i][l] = ul[i][l];                                                              \
                vs[i][l] = vl[i][l];                                                              \
            }                                                                                     \
        vec_##T ratio = mh / my;                                                                  \
        for (int64_t i = 0; i < C; i++) ql[i] *= ratio; /* y rescaled to the mass of h */          \
        for (int64_t it = 1; n_active > 0; it++) {                                                \
            const int last = it >= J->max_iter;                                                   \
            matvec_##T(GT, ul, kl, C); /* G^T u */                                                \
            for (int64_t i = 0; i < C; i++) vl[i] = ql[i] / kl[i];                                \
            matvec_##T(G, vl, kl, C); /* G v */                                                   \
            if (it >= J->first_check || last) {                                                   \
                vec_##T e = {0};                                                                  \
                for (int64_t i = 0; i < C; i++) {                                                 \
                    vec_##T d = hl[i] - ul[i] * kl[i];                                            \
                    for (int l = 0; l < LANES; l++) d[l] = d[l] < 0 ? -d[l] : d[l];               \
                    e += d;                                                                       \
                }                                                                                 \
                e /= mh;                                                                          \
                for (int l = 0; l < n; l++) {                                                     \
                    if (!active[l] || !(e[l] <= tol || last)) continue;                           \
                    for (int64_t i = 0; i < C; i++) {                                             \
                        us[i][l] = ul[i][l];                                                      \
                        vs[i][l] = vl[i][l];                                                      \
                    }                                                                             \
                    J->iters_out[a + l] = (int32_t)it;                                            \
                    ((T *)J->err_out)[a + l] = e[l];                                              \
                    active[l] = 0;                                                                \
                    n_active--;                                                                   \
                }                                                                                 \
            }                                                                                     \
            for (int64_t i = 0; i < C; i++) ul[i] = hl[i] / kl[i];                                \
        }                                                                                         \
        /* transport cost <T, M> = u^T (G * M) v of every lane */                                 \
        matvec_##T(GM, vs, kl, C);                                                                \
        vec_##T value = {0};                                                                      \
        for (int64_t i = 0; i < C; i++) value += us[i] * kl[i];                                   \
        T *u_out = J->u_out, *v_out = J->v_out;                                                   \
        for (int l = 0; l < n; l++) {                                                             \
            ((T *)J->value_out)[a + l] = value[l];                                                \
            for (int64_t i = 0; i < C; i++) u_out[i * J->B + a + l] = us[i][l];                   \
            if (v_out)                                                                            \
                for (int64_t i = 0; i < C; i++) v_out[i * J->B + a + l] = vs[i][l];               \
        }                                                                                         \
    }                                                                                             \
                                                                                                  \
    static void *worker_##T(void *arg) {                                                   \
        job_t *J = arg;                                                                           \
        vec_##T *work = aligned_alloc(sizeof(vec_##T), sizeof(vec_##T) * 7 * J->C);               \
        if (!work) {                                                                              \
            atomic_store(&J->failed, 1);                                                          \
            return NULL;                                                                          \
        }                                                                                         \
        for (;;) {                                                                                \
            int64_t s = atomic_fetch_add(&J->next, GRAIN);                                        \
            if (s >= J->B) break;                                                                 \
            int64_t e = s + GRAIN < J->B ? s + GRAIN : J->B;                                      \
            for (int64_t a = s; a < e; a += LANES) block_##T(J, a, work);                         \
        }                                                                                         \
        free(work);                                                                               \
        return NULL;                                                                              \
    }

DEFINE_KERNEL(float)
DEFINE_KERNEL(double)

/* Run `fn` on `n_threads` threads (this one included); fewer if threads cannot be started. */
static void run_threads(void *(*fn)(void *), job_t *J, int n_threads) {
    pthread_t threads[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < n_threads; t++) {
        if (pthread_create(&threads[started], NULL, fn, J) != 0) break;
        started++;
    }
    fn(J);
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
}

static PyObject *solve(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long h, y, G, GT, GM, u_out, v_out, value_out, err_out, iters_out;
    long long h_sc, h_sp, y_sc, y_sp, C, B, max_iter, first_check;
    double tol;
    int double_precision, n_threads;
    if (!PyArg_ParseTuple(args, "pKLLKLLKKKLLdLLKKKKKi", &double_precision, &h, &h_sc, &h_sp, &y,
                          &y_sc, &y_sp, &G, &GT, &GM, &C, &B, &tol, &max_iter, &first_check,
                          &u_out, &v_out, &value_out, &err_out, &iters_out, &n_threads))
        return NULL;
    if (C < 1 || B < 0 || max_iter < 1 || n_threads < 1) {
        PyErr_Format(PyExc_ValueError,
                     "solve: expected C >= 1, B >= 0, max_iter >= 1 and n_threads >= 1, got "
                     "C=%lld, B=%lld, max_iter=%lld, n_threads=%d",
                     C, B, max_iter, n_threads);
        return NULL;
    }
    job_t J;
    memset(&J, 0, sizeof J);
    J.h = (const void *)(uintptr_t)h;
    J.y = (const void *)(uintptr_t)y;
    J.G = (const void *)(uintptr_t)G;
    J.GT = (const void *)(uintptr_t)GT;
    J.GM = (const void *)(uintptr_t)GM;
    J.h_sc = h_sc, J.h_sp = h_sp, J.y_sc = y_sc, J.y_sp = y_sp;
    J.C = C, J.B = B, J.max_iter = max_iter, J.first_check = first_check, J.tol = tol;
    J.u_out = (void *)(uintptr_t)u_out;
    J.v_out = (void *)(uintptr_t)v_out;
    J.value_out = (void *)(uintptr_t)value_out;
    J.err_out = (void *)(uintptr_t)err_out;
    J.iters_out = (int32_t *)(uintptr_t)iters_out;
    atomic_init(&J.next, 0);
    atomic_init(&J.failed, 0);
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    /* no more threads than blocks of columns */
    long long blocks = (B + GRAIN - 1) / GRAIN;
    if (n_threads > blocks) n_threads = blocks > 0 ? (int)blocks : 1;
    Py_BEGIN_ALLOW_THREADS
    run_threads(double_precision ? worker_double : worker_float, &J, n_threads);
    Py_END_ALLOW_THREADS
    /* a thread without memory takes no column and leaves them to the others */
    if (atomic_load(&J.failed) && atomic_load(&J.next) < B) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"solve", solve, METH_VARARGS,
     "solve(double, h, h_sc, h_sp, y, y_sc, y_sp, G, GT, GM, C, B, tol, max_iter, first_check, "
     "u_out, v_out, value_out, err_out, iters_out, n_threads): per-column Sinkhorn on raw "
     "buffers (addresses and strides in elements); see wlearn/losses/_pixel_sinkhorn.py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pixel_lanes",
    "Fused per-pixel Sinkhorn kernel (CPU) behind wlearn.losses._pixel_sinkhorn.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pixel_lanes(void) { return PyModule_Create(&module); }
