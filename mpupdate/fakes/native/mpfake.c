/* The native fake of MpClient.dll: the DLL's seven update exports, in C, replaying a scenario.
 *
 * It behaves exactly like the Python FakeMpClient (fakes/dll.py, the reference) but sits behind
 * a real shared library, so the project's compiled binding, its dlopen loader and the extern
 * "Python" trampoline run as they do against MpClient.dll; in "thread" delivery the callbacks
 * come from pthreads this library creates, which Python has never seen.
 *
 * Configured and inspected through fakes/native/mpfake_control.h (from Python: an ABI-mode cffi
 * FFI on the same file, see fakes/native/__init__.py). Built by fakes/native/build.py.
 *
 * Locking: one mutex guards all state; it is never held while the callback runs (the callback may
 * call back into MpUpdateControl and friends) nor while joining a thread. One condition variable
 * carries every wake-up (aborts, completion, holds, joins); everyone waiting re-checks.
 * Out of memory ends the process: this is a test double. */

#define _POSIX_C_SOURCE 200809L

#include "mpupdate/_csrc/prelude.h"
#include "mpupdate/_cdef/mpclient_types.h"
#include "mpfake_control.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* -- numbers (mpupdate/constants.py holds the evidence marks) -------------------------------- */

#define MPF_S_OK 0x00000000u
#define MPF_S_FALSE 0x00000001u
#define MPF_E_ABORT 0x80004004u
#define MPF_E_FAIL 0x80004005u
#define MPF_E_HANDLE 0x80070006u
#define MPF_E_INVALIDARG 0x80070057u
#define MPF_ERROR_INVALID_OPERATION 0x800710DDu
/* Fake-only: a synchronous start of a never-ending scenario outside "thread" delivery would block
 * forever (FakeMpClient raises FakeHang there). HRESULT_FROM_WIN32(ERROR_POSSIBLE_DEADLOCK). */
#define MPF_E_WOULD_HANG 0x8007046Bu

#define MPF_OPTION_ASYNC 0x1u
#define MPF_OPTION_PROGRESS 0x2u
/* The DLL's option check [BIN, 4.18.1909.6]: any of 0x78 with 0x200 is E_INVALIDARG, otherwise
 * more than one bit of 0x1F8 (the source bits) is. Equal to mpupdate.constants' SOURCE_OPTION_MASK,
 * OPTION_0X200 and OPTIONS_REFUSED_WITH_0X200 (tests/unit/test_native_numbers.py checks). */
#define MPF_SOURCE_MASK 0x1F8u /* HTTP | 0x10 | UNC | 0x40 | MANAGED | UNMANAGED */
#define MPF_OPTION_0X200 0x200u /* unnamed */
#define MPF_OPTIONS_REFUSED_WITH_0X200 0x78u /* HTTP | 0x10 | UNC | 0x40 */
#define MPF_CONTROL_ABORT 0u
#define MPF_CONTROL_PAUSE 1u
#define MPF_CONTROL_RESUME 2u

#define MPF_NOTIFY_START 0x8001u
#define MPF_NOTIFY_DOWNLOAD_PROGRESS 0x8006u
#define MPF_NOTIFY_INSTALL_PROGRESS 0x8009u
#define MPF_NOTIFY_COMPLETE 0x800Du
#define MPF_CALLBACK_SIGUPDATE 6u

#define MPF_FIRST_HANDLE 0x10000000u
#define MPF_HANDLE_STEP 0x10u
#define MPF_POISON 0xDD
/* FILETIME of 2026-01-01T00:00:00Z, fakes.clock.DEFAULT_START, for the default scenario. */
#define MPF_DEFAULT_BASE_FILETIME 134116992000000000LL

enum { DELIVERY_IMMEDIATE = 0, DELIVERY_THREAD = 1, DELIVERY_TIMED = 2 };
enum { ABORT_MANAGER = 0, ABORT_UPDATE = 1, ABORT_EITHER = 2 };
enum { KIND_MANAGER = 0, KIND_UPDATE = 1 };
enum {
    FN_OPEN = 0, FN_START, FN_CONTROL, FN_CLOSE, FN_FORMAT, FN_FREE, FN_VERSION, FN_COUNT
};
enum { WORKER_NONE = 0, WORKER_RUNNING, WORKER_FINISHED, WORKER_JOINED };

/* -- state ------------------------------------------------------------------------------------ */

typedef struct {
    double at;
    uint32_t notify, hresult, callback_type, has_data;
    uint32_t percent, total_updates, current_index, update_type, stage;
    uint16_t *path; /* owned, NUL-terminated, or NULL */
    size_t path_units;
} item_t;

typedef struct {
    uint32_t code;
    uint16_t *text; /* owned, NUL-terminated */
    size_t units;
} message_t;

typedef struct update {
    uint64_t handle, manager;
    uint32_t options;
    uintptr_t context;
    MPCALLBACK_FUNCTION function;
    const item_t **plan;
    uint32_t plan_count;
    uint64_t wall_filetime;
    double start, last_at;
    uint32_t *delivered;
    size_t delivered_count, delivered_cap;
    int aborted, completed;
    uint32_t complete_hresult;
    uint32_t epoch; /* bumped to cancel every timer scheduled for this update */
    int worker_state, join_claimed;
    pthread_t worker;
} update_t;

typedef struct {
    int kind, open, closing;
    update_t *update;
} handle_t;

typedef struct {
    double when;
    uint64_t seq;
    update_t *update;
    uint32_t epoch;
    int32_t index; /* plan index, or -1 for the COMPLETE(E_ABORT) of an abort */
} mpf_timer;

typedef struct {
    void *block;
    size_t size;
} block_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;

