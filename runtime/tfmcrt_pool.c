/* tfmcrt_pool.c: the runtime's threads: parallel_for over an execution context, and a pool of
 * POSIX threads that the calling thread joins for each parallel_for (a job: tasks taken one at a
 * time from a shared counter until none is left). The only file of the runtime that allocates:
 * once, when a pool is made. With TFMCRT_NO_POOL defined (the amalgamation, which must build
 * without -pthread) there are no threads: a pool is never made and parallel_for runs every task
 * on the calling thread. */
#ifndef TFMCRT_NO_POOL
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#endif

#include "tfmcrt_simd.h"

#ifndef TFMCRT_NO_POOL

struct TfmcrtPool {
    int nthreads;          /* workers + the thread calling parallel_for */
    pthread_t *workers;    /* nthreads - 1 of them */
    pthread_mutex_t lock;  /* guards what follows, down to stop */
    pthread_cond_t wake;   /* a new job, or stop */
    pthread_cond_t done;   /* the last worker left the job */
    atomic_ulong job;      /* counts jobs: a worker runs each once (written under lock) */
    TfmcrtTaskFn fn;
    void *arg;
    size_t ntasks;
    atomic_int busy;       /* workers still inside the current job (written under lock) */
    bool stop;
    atomic_size_t next;    /* the next task index of the current job */
    pthread_mutex_t turn;  /* one parallel_for at a time */
};

/* Set while this thread runs tasks of a pool: a nested parallel_for then runs on it directly
 * (waiting for the pool from inside one of its own tasks would never end). */
static _Thread_local bool in_task;

static void run_tasks(TfmcrtPool *p, TfmcrtTaskFn fn, void *arg, size_t ntasks)
{
    bool was = in_task;
    in_task = true;
    for (size_t t; (t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < ntasks;) fn(arg, t);
    in_task = was;
}

/* How long a thread polls before it sleeps: a decode step hands out a job every few tens of
 * microseconds, and waking a sleeping thread costs about as much. */
#define SPINS 4000

static inline void cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *self)
{
    TfmcrtPool *p = self;
    unsigned long seen = 0;
    for (;;) {
        for (int i = 0; i < SPINS && atomic_load_explicit(&p->job, memory_order_acquire) == seen; i++) cpu_relax();
        pthread_mutex_lock(&p->lock);
        while (atomic_load_explicit(&p->job, memory_order_relaxed) == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = atomic_load_explicit(&p->job, memory_order_relaxed);
        TfmcrtTaskFn fn = p->fn;
        void *arg = p->arg;
        size_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->lock);
        run_tasks(p, fn, arg, ntasks);
        pthread_mutex_lock(&p->lock);
        /* release: the job's writes are seen by the caller that reads busy 0 (acquire) */
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release) == 1) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int tfmcrt_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

TfmcrtPool *tfmcrt_pool_new(int nthreads)
{
    if (nthreads <= 0) nthreads = tfmcrt_cores();
    TfmcrtPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = 1;
    atomic_init(&p->next, 0);
    atomic_init(&p->job, 0);
    atomic_init(&p->busy, 0);
    p->workers = calloc((size_t)nthreads, sizeof *p->workers);
    if (!p->workers || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->workers);
        free(p);
        return NULL;
    }
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    pthread_mutex_init(&p->turn, NULL);
    for (int i = 0; i + 1 < nthreads; i++) {
        if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0) {
            tfmcrt_pool_free(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

void tfmcrt_pool_free(TfmcrtPool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i + 1 < p->nthreads; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->turn);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}

int tfmcrt_pool_threads(const TfmcrtPool *p) { return p ? p->nthreads : 1; }

void tfmcrt_pool_parallel_for(void *pool, size_t ntasks, TfmcrtTaskFn fn, void *arg)
{
    TfmcrtPool *p = pool;
    if (!p || p->nthreads == 1 || ntasks <= 1 || in_task) {
        for (size_t t = 0; t < ntasks; t++) fn(arg, t);
        return;
    }
    pthread_mutex_lock(&p->turn);
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->nthreads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->job, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    run_tasks(p, fn, arg, ntasks);
    for (int i = 0; i < SPINS && atomic_load_explicit(&p->busy, memory_order_acquire) > 0; i++) cpu_relax();
    if (atomic_load_explicit(&p->busy, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load_explicit(&p->busy, memory_order_acquire) > 0) pthread_cond_wait(&p->done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&p->turn);
}

#else /* TFMCRT_NO_POOL */

int tfmcrt_cores(void) { return 1; }

TfmcrtPool *tfmcrt_pool_new(int nthreads)
{
    (void)nthreads;
    return NULL;
}

void tfmcrt_pool_free(TfmcrtPool *p) { (void)p; }

int tfmcrt_pool_threads(const TfmcrtPool *p)
{
    (void)p;
    return 1;
}

void tfmcrt_pool_parallel_for(void *pool, size_t ntasks, TfmcrtTaskFn fn, void *arg)
{
    (void)pool;
    for (size_t t = 0; t < ntasks; t++) fn(arg, t);
}
#endif

TfmcrtExec tfmcrt_pool_exec(TfmcrtPool *pool, size_t grain)
{
    TfmcrtExec e = { pool ? tfmcrt_pool_parallel_for : NULL, pool, tfmcrt_pool_threads(pool), grain };
    return e;
}

void tfmcrt_parallel_for(const TfmcrtExec *ex, size_t ntasks, TfmcrtTaskFn fn, void *arg)
{
    if (!ex || !ex->parallel_for || ex->nthreads <= 1 || ntasks <= 1) {
        for (size_t t = 0; t < ntasks; t++) fn(arg, t);
        return;
    }
    ex->parallel_for(ex->user, ntasks, fn, arg);
}

size_t tfmcrt_tasks(const TfmcrtExec *ex, size_t units, size_t work)
{
    if (!ex || !ex->parallel_for || ex->nthreads <= 1 || units <= 1) return 1;
    size_t grain = ex->grain ? ex->grain : TFMCRT_GRAIN;
    size_t t = (size_t)ex->nthreads;
    if (t > units) t = units;
    /* units * work / grain without overflow: the most tasks of at least grain work */
    size_t by_grain = work >= grain ? units : units / ((grain + work - 1) / (work ? work : 1));
    if (t > by_grain) t = by_grain;
    return t ? t : 1;
}
