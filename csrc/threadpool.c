/* A small persistent thread pool: workers are created once and wait for work, spinning briefly
 * before sleeping, so a call costs a wake-up, never a thread creation.  One caller at a time owns
 * the pool; a concurrent caller runs its work on its own thread (correct, just not parallel). */
#define _GNU_SOURCE /* glibc: sched_getaffinity and CPU_COUNT */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif
#include "common.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* How long a worker (or the waiting caller) spins before sleeping: long enough to catch the next call
 * of a layer-by-layer loop, and the next run of a model called in a loop, without a futex wake-up,
 * short enough not to hold a core for long once the work stops (OpenMP runtimes spin 0.2 ms to 200 ms).
 * A wake-up costs 50-150 us in a VM (VGG-small's first conv took 191 us on 2 threads against 105 on one
 * when its worker slept between runs with a 50 us spin).  Measured in time, not iterations: PAUSE
 * takes ~10 cycles on some CPUs and ~140 on others. */
#define SPIN_NS 1000000
#define MAX_THREADS 256

static struct {
    pthread_mutex_t owner;     /* held by the caller currently using the pool */
    pthread_mutex_t lock;      /* protects sleeping on the two condition variables */
    pthread_cond_t work_cv, done_cv;
    int size;                  /* threads including the caller */
    int started;               /* workers exist */
    uint_fast64_t start_generation;
    atomic_uint_fast64_t generation;
    atomic_uint_fast64_t remaining;
    atomic_uint_fast64_t wake;      /* bumped by xnor_pool_wake */
    atomic_int sleeping;           /* workers waiting on work_cv */
    xnor_task_fn fn;
    void *ctx;
    int nt;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, 0};

static pthread_once_t size_once = PTHREAD_ONCE_INIT;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spin while (*flag == value) == while_equal, for at most SPIN_NS; returns the last value read. */
static uint_fast64_t spin(atomic_uint_fast64_t *flag, uint_fast64_t value, int while_equal) {
    int64_t deadline = 0;
    for (unsigned i = 1;; i++) {
        uint_fast64_t v = atomic_load_explicit(flag, memory_order_acquire);
        if ((v == value) != while_equal) return v;
        if ((i & 63) == 0) {
            int64_t t = now_ns();
            if (!deadline) deadline = t + SPIN_NS;
            else if (t > deadline) return v;
        }
        CPU_RELAX();
    }
}

static void compute_size(void) {
    int n = 1;
#if defined(CPU_COUNT) /* Linux: the CPUs this process may run on */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#elif defined(__APPLE__)
    /* macOS has no CPU affinity.  Its performance cores: every task of a split waits for the slowest,
     * and Apple silicon's efficiency cores are several times slower.  The sysctl exists from macOS 12
     * (on Intel Macs it counts every physical core); before that, all online CPUs. */
    int perf = 0;
    size_t len = sizeof perf;
    if (sysctlbyname("hw.perflevel0.physicalcpu", &perf, &len, NULL, 0) == 0 && perf > 0) n = perf;
    else n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#else
    n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
    const char *env = getenv("XNORINFER_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1) n = (int)v;
    }
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pool.size = n;
}

int xnor_num_threads(void) {
    pthread_once(&size_once, compute_size);
    return pool.size;
}

int xnor_threads_for(size_t work, size_t min_work, int num_threads) {
    int size = xnor_num_threads();
    int nt = num_threads > 0 && num_threads < size ? num_threads : size;
    size_t useful = work / min_work;
    if (useful < (size_t)nt) nt = useful < 1 ? 1 : (int)useful;
    return nt;
}

void xnor_split(size_t total, size_t unit, int t, int nt, size_t *lo, size_t *hi) {
    size_t units = (total + unit - 1) / unit, per = units / nt, extra = units % nt;
    size_t u0 = t * per + ((size_t)t < extra ? (size_t)t : extra);
    size_t u1 = u0 + per + ((size_t)t < extra ? 1 : 0);
    *lo = u0 * unit < total ? u0 * unit : total;
    *hi = u1 * unit < total ? u1 * unit : total;
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg; /* worker i runs task i (the caller runs task 0) */
    /* The generation when the workers were created: a job published before this thread first
     * runs must still be seen as new. */
    uint_fast64_t seen = pool.start_generation;
    for (;;) {
        uint_fast64_t gen = spin(&pool.generation, seen, 1);
        if (gen == seen) {
            pthread_mutex_lock(&pool.lock);
            uint_fast64_t wake = atomic_load(&pool.wake);
            atomic_fetch_add(&pool.sleeping, 1);
            while ((gen = atomic_load(&pool.generation)) == seen && atomic_load(&pool.wake) == wake)
                pthread_cond_wait(&pool.work_cv, &pool.lock);
            atomic_fetch_sub(&pool.sleeping, 1);
            pthread_mutex_unlock(&pool.lock);
            if (gen == seen) continue; /* woken ahead of a job (xnor_pool_wake): spin for it */
        }
        seen = gen;
        /* Every worker checks in for every job, even one with no task for it: a new job cannot be
         * published while any worker might still read the previous job's parameters. */
        if (index < pool.nt) pool.fn(pool.ctx, index, pool.nt);
        if (atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done_cv);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* After fork() the child has no workers: start afresh. */
static void reset_after_fork(void) {
    pthread_mutex_init(&pool.owner, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.work_cv, NULL);
    pthread_cond_init(&pool.done_cv, NULL);
    pool.started = 0;
    atomic_store(&pool.sleeping, 0);
}

static int start_workers(void) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int created = 1;
    pool.start_generation = atomic_load(&pool.generation);
    for (int i = 1; i < pool.size; i++) {
        pthread_t th;
        if (pthread_create(&th, &attr, worker_main, (void *)(intptr_t)i) != 0) break;
        created++;
    }
    pthread_attr_destroy(&attr);
    pool.size = created; /* if the OS refused threads, use what we got */
    pool.started = 1;
    return created;
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, reset_after_fork); }

void xnor_pool_wake(void) {
    if (atomic_load(&pool.sleeping) == 0) return; /* none asleep (or no workers yet) */
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.wake, 1);
    pthread_cond_broadcast(&pool.work_cv);
    pthread_mutex_unlock(&pool.lock);
}

void xnor_parallel(int num_threads, xnor_task_fn fn, void *ctx) {
    static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
    pthread_once(&size_once, compute_size);
    int nt = num_threads <= 0 ? pool.size : num_threads;
    if (nt > pool.size) nt = pool.size;
    if (nt <= 1 || pthread_mutex_trylock(&pool.owner) != 0) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_once(&atfork_once, register_atfork);
    if (!pool.started) start_workers();
    if (nt > pool.size) nt = pool.size;
    if (nt <= 1) {
        pthread_mutex_unlock(&pool.owner);
        fn(ctx, 0, 1);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.nt = nt;
    atomic_store(&pool.remaining, pool.size - 1);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.work_cv);
    pthread_mutex_unlock(&pool.lock);

    fn(ctx, 0, nt);

    if (spin(&pool.remaining, 0, 0) != 0) {
        pthread_mutex_lock(&pool.lock);
        while (atomic_load(&pool.remaining) != 0) pthread_cond_wait(&pool.done_cv, &pool.lock);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.owner);
}