static struct {
    int initialized;
    /* the scenario */
    item_t *items;
    uint32_t item_count;
    item_t start_item, complete_item;
    int has_complete;
    uint32_t open_hresult, start_hresult;
    double abort_latency;
    MPVERSION_INFO versions_before, versions_after;
    int versions_updated;
    message_t *messages;
    uint32_t message_count;
    int delivery, abort_handle;
    int64_t base_filetime;
    /* virtual time */
    double now;
    mpf_timer *timers; /* a binary min-heap on (when, seq) */
    size_t timer_count, timer_cap;
    uint64_t timer_seq;
    /* handles and updates */
    handle_t *handles;
    size_t handle_count, handle_cap;
    update_t **updates;
    size_t update_count, update_cap;
    /* records */
    char **violations;
    size_t violation_count, violation_cap;
    mpfake_call_record *calls;
    size_t call_count, call_cap;
    block_t *allocations;
    size_t allocation_count, allocation_cap;
    block_t *quarantine;
    size_t quarantine_count, quarantine_cap;
    int quarantine_on;
    /* holds and workers */
    int32_t hold_index;
    uint64_t hold_generation;
    uint32_t held;
    uint32_t live_workers;
    int shutdown;
    char error[512];
} G;

static __thread int t_depth;            /* > 0 inside the callback */
static __thread uint32_t t_violations;  /* violations recorded by this thread */
static __thread int64_t t_last_violation = -1;
static __thread uint32_t t_hangs;
static __thread uint64_t t_worker;      /* the update handle whose worker this thread is */

static void lock(void) { pthread_mutex_lock(&g_lock); }
static void unlock(void) { pthread_mutex_unlock(&g_lock); }
static void wake(void) { pthread_cond_broadcast(&g_cond); }
static void sleep_on(void) { pthread_cond_wait(&g_cond, &g_lock); }

/* -- small helpers ---------------------------------------------------------------------------- */

static void out_of_memory(void)
{
    fputs("mpfake: out of memory\n", stderr);
    abort();
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL)
        out_of_memory();
    return p;
}

static void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    if (p == NULL)
        out_of_memory();
    return p;
}

/* Make room for one more element in a growable array. */
static void grow(void **items, size_t *cap, size_t count, size_t elem)
{
    size_t wanted;
    void *p;
    if (count < *cap)
        return;
    wanted = *cap == 0 ? 16 : *cap * 2;
    p = realloc(*items, wanted * elem);
    if (p == NULL)
        out_of_memory();
    *items = p;
    *cap = wanted;
}

/* Seconds as 100 ns FILETIME ticks, rounded half up: exactly fakes.dll._ticks. */
static int64_t ticks(double seconds)
{
    return (int64_t)(seconds * 10000000.0 + 0.5);
}

static size_t utf16_units(const uint16_t *text)
{
    size_t n = 0;
    while (text[n] != 0)
        n++;
    return n;
}

static uint16_t *utf16_copy(const uint16_t *text, size_t *units)
{
    size_t n = utf16_units(text);
    uint16_t *copy = (uint16_t *)xmalloc((n + 1) * sizeof(uint16_t));
    memcpy(copy, text, (n + 1) * sizeof(uint16_t));
    *units = n;
    return copy;
}

static void set_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(G.error, sizeof(G.error), format, args);
    va_end(args);
}

static unsigned long long ull(uint64_t value) { return (unsigned long long)value; }

/* -- records ---------------------------------------------------------------------------------- */

static void log_call(int function, uint32_t arg_count, uint64_t a0, uint64_t a1, uint64_t a2,
                     int has_hresult, uint32_t hresult)
{
    mpfake_call_record *call;
    lock();
    grow((void **)&G.calls, &G.call_cap, G.call_count, sizeof(*G.calls));
    call = &G.calls[G.call_count++];
    memset(call, 0, sizeof(*call));
    call->function = (uint32_t)function;
    call->arg_count = arg_count;
    call->args[0] = a0;
    call->args[1] = a1;
    call->args[2] = a2;
    call->thread = t_worker;
    call->has_hresult = (uint32_t)has_hresult;
    call->hresult = hresult;
    unlock();
}

/* Record a call and return its HRESULT signed, as the DLL's HRESULT. */
static int32_t answer(int function, uint32_t arg_count, uint64_t a0, uint64_t a1, uint64_t a2,
                      uint32_t hresult)
{
    log_call(function, arg_count, a0, a1, a2, 1, hresult);
    return (int32_t)hresult;
}

static void violation(const char *format, ...)
{
    char buffer[1024];
    char *text;
    size_t n;
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, sizeof(buffer), format, args);
    va_end(args);
    n = strlen(buffer);
    text = (char *)xmalloc(n + 1);
    memcpy(text, buffer, n + 1);
    lock();
    grow((void **)&G.violations, &G.violation_cap, G.violation_count, sizeof(*G.violations));
    t_last_violation = (int64_t)G.violation_count;
    G.violations[G.violation_count++] = text;
    unlock();
    t_violations++;
}

/* Poison a block MpClient would free after the callback, then free (or quarantine) it. */
static void release(void *block, size_t size)
{
    if (block == NULL)
        return;
    memset(block, MPF_POISON, size);
    lock();
    if (G.quarantine_on) {
        grow((void **)&G.quarantine, &G.quarantine_cap, G.quarantine_count,
             sizeof(*G.quarantine));
        G.quarantine[G.quarantine_count].block = block;
        G.quarantine[G.quarantine_count].size = size;
        G.quarantine_count++;
        block = NULL;
    }
    unlock();
    free(block);
}

/* -- the scenario ----------------------------------------------------------------------------- */

static void synthesized(item_t *item, double at, uint32_t notify, uint32_t hresult)
{
    memset(item, 0, sizeof(*item));
    item->at = at;
    item->notify = notify;
    item->hresult = hresult;
    item->callback_type = MPF_CALLBACK_SIGUPDATE;
}

/* Call with the lock held and no worker left. */
static void free_all_locked(void)
{
    size_t i;
    for (i = 0; i < G.item_count; i++)
        free(G.items[i].path);
    free(G.items);
    for (i = 0; i < G.message_count; i++)
        free(G.messages[i].text);
    free(G.messages);
    free(G.timers);
    free(G.handles);
    for (i = 0; i < G.update_count; i++) {
        free(G.updates[i]->plan);
        free(G.updates[i]->delivered);
        free(G.updates[i]);
    }
    free(G.updates);
    for (i = 0; i < G.violation_count; i++)
        free(G.violations[i]);
    free(G.violations);
    free(G.calls);
    for (i = 0; i < G.allocation_count; i++)
        free(G.allocations[i].block);
    free(G.allocations);
    for (i = 0; i < G.quarantine_count; i++)
        free(G.quarantine[i].block);
    free(G.quarantine);
    memset(&G, 0, sizeof(G));
}

