/*
 * runtime.store._fsyncer: one native thread that fsyncs files and says so through an eventfd.
 *
 * Why: a gevent hub that hands an fsync to its Python thread pool pays, per fsync, a wake-up of
 * the pool thread, that thread's wait for the GIL (which the hub holds until it next blocks), a
 * second wake-up as the GIL changes hands, the pool's Python worker loop, and the GIL again
 * after the fsync before the hub can be woken. This thread never takes the GIL: submit() queues
 * a job and signals it, the thread fsyncs and writes the eventfd, and the hub, watching the
 * eventfd like any socket, collects the outcomes with completed(). runtime/store/fsyncer.py is
 * the gevent side and the fallback (the hub's thread pool) when this module is not built.
 *
 *   Syncer()                     start the thread and make the eventfd
 *   .fileno()                    the eventfd: readable when outcomes wait
 *   .submit(token, fds)          dup every fd (so closing a file later cannot retarget the job)
 *                                and queue "fsync each, in order" under ``token`` (an int)
 *   .completed()                 [(token, errno)] finished since the last call (0: all synced;
 *                                else the first failure's errno, the rest not tried); drains
 *                                the eventfd
 *   .close()                     finish the queued jobs, stop the thread, close the eventfd
 *                                (completed() still hands out the last outcomes)
 *
 * The thread blocks every signal (they stay with the interpreter's threads) and touches no
 * Python object; the job list is guarded by one mutex.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define API_VERSION 1

typedef struct job {
    struct job *next;
    long long token;
    int err;
    int nfds;
    int fds[];
} job;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *todo_head, *todo_tail;
    job *done_head, *done_tail;
    int efd;
    int stopping;
    int running; /* the thread was started and not joined */
    pthread_t thread;
} Syncer;

static void push(job **head, job **tail, job *j)
{
    j->next = NULL;
    if (*tail) {
        (*tail)->next = j;
    } else {
        *head = j;
    }
    *tail = j;
}

static void *worker(void *arg)
{
    Syncer *s = (Syncer *)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->todo_head == NULL && !s->stopping) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        job *j = s->todo_head;
        if (j == NULL) { /* stopping and nothing left */
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        s->todo_head = j->next;
        if (s->todo_head == NULL) {
            s->todo_tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);

        j->err = 0;
        for (int i = 0; i < j->nfds; i++) {
            if (j->err == 0 && fsync(j->fds[i]) != 0) {
                j->err = errno ? errno : EIO;
            }
            close(j->fds[i]);
        }
        pthread_mutex_lock(&s->mu);
        push(&s->done_head, &s->done_tail, j);
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        while (write(s->efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
}

static void free_list(job *j)
{
    while (j) {
        job *next = j->next;
        free(j);
        j = next;
    }
}

static int stop_thread(Syncer *s)
{
    if (!s->running) {
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_join(s->thread, NULL);
    Py_END_ALLOW_THREADS
    s->running = 0;
    return rc;
}

static PyObject *Syncer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Syncer", kwlist)) {
        return NULL;
    }
    Syncer *s = (Syncer *)type->tp_alloc(type, 0);
    if (s == NULL) {
        return NULL;
    }
    s->efd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(s);
        return NULL;
    }
    int rc = pthread_create(&s->thread, NULL, worker, s);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(s);
        return NULL;
    }
    s->running = 1;
    return (PyObject *)s;
}

