/* The capture: the callback MpClient calls, and the per-update queues it fills (the contract is in
 * mpupdate/_cdef/mpupdate_callback.h).
 *
 * Compiled after prelude.h, mpclient_types.h and mpupdate_capture_types.h (its record, batch and
 * constants) by build_mpclient.py.
 * The callback runs on the DLL's thread and runs no Python: it copies the notification (MpClient
 * frees it when the callback returns) into the queue its context token names, under one
 * process-wide lock, and wakes the consumer if one waits. Tokens, not pointers, travel through
 * MpClient, so a late notification for a closed queue finds nothing and is counted, never
 * dereferenced. The consumer takes whole batches (a buffer swap under the lock) and waits in
 * mpupdate_queue_wait with the GIL released. */

#define MPUPDATE_NOTIFY_INTERNAL_FAILURE 0x2001u   /* [BIN] */
#define MPUPDATE_NOTIFY_SIGUPDATE_COMPLETE 0x800Du /* [BIN] */
#define MPUPDATE_CALLBACK_TYPE_SIGUPDATE 6u        /* [DOC] MPCALLBACK_TYPE: the union is MPSIGUPDATE_DATA */

_Static_assert(sizeof(mpupdate_record) == 64, "mpupdate_record is 64 bytes, no padding");

#ifdef _WIN32
typedef SRWLOCK mpupdate_lock_t;
typedef CONDITION_VARIABLE mpupdate_cond_t;
static SRWLOCK mpupdate_capture_lock = SRWLOCK_INIT;
#define MPUPDATE_LOCK() AcquireSRWLockExclusive(&mpupdate_capture_lock)
#define MPUPDATE_UNLOCK() ReleaseSRWLockExclusive(&mpupdate_capture_lock)
#define MPUPDATE_THREAD_ID() ((uint64_t)GetCurrentThreadId())
#else
#include <errno.h>
#include <pthread.h>
#include <time.h>
typedef pthread_cond_t mpupdate_cond_t;
static pthread_mutex_t mpupdate_capture_lock = PTHREAD_MUTEX_INITIALIZER;
#define MPUPDATE_LOCK() pthread_mutex_lock(&mpupdate_capture_lock)
#define MPUPDATE_UNLOCK() pthread_mutex_unlock(&mpupdate_capture_lock)
#define MPUPDATE_THREAD_ID() ((uint64_t)(uintptr_t)pthread_self())
#endif

struct mpupdate_queue {
    uintptr_t token;
    int registered;
    struct mpupdate_queue *next; /* the registry: a list, as few updates run at once */
    mpupdate_cond_t cond;
    int waiting; /* a consumer is in mpupdate_queue_wait */
    int woken;   /* a wake (or a change a waiter must see) not yet consumed by a wait */
    uint32_t max_records, max_text;
    /* Filling: what the callback appends to. */
    mpupdate_record *records;
    uint32_t count, capacity;
    uint8_t *text;
    uint32_t text_used, text_capacity;
    uint32_t last_path_offset, last_path_units; /* the previous path in this batch, to share */
    int have_last_path;
    /* Taken: what the consumer reads (swapped with the above by mpupdate_queue_take). */
    mpupdate_record *spare_records;
    uint32_t spare_capacity;
    uint8_t *spare_text;
    uint32_t spare_text_capacity;
    uint64_t dropped, null_data, paths_dropped, captured;
};

static mpupdate_queue *mpupdate_queues;
static uintptr_t mpupdate_next_token = 1;
static uint64_t mpupdate_stray;
static uint32_t mpupdate_registered;

static mpupdate_queue *mpupdate_find(uintptr_t token)
{
    mpupdate_queue *q;
    for (q = mpupdate_queues; q != NULL; q = q->next)
        if (q->token == token)
            return q;
    return NULL;
}

static void mpupdate_signal(mpupdate_queue *q)
{
    q->woken = 1;
    if (q->waiting) {
#ifdef _WIN32
        WakeAllConditionVariable(&q->cond);
#else
        pthread_cond_broadcast(&q->cond);
#endif
    }
}

/* Room for one more record (growing by doubling up to the bound, plus the reserve for the
 * notifications that end an update); 0 when there is none. */