/* The default scenario, as Scenario's defaults: one update completing with S_OK at 1 s. */
static void defaults_locked(void)
{
    G.initialized = 1;
    G.has_complete = 1;
    synthesized(&G.start_item, 0.0, MPF_NOTIFY_START, MPF_S_OK);
    synthesized(&G.complete_item, 1.0, MPF_NOTIFY_COMPLETE, MPF_S_OK);
    G.delivery = DELIVERY_IMMEDIATE;
    G.abort_handle = ABORT_MANAGER;
    G.base_filetime = MPF_DEFAULT_BASE_FILETIME;
    G.hold_index = -1;
}

static void ensure_initialized_locked(void)
{
    if (!G.initialized)
        defaults_locked();
}

/* -- handles ---------------------------------------------------------------------------------- */

static uint64_t new_handle_locked(int kind, update_t *update)
{
    handle_t *record;
    uint64_t value = MPF_FIRST_HANDLE + (uint64_t)G.handle_count * MPF_HANDLE_STEP;
    grow((void **)&G.handles, &G.handle_cap, G.handle_count, sizeof(*G.handles));
    record = &G.handles[G.handle_count++];
    record->kind = kind;
    record->open = 1;
    record->closing = 0;
    record->update = update;
    return value;
}

/* The record of a handle this library issued (open or closed), or NULL. */
static handle_t *issued_locked(uint64_t value)
{
    uint64_t index;
    if (value < MPF_FIRST_HANDLE || (value - MPF_FIRST_HANDLE) % MPF_HANDLE_STEP != 0)
        return NULL;
    index = (value - MPF_FIRST_HANDLE) / MPF_HANDLE_STEP;
    if (index >= G.handle_count)
        return NULL;
    return &G.handles[index];
}

static uint64_t handle_value(MPHANDLE handle)
{
    return (uint64_t)(uintptr_t)handle;
}

/* FakeMpClient._find: 1 and the open record's kind and update if 'handle' is open and of one of
 * 'kinds' (bit 1 << KIND_*); 0 otherwise, after recording a use-after-free for a closed one. */
static int find_handle(const char *function, MPHANDLE handle, unsigned kinds, int *kind,
                       update_t **update)
{
    uint64_t value = handle_value(handle);
    handle_t *record;
    int found = 0, closed = 0;
    lock();
    ensure_initialized_locked();
    record = issued_locked(value);
    if (record != NULL && !record->open)
        closed = 1;
    if (record != NULL && record->open && (kinds & (1u << record->kind))) {
        found = 1;
        *kind = record->kind;
        *update = record->update;
    }
    unlock();
    if (closed)
        violation("%s was given handle 0x%llX after it was closed "
                  "(a use-after-free in the real DLL)", function, ull(value));
    return found;
}

/* -- virtual time ----------------------------------------------------------------------------- */

static int timer_before(const mpf_timer *a, const mpf_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void push_timer_locked(double when, update_t *update, int32_t index)
{
    size_t i;
    grow((void **)&G.timers, &G.timer_cap, G.timer_count, sizeof(*G.timers));
    i = G.timer_count++;
    G.timers[i].when = when;
    G.timers[i].seq = G.timer_seq++;
    G.timers[i].update = update;
    G.timers[i].epoch = update->epoch;
    G.timers[i].index = index;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        mpf_timer swap;
        if (!timer_before(&G.timers[i], &G.timers[parent]))
            break;
        swap = G.timers[i];
        G.timers[i] = G.timers[parent];
        G.timers[parent] = swap;
        i = parent;
    }
}

static mpf_timer pop_timer_locked(void)
{
    mpf_timer top = G.timers[0];
    size_t i = 0;
    G.timers[0] = G.timers[--G.timer_count];
    for (;;) {
        size_t left = 2 * i + 1, right = left + 1, least = i;
        mpf_timer swap;
        if (left < G.timer_count && timer_before(&G.timers[left], &G.timers[least]))
            least = left;
        if (right < G.timer_count && timer_before(&G.timers[right], &G.timers[least]))
            least = right;
        if (least == i)
            break;
        swap = G.timers[i];
        G.timers[i] = G.timers[least];
        G.timers[least] = swap;
        i = least;
    }
    return top;
}

static int timer_live(const mpf_timer *timer)
{
    return timer->epoch == timer->update->epoch;
}

/* VirtualClock.next_deadline: drop cancelled timers from the top, report the next one. */
static int next_due_locked(double *when)
{
    while (G.timer_count > 0 && !timer_live(&G.timers[0]))
        (void)pop_timer_locked();
    if (G.timer_count == 0)
        return 0;
    *when = G.timers[0].when;
    return 1;
}

static void emit(update_t *update, const item_t *item, double at);

/* FakeMpClient._emit_abort_complete: COMPLETE(E_ABORT) at 'at'; an update aborted before it
 * began still gets its START first, as MpClient sends it. */
static void emit_abort_complete(update_t *update, double at)
{
    item_t item;
    size_t delivered;
    lock();
    delivered = update->delivered_count;
    unlock();
    if (delivered == 0)
        emit(update, update->plan[0], update->plan[0]->at);
    synthesized(&item, at, MPF_NOTIFY_COMPLETE, MPF_E_ABORT);
    emit(update, &item, at);
}

/* VirtualClock.advance_to: fire every timer due by 'when' in (when, seq) order, unlocked. */
static void clock_advance_to(double when)
{
    for (;;) {
        mpf_timer timer;
        double elapsed;
        int live;
        lock();
        if (G.timer_count > 0 && G.timers[0].when <= when) {
            timer = pop_timer_locked();
            if (timer.when > G.now)
                G.now = timer.when;
            live = timer_live(&timer);
            elapsed = G.now - timer.update->start;
            unlock();
            if (live) {
                if (timer.index >= 0) {
                    const item_t *item = timer.update->plan[timer.index];
                    emit(timer.update, item, item->at);
                } else {
                    emit_abort_complete(timer.update, elapsed);
                }
            }
            continue;
        }
        if (when > G.now)
            G.now = when;
        unlock();
        return;
    }
}