static void Syncer_dealloc(Syncer *s)
{
    stop_thread(s);
    if (s->efd >= 0) {
        close(s->efd);
    }
    free_list(s->todo_head); /* only when the thread never ran */
    free_list(s->done_head);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyObject *closed_error(void)
{
    PyErr_SetString(PyExc_ValueError, "the Syncer is closed");
    return NULL;
}

static PyObject *Syncer_fileno(Syncer *s, PyObject *Py_UNUSED(ignored))
{
    if (s->efd < 0) {
        return closed_error();
    }
    return PyLong_FromLong(s->efd);
}

PyDoc_STRVAR(submit_doc, "submit(token, fds): queue an fsync of every fd (dup'ed now), in order.");

static PyObject *Syncer_submit(Syncer *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "submit(token, fds) takes 2 arguments");
        return NULL;
    }
    if (!s->running) {
        return closed_error();
    }
    long long token = PyLong_AsLongLong(args[0]);
    if (token == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[1], "fds must be a sequence of ints");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > 4096) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many fds in one job");
        return NULL;
    }
    job *j = malloc(sizeof(job) + (size_t)n * sizeof(int));
    if (j == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    j->token = token;
    j->nfds = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        int copy = -1;
        if (fd < 0 || fd > INT_MAX) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "an fd must be a non-negative int");
            }
        } else {
            copy = fcntl((int)fd, F_DUPFD_CLOEXEC, 0);
            if (copy < 0) {
                PyErr_SetFromErrno(PyExc_OSError);
            }
        }
        if (copy < 0) {
            for (int k = 0; k < j->nfds; k++) {
                close(j->fds[k]);
            }
            free(j);
            Py_DECREF(seq);
            return NULL;
        }
        j->fds[j->nfds++] = copy;
    }
    Py_DECREF(seq);
    pthread_mutex_lock(&s->mu);
    push(&s->todo_head, &s->todo_tail, j);
    pthread_mutex_unlock(&s->mu);
    /* Signalled after the unlock: the woken thread then finds the mutex free instead of
     * sleeping on it once more (a futex round trip measured at ~100 us on the VM). */
    pthread_cond_signal(&s->cv);
    Py_RETURN_NONE;
}

static PyObject *Syncer_completed(Syncer *s, PyObject *Py_UNUSED(ignored))
{
    uint64_t count;
    if (s->efd >= 0 && read(s->efd, &count, sizeof count) < 0 && errno != EAGAIN &&
        errno != EINTR) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    pthread_mutex_lock(&s->mu);
    job *done = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    PyObject *out = PyList_New(0);
    for (job *j = done; j && out; j = j->next) {
        PyObject *item = Py_BuildValue("(Li)", j->token, j->err);
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(item);
    }
    free_list(done);
    return out;
}

static PyObject *Syncer_close(Syncer *s, PyObject *Py_UNUSED(ignored))
{
    int rc = stop_thread(s);
    if (s->efd >= 0) {
        close(s->efd);
        s->efd = -1;
    }
    if (rc != 0) {
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyMethodDef Syncer_methods[] = {
    {"fileno", (PyCFunction)Syncer_fileno, METH_NOARGS, "The eventfd to watch for outcomes."},
    {"submit", (PyCFunction)(void (*)(void))Syncer_submit, METH_FASTCALL, submit_doc},
    {"completed", (PyCFunction)Syncer_completed, METH_NOARGS,
     "[(token, errno)] of the jobs finished since the last call; drains the eventfd."},
    {"close", (PyCFunction)Syncer_close, METH_NOARGS,
     "Finish the queued jobs, stop the thread, close the eventfd."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SyncerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "runtime.store._fsyncer.Syncer",
    .tp_basicsize = sizeof(Syncer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One native thread that fsyncs files and signals an eventfd (see the module).",
    .tp_new = Syncer_new,
    .tp_dealloc = (destructor)Syncer_dealloc,
    .tp_methods = Syncer_methods,
};

static struct PyModuleDef fsyncer_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "runtime.store._fsyncer",
    .m_doc = "fsync on a native thread that never takes the GIL (see runtime/store/fsyncer.py).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fsyncer(void)
{
    if (PyType_Ready(&SyncerType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&fsyncer_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "API_VERSION", API_VERSION) < 0 ||
        PyModule_AddObjectRef(m, "Syncer", (PyObject *)&SyncerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