static int mpupdate_room(mpupdate_queue *q, uint32_t notify)
{
    uint32_t limit = q->max_records, wanted;
    mpupdate_record *grown;
    if (notify == MPUPDATE_NOTIFY_SIGUPDATE_COMPLETE || notify == MPUPDATE_NOTIFY_INTERNAL_FAILURE)
        limit += MPUPDATE_RESERVED_RECORDS;
    if (q->count >= limit)
        return 0;
    if (q->count < q->capacity)
        return 1;
    wanted = q->capacity < 32 ? 32 : q->capacity * 2;
    if (wanted > q->max_records + MPUPDATE_RESERVED_RECORDS || wanted < q->capacity)
        wanted = q->max_records + MPUPDATE_RESERVED_RECORDS;
    grown = (mpupdate_record *)realloc(q->records, (size_t)wanted * sizeof(mpupdate_record));
    if (grown == NULL)
        return 0;
    q->records = grown;
    q->capacity = wanted;
    return 1;
}

/* Store a path's text; its byte offset, or -1 when the text space is full. */
static int64_t mpupdate_keep_text(mpupdate_queue *q, const uint16_t *path, uint32_t units)
{
    uint32_t bytes = units * 2, wanted;
    uint8_t *grown;
    if (q->have_last_path && q->last_path_units == units &&
        memcmp(q->text + q->last_path_offset, path, bytes) == 0)
        return (int64_t)q->last_path_offset; /* the same path as the last one: share its text */
    if (bytes > q->max_text - q->text_used)
        return -1;
    if (bytes == 0) /* an empty path: nothing to store; never "the last path" (text may be NULL) */
        return (int64_t)q->text_used;
    if (q->text_used + bytes > q->text_capacity) {
        wanted = q->text_capacity < 4096 ? 4096 : q->text_capacity;
        while (wanted < q->text_used + bytes && wanted < q->max_text)
            wanted = wanted > q->max_text / 2 ? q->max_text : wanted * 2;
        grown = (uint8_t *)realloc(q->text, wanted);
        if (grown == NULL)
            return -1;
        q->text = grown;
        q->text_capacity = wanted;
    }
    memcpy(q->text + q->text_used, path, bytes);
    q->last_path_offset = q->text_used;
    q->last_path_units = units;
    q->have_last_path = 1;
    q->text_used += bytes;
    return (int64_t)q->last_path_offset;
}

static int32_t WINAPI mpupdate_callback(uintptr_t context, MPCALLBACK_DATA *pData)
{
    mpupdate_queue *q;
    mpupdate_record record;
    const uint16_t *path = NULL;
    uint32_t units = 0;
    int64_t offset;

    /* Copy out first, without the lock: the DLL's memory is valid until we return. */
    if (pData != NULL) {
        memset(&record, 0, sizeof record);
        record.notify = pData->Notify;
        record.hresult = pData->hResult;
        record.filetime = pData->TimeStamp;
        record.type = pData->Type;
        record.thread = MPUPDATE_THREAD_ID();
        if (record.type == MPUPDATE_CALLBACK_TYPE_SIGUPDATE && pData->Data.pSigUpdateData != NULL) {
            const MPSIGUPDATE_DATA *sig = pData->Data.pSigUpdateData;
            record.flags = MPUPDATE_RECORD_HAS_DATA;
            record.percent = sig->dwPercentComplete;
            record.total = sig->dwTotalUpdates;
            record.index = sig->dwCurrentUpdateIndex;
            record.update_type = sig->eType;
            record.stage = sig->Stage;
            path = sig->Path;
            if (path != NULL) {
                record.flags |= MPUPDATE_RECORD_HAS_PATH;
                while (units < MPUPDATE_PATH_MAX_UNITS && path[units] != 0)
                    units++;
                /* No terminator within the limit (a Windows path has at most 32,766 units and its
                 * NUL): cut here. Nothing past the limit is read. */
                if (units == MPUPDATE_PATH_MAX_UNITS)
                    record.flags |= MPUPDATE_RECORD_PATH_CUT;
                record.path_units = units;
            }
        }
    }

    MPUPDATE_LOCK();
    q = mpupdate_find(context);
    if (q == NULL) {
        mpupdate_stray++;
    } else if (pData == NULL) {
        q->null_data++;
        mpupdate_signal(q);
    } else if (!mpupdate_room(q, record.notify)) {
        q->dropped++;
        mpupdate_signal(q);
    } else {
        if (path != NULL) {
            offset = mpupdate_keep_text(q, path, units);
            if (offset < 0) {
                record.flags = (record.flags & ~(uint32_t)MPUPDATE_RECORD_HAS_PATH) |
                               MPUPDATE_RECORD_PATH_DROPPED;
                record.path_units = 0;
                q->paths_dropped++;
            } else {
                record.path_offset = (uint32_t)offset;
            }
        }
        q->records[q->count++] = record;
        q->captured++;
        mpupdate_signal(q);
    }
    MPUPDATE_UNLOCK();
    return 0;
}