/* -- delivering ------------------------------------------------------------------------------- */

/* FakeMpClient._emit: call the callback once with freshly allocated data, then poison and free
 * it. Nothing is delivered after COMPLETE, nor once the library is shutting down. */
static void emit(update_t *update, const item_t *item, double at)
{
    MPCALLBACK_FUNCTION function;
    uintptr_t context;
    uint64_t wall;
    MPCALLBACK_DATA *data;
    MPSIGUPDATE_DATA *sig = NULL;
    uint16_t *path = NULL;
    size_t path_size = 0;

    lock();
    if (update->completed || G.shutdown) {
        unlock();
        return;
    }
    if (item->notify == MPF_NOTIFY_COMPLETE) {
        update->completed = 1;
        update->complete_hresult = item->hresult;
        if (item->hresult == MPF_S_OK)
            G.versions_updated = 1;
        wake();
    }
    grow((void **)&update->delivered, &update->delivered_cap, update->delivered_count,
         sizeof(*update->delivered));
    update->delivered[update->delivered_count++] = item->notify;
    if (at > update->last_at)
        update->last_at = at;
    function = update->function;
    context = update->context;
    wall = update->wall_filetime;
    unlock();

    data = (MPCALLBACK_DATA *)xcalloc(1, sizeof(*data));
    data->Notify = item->notify;
    data->hResult = (int32_t)item->hresult;
    data->TimeStamp = wall + (uint64_t)ticks(at);
    data->Type = item->callback_type;
    if (item->has_data) {
        sig = (MPSIGUPDATE_DATA *)xcalloc(1, sizeof(*sig));
        sig->dwPercentComplete = item->percent;
        sig->dwTotalUpdates = item->total_updates;
        sig->dwCurrentUpdateIndex = item->current_index;
        sig->eType = item->update_type;
        sig->Stage = item->stage;
        if (item->path != NULL) {
            path_size = (item->path_units + 1) * sizeof(uint16_t);
            path = (uint16_t *)xmalloc(path_size);
            memcpy(path, item->path, path_size);
            sig->Path = path;
        }
        data->Data.pSigUpdateData = sig;
    }
    t_depth++;
    (void)function(context, data);
    t_depth--;
    /* MpClient frees the data as soon as the callback returns [BIN]. */
    release(path, path_size);
    release(sig, sizeof(*sig));
    release(data, sizeof(*data));
}

/* FakeMpClient._run: deliver the plan on this thread (immediate and thread delivery). */
static void run_update(update_t *update)
{
    uint32_t i;
    int aborted;
    double at, until;
    for (i = 0; i < update->plan_count; i++) {
        int stop;
        lock();
        stop = update->aborted || G.shutdown;
        if (!stop && G.delivery == DELIVERY_THREAD && G.hold_index >= 0 &&
            (uint32_t)G.hold_index == i) {
            uint64_t generation = G.hold_generation;
            G.held++;
            wake();
            while (!update->aborted && !G.shutdown && G.hold_generation == generation)
                sleep_on();
            G.held--;
            stop = update->aborted || G.shutdown;
        }
        unlock();
        if (stop)
            break;
        emit(update, update->plan[i], update->plan[i]->at);
    }
    lock();
    if (G.delivery == DELIVERY_THREAD) {
        /* A never-ending update runs until aborted: wait, without polling. */
        while (!update->completed && !update->aborted && !G.shutdown)
            sleep_on();
    }
    aborted = update->aborted;
    at = update->last_at + G.abort_latency;
    unlock();
    if (aborted)
        emit_abort_complete(update, at);
    if (G.delivery != DELIVERY_TIMED) {
        /* Keep virtual time (and the next update's stamps) moving, as the Python fake does. */
        lock();
        until = update->start + update->last_at;
        unlock();
        clock_advance_to(until);
    }
}

static void *worker_main(void *argument)
{
    update_t *update = (update_t *)argument;
    t_worker = update->handle;
    run_update(update);
    lock();
    update->worker_state = WORKER_FINISHED;
    G.live_workers--;
    wake();
    unlock();
    return NULL;
}

/* Join an update's worker exactly once; a second caller waits for the first join to end. */
static void join_worker(update_t *update)
{
    pthread_t thread;
    lock();
    if (update->worker_state == WORKER_NONE || pthread_equal(update->worker, pthread_self())) {
        unlock();
        return;
    }
    if (update->join_claimed) {
        while (update->worker_state != WORKER_JOINED)
            sleep_on();
        unlock();
        return;
    }
    update->join_claimed = 1;
    thread = update->worker;
    unlock();
    pthread_join(thread, NULL);
    lock();
    update->worker_state = WORKER_JOINED;
    wake();
    unlock();
}

/* FakeMpClient._abort: end a running update with COMPLETE(E_ABORT), soon (ABORT) or before
 * returning ('now': a close). */
static void abort_update(update_t *update, int now)
{
    int first;
    double at;
    lock();
    if (update->completed) {
        unlock();
        return;
    }
    first = !update->aborted;
    update->aborted = 1;
    wake();
    if (G.delivery == DELIVERY_TIMED) {
        update->epoch++; /* cancels every timer of this update */
        if (now) {
            at = G.now - update->start;
            unlock();
            emit_abort_complete(update, at);
            return;
        }
        if (first)
            push_timer_locked(G.now + G.abort_latency, update, -1);
        unlock();
        return;
    }
    if (G.delivery == DELIVERY_IMMEDIATE && t_depth == 0) {
        /* Nothing is delivering it (a never-ending update): end it here, on the virtual clock
         * the client waits on in this mode. */
        at = (G.now - update->start) + (now ? 0.0 : G.abort_latency);
        unlock();
        emit_abort_complete(update, at);
        return;
    }
    unlock();
}

/* -- the exports ------------------------------------------------------------------------------ */

int32_t WINAPI MpManagerOpen(uint32_t dwReserved, MPHANDLE *phMpHandle)
{
    uint64_t value;
    uint32_t open_hresult;
    if (dwReserved != 0 || phMpHandle == NULL)
        return answer(FN_OPEN, 1, dwReserved, 0, 0, MPF_E_INVALIDARG);
    lock();
    ensure_initialized_locked();
    open_hresult = G.open_hresult;
    unlock();
    if (open_hresult & 0x80000000u)
        return answer(FN_OPEN, 1, dwReserved, 0, 0, open_hresult);
    lock();
    value = new_handle_locked(KIND_MANAGER, NULL);
    unlock();
    *phMpHandle = (MPHANDLE)(uintptr_t)value;
    return answer(FN_OPEN, 2, dwReserved, value, 0, MPF_S_OK);
}

static int bit_count(uint32_t value)
{
    int n = 0;
    for (; value != 0; value &= value - 1)
        n++;
    return n;
}

int32_t WINAPI MpUpdateStart(MPHANDLE hMpHandle, uint32_t dwUpdateOptions,
                             MPCALLBACK_INFO *pCallbackInfo, MPHANDLE *phUpdateHandle)
{
    uint64_t manager = handle_value(hMpHandle);
    uint32_t options = dwUpdateOptions, start_hresult, i;
    int kind, asynchronous, delivery, has_complete;
    update_t *unused, *update;
    MPCALLBACK_FUNCTION function;

    if (hMpHandle == NULL) /* [BIN] E_INVALIDARG, not E_HANDLE, with or without callback info */
        return answer(FN_START, 2, manager, options, 0, MPF_E_INVALIDARG);
    if (!find_handle("MpUpdateStart", hMpHandle, 1u << KIND_MANAGER, &kind, &unused))
        return answer(FN_START, 2, manager, options, 0, MPF_E_HANDLE);
    if (pCallbackInfo == NULL || phUpdateHandle == NULL)
        return answer(FN_START, 2, manager, options, 0, MPF_E_INVALIDARG);
    function = pCallbackInfo->pfnCallbackFunction;
    if (function == NULL) {
        log_call(FN_START, 2, manager, options, 0, 1, MPF_E_INVALIDARG);
        violation("MpUpdateStart was given a NULL callback function (the real DLL crashes)");
        return (int32_t)MPF_E_INVALIDARG;
    }
    if (((options & MPF_OPTION_0X200) && (options & MPF_OPTIONS_REFUSED_WITH_0X200)) ||
        bit_count(options & MPF_SOURCE_MASK) > 1) /* [BIN] the DLL's option check */
        return answer(FN_START, 2, manager, options, 0, MPF_E_INVALIDARG);
    lock();
    start_hresult = G.start_hresult;
    delivery = G.delivery;
    has_complete = G.has_complete;
    unlock();
    if (start_hresult & 0x80000000u)
        return answer(FN_START, 2, manager, options, 0, start_hresult);
    asynchronous = (options & MPF_OPTION_ASYNC) != 0;
    if (!has_complete && !asynchronous && delivery != DELIVERY_THREAD) {
        log_call(FN_START, 2, manager, options, 0, 0, 0);
        lock();
        set_error("the scenario never completes, so a synchronous MpUpdateStart would block "
                  "forever; start it with ASYNC, or use thread delivery and abort it from "
                  "another thread");
        unlock();
        t_hangs++;
        return (int32_t)MPF_E_WOULD_HANG;
    }

    update = (update_t *)xcalloc(1, sizeof(*update));
    update->manager = manager;
    update->options = options;
    update->context = pCallbackInfo->CallbackContext;
    update->function = function;
    lock();
    /* The plan: START, the scenario (progress only with PROGRESS [BIN]), COMPLETE if it ends. */
    update->plan = (const item_t **)xcalloc(G.item_count + 2, sizeof(*update->plan));
    update->plan[update->plan_count++] = &G.start_item;
    for (i = 0; i < G.item_count; i++) {
        uint32_t notify = G.items[i].notify;
        if ((notify == MPF_NOTIFY_DOWNLOAD_PROGRESS || notify == MPF_NOTIFY_INSTALL_PROGRESS) &&
            !(options & MPF_OPTION_PROGRESS))
            continue;
        update->plan[update->plan_count++] = &G.items[i];
    }
    if (G.has_complete)
        update->plan[update->plan_count++] = &G.complete_item;
    update->wall_filetime = (uint64_t)(G.base_filetime + ticks(G.now));
    update->start = G.now;
    update->handle = new_handle_locked(KIND_UPDATE, update);
    grow((void **)&G.updates, &G.update_cap, G.update_count, sizeof(*G.updates));
    G.updates[G.update_count++] = update;
    unlock();
    *phUpdateHandle = (MPHANDLE)(uintptr_t)update->handle;
    log_call(FN_START, 3, manager, options, update->handle, 1, MPF_S_OK);

    if (delivery == DELIVERY_IMMEDIATE) {
        run_update(update);
    } else if (delivery == DELIVERY_THREAD) {
        int error;
        lock();
        update->worker_state = WORKER_RUNNING;
        G.live_workers++;
        error = pthread_create(&update->worker, NULL, worker_main, update);
        if (error != 0) {
            update->worker_state = WORKER_NONE;
            G.live_workers--;
        }
        unlock();
        if (error != 0) {
            violation("MpUpdateStart could not create the worker thread of update 0x%llX: %s "
                      "(it is delivered on the calling thread instead)",
                      ull(update->handle), strerror(error));
            run_update(update);
        } else if (!asynchronous) {
            join_worker(update);
        }
    } else {
        lock();
        for (i = 0; i < update->plan_count; i++)
            push_timer_locked(update->start + update->plan[i]->at, update, (int32_t)i);
        unlock();
        if (!asynchronous) {
            /* VirtualClock.run_until(lambda: update.completed) */
            for (;;) {
                double moment = 0.0;
                int done, due = 0;
                lock();
                done = update->completed;
                if (!done)
                    due = next_due_locked(&moment);
                unlock();
                if (done)
                    break;
                if (!due) {
                    violation("MpUpdateStart: update 0x%llX can never complete: nothing is "
                              "scheduled on the virtual clock", ull(update->handle));
                    break;
                }
                clock_advance_to(moment);
            }
        }
    }
    return (int32_t)MPF_S_OK; /* also when the update fails: the outcome is in COMPLETE [BIN] */
}