static mpupdate_queue *mpupdate_queue_new(uint32_t max_records, uint32_t max_text_bytes)
{
    mpupdate_queue *q = (mpupdate_queue *)calloc(1, sizeof(mpupdate_queue));
    if (q == NULL)
        return NULL;
    q->max_records = max_records;
    q->max_text = max_text_bytes;
#ifdef _WIN32
    InitializeConditionVariable(&q->cond);
#else
    {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
#if defined(__linux__)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
#endif
        if (pthread_cond_init(&q->cond, &attr) != 0) {
            pthread_condattr_destroy(&attr);
            free(q);
            return NULL;
        }
        pthread_condattr_destroy(&attr);
    }
#endif
    MPUPDATE_LOCK();
    q->token = mpupdate_next_token++;
    q->registered = 1;
    q->next = mpupdate_queues;
    mpupdate_queues = q;
    mpupdate_registered++;
    MPUPDATE_UNLOCK();
    return q;
}

static uintptr_t mpupdate_queue_token(const mpupdate_queue *q)
{
    return q->token;
}

static void mpupdate_queue_close(mpupdate_queue *q)
{
    mpupdate_queue **link;
    MPUPDATE_LOCK();
    if (q->registered) {
        for (link = &mpupdate_queues; *link != NULL; link = &(*link)->next) {
            if (*link == q) {
                *link = q->next;
                break;
            }
        }
        q->registered = 0;
        mpupdate_registered--;
    }
    MPUPDATE_UNLOCK();
}

static void mpupdate_queue_free(mpupdate_queue *q)
{
    if (q == NULL)
        return;
    mpupdate_queue_close(q); /* no callback can reach q once this returns */
#ifndef _WIN32
    pthread_cond_destroy(&q->cond);
#endif
    free(q->records);
    free(q->text);
    free(q->spare_records);
    free(q->spare_text);
    free(q);
}

static uint32_t mpupdate_queue_take(mpupdate_queue *q, mpupdate_batch *out)
{
    mpupdate_record *records;
    uint8_t *text;
    uint32_t capacity, text_capacity;
    MPUPDATE_LOCK();
    records = q->records;
    capacity = q->capacity;
    text = q->text;
    text_capacity = q->text_capacity;
    out->records = records;
    out->count = q->count;
    out->text = text;
    out->text_bytes = q->text_used;
    out->dropped = q->dropped;
    out->null_data = q->null_data;
    out->paths_dropped = q->paths_dropped;
    out->captured = q->captured;
    out->problems = q->dropped + q->null_data + q->paths_dropped;
    q->records = q->spare_records;
    q->capacity = q->spare_capacity;
    q->text = q->spare_text;
    q->text_capacity = q->spare_text_capacity;
    q->spare_records = records;
    q->spare_capacity = capacity;
    q->spare_text = text;
    q->spare_text_capacity = text_capacity;
    q->count = 0;
    q->text_used = 0;
    q->have_last_path = 0;
    q->woken = 0; /* what woke a waiter is in this batch; a later wake sets it again */
    MPUPDATE_UNLOCK();
    return out->count;
}

static int mpupdate_queue_wait(mpupdate_queue *q, uint32_t timeout_ms)
{
    int woken;
#ifndef _WIN32
    struct timespec deadline;
#if defined(__linux__)
    clock_gettime(CLOCK_MONOTONIC, &deadline);
#else
    clock_gettime(CLOCK_REALTIME, &deadline);
#endif
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
#endif
    MPUPDATE_LOCK();
    q->waiting++;
    while (!q->woken && q->count == 0) {
#ifdef _WIN32
        /* Whole-wait timeout: a spurious wake-up only returns early, which callers allow. */
        if (!SleepConditionVariableSRW(&q->cond, &mpupdate_capture_lock, timeout_ms, 0))
            break;
        timeout_ms = 0;
#else
        if (pthread_cond_timedwait(&q->cond, &mpupdate_capture_lock, &deadline) == ETIMEDOUT)
            break;
#endif
    }
    q->waiting--;
    woken = q->woken || q->count > 0;
    q->woken = 0;
    MPUPDATE_UNLOCK();
    return woken;
}

static void mpupdate_queue_wake(mpupdate_queue *q)
{
    MPUPDATE_LOCK();
    mpupdate_signal(q);
    MPUPDATE_UNLOCK();
}

static uint64_t mpupdate_stray_notifications(void)
{
    uint64_t n;
    MPUPDATE_LOCK();
    n = mpupdate_stray;
    MPUPDATE_UNLOCK();
    return n;
}

static uint32_t mpupdate_registered_queues(void)
{
    uint32_t n;
    MPUPDATE_LOCK();
    n = mpupdate_registered;
    MPUPDATE_UNLOCK();
    return n;
}