int32_t WINAPI MpUpdateControl(MPHANDLE hMpHandle, uint32_t control)
{
    uint64_t value = handle_value(hMpHandle);
    unsigned kinds;
    int kind, abort_handle;
    update_t *own, **running;
    size_t i, count = 0;

    lock();
    ensure_initialized_locked();
    abort_handle = G.abort_handle;
    unlock();
    kinds = abort_handle == ABORT_EITHER ? (1u << KIND_MANAGER) | (1u << KIND_UPDATE)
            : abort_handle == ABORT_UPDATE ? 1u << KIND_UPDATE
                                           : 1u << KIND_MANAGER;
    if (!find_handle("MpUpdateControl", hMpHandle, kinds, &kind, &own))
        return answer(FN_CONTROL, 2, value, control, 0, MPF_E_HANDLE);
    if (control == MPF_CONTROL_PAUSE || control == MPF_CONTROL_RESUME)
        return answer(FN_CONTROL, 2, value, control, 0, MPF_ERROR_INVALID_OPERATION);
    if (control != MPF_CONTROL_ABORT)
        return answer(FN_CONTROL, 2, value, control, 0, MPF_E_INVALIDARG);
    lock();
    running = (update_t **)xcalloc(G.update_count + 1, sizeof(*running));
    if (kind == KIND_UPDATE) {
        if (own != NULL && !own->completed && !own->aborted)
            running[count++] = own;
    } else {
        for (i = 0; i < G.update_count; i++) {
            update_t *update = G.updates[i];
            if (update->manager == value && !update->completed && !update->aborted)
                running[count++] = update;
        }
    }
    unlock();
    for (i = 0; i < count; i++)
        abort_update(running[i], 0);
    free(running);
    return answer(FN_CONTROL, 2, value, control, 0, count > 0 ? MPF_S_OK : MPF_S_FALSE);
}

int32_t WINAPI MpHandleClose(MPHANDLE hMpHandle)
{
    uint64_t value = handle_value(hMpHandle);
    handle_t *record;
    int kind = 0, open = 0, issued = 0, completed = 1;
    update_t *update = NULL;

    if (hMpHandle == NULL)
        return answer(FN_CLOSE, 1, 0, 0, 0, MPF_S_FALSE);
    if (t_depth > 0) {
        log_call(FN_CLOSE, 1, value, 0, 0, 1, MPF_E_FAIL);
        violation("MpHandleClose(0x%llX) was called from inside the callback "
                  "(the real DLL hits DebugBreak)", ull(value));
        return (int32_t)MPF_E_FAIL;
    }
    lock();
    ensure_initialized_locked();
    record = issued_locked(value);
    if (record != NULL) {
        issued = 1;
        if (record->open && !record->closing) {
            open = 1;
            record->closing = 1;
            kind = record->kind;
            update = record->update;
            completed = update == NULL || update->completed;
        }
    }
    unlock();
    if (!open) {
        log_call(FN_CLOSE, 1, value, 0, 0, 1, MPF_E_HANDLE);
        if (issued)
            violation("handle 0x%llX was closed twice (a use-after-free in the real DLL)",
                      ull(value));
        else
            violation("MpHandleClose was given 0x%llX, which it never issued", ull(value));
        return (int32_t)MPF_E_HANDLE;
    }
    if (kind == KIND_MANAGER) {
        char children[768];
        size_t used = 0, i, count = 0;
        children[0] = '\0';
        lock();
        for (i = 0; i < G.update_count; i++) {
            update_t *child = G.updates[i];
            handle_t *child_record;
            if (child->manager != value)
                continue;
            child_record = issued_locked(child->handle);
            if (child_record == NULL || !child_record->open)
                continue;
            if (used + 24 < sizeof(children)) {
                int n = snprintf(children + used, sizeof(children) - used, "%s0x%llX",
                                 count > 0 ? ", " : "", ull(child->handle));
                if (n > 0)
                    used += (size_t)n;
            }
            count++;
        }
        unlock();
        if (count > 0)
            violation("manager handle 0x%llX was closed while its update handle(s) %s were "
                      "still open", ull(value), children);
    }
    if (update != NULL) {
        if (!completed)
            abort_update(update, 1); /* closing cancels the update and waits for it [BIN] */
        join_worker(update);
    }
    lock();
    record = issued_locked(value);
    record->open = 0;
    record->closing = 0;
    unlock();
    return answer(FN_CLOSE, 1, value, 0, 0, MPF_S_OK);
}

int32_t WINAPI MpErrorMessageFormat(MPHANDLE hMpHandle, int32_t hr, uint16_t **ppszText)
{
    uint64_t value = handle_value(hMpHandle);
    uint32_t code = (uint32_t)hr, i;
    int kind, found = 0;
    update_t *unused;
    uint16_t *buffer = NULL;
    size_t units = 0;

    if (hMpHandle == NULL) /* [BIN] E_INVALIDARG, not E_HANDLE */
        return answer(FN_FORMAT, 2, value, code, 0, MPF_E_INVALIDARG);
    if (!find_handle("MpErrorMessageFormat", hMpHandle, 1u << KIND_MANAGER, &kind, &unused))
        return answer(FN_FORMAT, 2, value, code, 0, MPF_E_HANDLE);
    if (ppszText == NULL)
        return answer(FN_FORMAT, 2, value, code, 0, MPF_E_INVALIDARG);
    lock();
    for (i = 0; i < G.message_count; i++) {
        if (G.messages[i].code == code) {
            found = 1;
            units = G.messages[i].units;
            buffer = (uint16_t *)xmalloc((units + 3) * sizeof(uint16_t));
            memcpy(buffer, G.messages[i].text, units * sizeof(uint16_t));
            buffer[units] = '\r';
            buffer[units + 1] = '\n';
            buffer[units + 2] = 0;
            grow((void **)&G.allocations, &G.allocation_cap, G.allocation_count,
                 sizeof(*G.allocations));
            G.allocations[G.allocation_count].block = buffer;
            G.allocations[G.allocation_count].size = (units + 3) * sizeof(uint16_t);
            G.allocation_count++;
            break;
        }
    }
    unlock();
    if (!found) /* [GUESS] the DLL's answer for a code it cannot describe */
        return answer(FN_FORMAT, 2, value, code, 0, MPF_E_FAIL);
    *ppszText = buffer;
    return answer(FN_FORMAT, 2, value, code, 0, MPF_S_OK);
}

void WINAPI MpFreeMemory(void *pMemory)
{
    uint64_t address = (uint64_t)(uintptr_t)pMemory;
    size_t i, size = 0;
    int found = 0;
    log_call(FN_FREE, 1, address, 0, 0, 0, 0);
    if (pMemory == NULL)
        return;
    lock();
    for (i = 0; i < G.allocation_count; i++) {
        if (G.allocations[i].block == pMemory) {
            found = 1;
            size = G.allocations[i].size;
            G.allocations[i] = G.allocations[--G.allocation_count];
            break;
        }
    }
    unlock();
    if (!found) {
        violation("MpFreeMemory(0x%llX): not a buffer this DLL returned, or freed twice",
                  ull(address));
        return;
    }
    memset(pMemory, MPF_POISON, size);
    free(pMemory);
}

int32_t WINAPI MpManagerVersionQuery(MPHANDLE hMpHandle, MPVERSION_INFO *pInfo)
{
    uint64_t value = handle_value(hMpHandle);
    int kind;
    update_t *unused;
    if (!find_handle("MpManagerVersionQuery", hMpHandle, 1u << KIND_MANAGER, &kind, &unused))
        return answer(FN_VERSION, 1, value, 0, 0, MPF_E_HANDLE);
    if (pInfo == NULL)
        return answer(FN_VERSION, 1, value, 0, 0, MPF_E_INVALIDARG);
    lock();
    *pInfo = G.versions_updated ? G.versions_after : G.versions_before;
    unlock();
    memset(pInfo->Reserved, 0, sizeof(pInfo->Reserved));
    return answer(FN_VERSION, 1, value, 0, 0, MPF_S_OK);
}

/* -- control: configuration ------------------------------------------------------------------- */

uint32_t mpfake_abi_version(void)
{
    return 1;
}

uint32_t mpfake_sizeof(uint32_t which)
{
    switch (which) {
    case 0: return (uint32_t)sizeof(mpfake_notification);
    case 1: return (uint32_t)sizeof(mpfake_message);
    case 2: return (uint32_t)sizeof(mpfake_scenario);
    case 3: return (uint32_t)sizeof(mpfake_call_record);
    case 4: return (uint32_t)sizeof(mpfake_update_record);
    default: return 0;
    }
}

void mpfake_quiesce(void)
{
    size_t i, count;
    lock();
    G.shutdown = 1;
    wake();
    count = G.update_count;
    unlock();
    for (i = 0; i < count; i++) {
        update_t *update;
        lock();
        update = G.updates[i];
        unlock();
        join_worker(update);
    }
}

int32_t mpfake_reset(void)
{
    if (t_depth > 0) {
        lock();
        set_error("mpfake_reset cannot run inside the callback");
        unlock();
        return -1;
    }
    mpfake_quiesce();
    lock();
    free_all_locked();
    defaults_locked();
    unlock();
    return 0;
}

static int valid_seconds(double value)
{
    return value >= 0.0 && value <= 1e15; /* also false for NaN */
}

int32_t mpfake_configure(const mpfake_scenario *scenario)
{
    size_t i, open = 0;
    if (scenario == NULL || scenario->delivery > 2 || scenario->abort_handle > 2 ||
        (scenario->notification_count > 0 && scenario->notifications == NULL) ||
        (scenario->message_count > 0 && scenario->messages == NULL) ||
        !valid_seconds(scenario->complete_at) || !valid_seconds(scenario->abort_latency)) {
        lock();
        set_error("mpfake_configure: invalid scenario (NULL, counts without arrays, an unknown "
                  "delivery or abort handle, or a negative time)");
        unlock();
        return -1;
    }
    for (i = 0; i < scenario->notification_count; i++) {
        if (!valid_seconds(scenario->notifications[i].at)) {
            lock();
            set_error("mpfake_configure: notification %zu has an invalid time", i);
            unlock();
            return -1;
        }
    }
    for (i = 0; i < scenario->message_count; i++) {
        if (scenario->messages[i].text == NULL) {
            lock();
            set_error("mpfake_configure: message %zu has no text", i);
            unlock();
            return -1;
        }
    }
    lock();
    for (i = 0; i < G.handle_count; i++)
        open += G.handles[i].open ? 1 : 0;
    if (open > 0) {
        set_error("%zu handle(s) of the previous configuration are still open; close them "
                  "(or reset the library) before configuring another scenario", open);
        unlock();
        return -1;
    }
    unlock();
    if (mpfake_reset() != 0)
        return -1;

    lock();
    G.item_count = scenario->notification_count;
    G.items = (item_t *)xcalloc(G.item_count, sizeof(*G.items));
    for (i = 0; i < G.item_count; i++) {
        const mpfake_notification *in = &scenario->notifications[i];
        item_t *item = &G.items[i];
        item->at = in->at;
        item->notify = in->notify;
        item->hresult = in->hresult;
        item->callback_type = in->callback_type;
        item->has_data = in->has_data != 0;
        item->percent = in->percent;
        item->total_updates = in->total_updates;
        item->current_index = in->current_index;
        item->update_type = in->update_type;
        item->stage = in->stage;
        item->path = in->has_data && in->path != NULL ? utf16_copy(in->path, &item->path_units)
                                                      : NULL;
    }
    G.message_count = scenario->message_count;
    G.messages = (message_t *)xcalloc(G.message_count, sizeof(*G.messages));
    for (i = 0; i < G.message_count; i++) {
        G.messages[i].code = scenario->messages[i].code;
        G.messages[i].text = utf16_copy(scenario->messages[i].text, &G.messages[i].units);
    }
    G.has_complete = scenario->has_complete != 0;
    synthesized(&G.complete_item, scenario->complete_at, MPF_NOTIFY_COMPLETE,
                scenario->complete_hresult);
    G.open_hresult = scenario->open_hresult;
    G.start_hresult = scenario->start_hresult;
    G.abort_latency = scenario->abort_latency;
    G.versions_before = scenario->versions_before;
    G.versions_after = scenario->versions_after;
    G.delivery = (int)scenario->delivery;
    G.abort_handle = (int)scenario->abort_handle;
    G.base_filetime = scenario->base_filetime;
    unlock();
    return 0;
}

const char *mpfake_last_error(void)
{
    return G.error;
}

/* -- control: time, holds, quarantine --------------------------------------------------------- */

double mpfake_now(void)
{
    double now;
    lock();
    now = G.now;
    unlock();
    return now;
}

int32_t mpfake_next_due(double *when)
{
    int due;
    double moment = 0.0;
    lock();
    due = next_due_locked(&moment);
    unlock();
    if (due && when != NULL)
        *when = moment;
    return due;
}

void mpfake_advance_to(double when)
{
    if (when == when) /* not NaN */
        clock_advance_to(when);
}

void mpfake_set_hold(int32_t index)
{
    lock();
    G.hold_index = index < 0 ? -1 : index;
    unlock();
}

void mpfake_release_holds(void)
{
    lock();
    G.hold_index = -1;
    G.hold_generation++;
    wake();
    unlock();
}

uint32_t mpfake_held(void)
{
    uint32_t held;
    lock();
    held = G.held;
    unlock();
    return held;
}

int32_t mpfake_wait_held(uint32_t count, double timeout)
{
    struct timespec deadline;
    int reached;
    if (!(timeout >= 0.0))
        timeout = 0.0;
    if (timeout > 86400.0)
        timeout = 86400.0;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)timeout;
    deadline.tv_nsec += (long)((timeout - (double)(time_t)timeout) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    lock();
    while (G.held < count) {
        if (pthread_cond_timedwait(&g_cond, &g_lock, &deadline) == ETIMEDOUT)
            break;
    }
    reached = G.held >= count;
    unlock();
    return reached;
}

void mpfake_set_quarantine(uint32_t on)
{
    lock();
    G.quarantine_on = on != 0;
    unlock();
}

/* -- control: introspection ------------------------------------------------------------------- */

uint32_t mpfake_open_handle_count(void)
{
    return mpfake_open_handles(NULL, NULL, 0);
}

uint32_t mpfake_open_handles(uint64_t *values, uint32_t *kinds, uint32_t capacity)
{
    uint32_t open = 0;
    size_t i;
    lock();
    for (i = 0; i < G.handle_count; i++) {
        if (!G.handles[i].open)
            continue;
        if (open < capacity) {
            if (values != NULL)
                values[open] = MPF_FIRST_HANDLE + (uint64_t)i * MPF_HANDLE_STEP;
            if (kinds != NULL)
                kinds[open] = (uint32_t)G.handles[i].kind;
        }
        open++;
    }
    unlock();
    return open;
}

uint32_t mpfake_outstanding_allocations(void)
{
    uint32_t count;
    lock();
    count = (uint32_t)G.allocation_count;
    unlock();
    return count;
}

uint32_t mpfake_live_workers(void)
{
    uint32_t count;
    lock();
    count = G.live_workers;
    unlock();
    return count;
}

uint32_t mpfake_violation_count(void)
{
    uint32_t count;
    lock();
    count = (uint32_t)G.violation_count;
    unlock();
    return count;
}

const char *mpfake_violation(uint32_t index)
{
    const char *text = NULL;
    lock();
    if (index < G.violation_count)
        text = G.violations[index];
    unlock();
    return text;
}

void mpfake_clear_violations(void)
{
    lock();
    /* Kept allocated (texts handed out stay valid): moved to the quarantine until the reset. */
    while (G.violation_count > 0) {
        char *text = G.violations[--G.violation_count];
        grow((void **)&G.quarantine, &G.quarantine_cap, G.quarantine_count,
             sizeof(*G.quarantine));
        G.quarantine[G.quarantine_count].block = text;
        G.quarantine[G.quarantine_count].size = strlen(text) + 1;
        G.quarantine_count++;
    }
    unlock();
}

uint32_t mpfake_thread_violations(void)
{
    return t_violations;
}

int64_t mpfake_thread_last_violation(void)
{
    return t_last_violation;
}

uint32_t mpfake_thread_hangs(void)
{
    return t_hangs;
}

uint32_t mpfake_call_count(void)
{
    uint32_t count;
    lock();
    count = (uint32_t)G.call_count;
    unlock();
    return count;
}

uint32_t mpfake_calls(uint32_t start, mpfake_call_record *out, uint32_t capacity)
{
    uint32_t copied = 0;
    lock();
    while (out != NULL && copied < capacity && (size_t)start + copied < G.call_count) {
        out[copied] = G.calls[start + copied];
        copied++;
    }
    unlock();
    return copied;
}

uint32_t mpfake_calls_to(uint32_t function)
{
    uint32_t count = 0;
    size_t i;
    lock();
    for (i = 0; i < G.call_count; i++)
        count += G.calls[i].function == function ? 1 : 0;
    unlock();
    return count;
}

uint32_t mpfake_update_count(void)
{
    uint32_t count;
    lock();
    count = (uint32_t)G.update_count;
    unlock();
    return count;
}

int32_t mpfake_update(uint32_t index, mpfake_update_record *out)
{
    update_t *update;
    if (out == NULL)
        return 0;
    lock();
    if (index >= G.update_count) {
        unlock();
        return 0;
    }
    update = G.updates[index];
    memset(out, 0, sizeof(*out));
    out->handle = update->handle;
    out->manager = update->manager;
    out->context = (uint64_t)update->context;
    out->wall_filetime = update->wall_filetime;
    out->start = update->start;
    out->last_at = update->last_at;
    out->options = update->options;
    out->aborted = (uint32_t)update->aborted;
    out->completed = (uint32_t)update->completed;
    out->complete_hresult = update->complete_hresult;
    out->delivered_count = (uint32_t)update->delivered_count;
    out->worker = (uint32_t)update->worker_state;
    unlock();
    return 1;
}

uint32_t mpfake_update_delivered(uint32_t index, uint32_t *notify, uint32_t capacity)
{
    uint32_t count = 0, i;
    lock();
    if (index < G.update_count) {
        update_t *update = G.updates[index];
        count = (uint32_t)update->delivered_count;
        for (i = 0; notify != NULL && i < count && i < capacity; i++)
            notify[i] = update->delivered[i];
    }
    unlock();
    return count;
}
