/* The native fake of MpClient.dll: a thin C body for mpupdate.fakes' one behavioural model.
 *
 * A real shared library (a DLL on Windows), loaded by the project's compiled module exactly as it
 * loads MpClient.dll, so the run-time loader, the exports' calling convention and callbacks made
 * by C, also from threads Python never created, are exercised. What the fake *does* (handles,
 * argument checks, the scenario, time, aborts, violations, the call log) is decided by the model
 * registered with mpfake_set_model: mpupdate.fakes.FakeMpClient, through NativeFakeMpClient. This
 * file only
 *   - exports the seven functions with the DLL's signatures and WINAPI convention, each handing
 *     its arguments to the model;
 *   - delivers prepared notifications: one allocation each, the callback called from C, the block
 *     poisoned and freed as soon as the callback returns (MpClient frees it then too);
 *   - runs the model's delivery threads (pthreads; winpthreads on Windows).
 * The control API is declared in mpfake_control.h. */

#include "mpupdate/_csrc/prelude.h"
#include "mpupdate/_cdef/mpclient_types.h"
#include "mpfake_control.h"

#include <pthread.h>

#define MPFAKE_ABI_VERSION 2u
#define MPFAKE_E_UNEXPECTED ((int32_t)0x8000FFFFL) /* no model registered */
#define MPFAKE_POISON 0xDD                          /* what freed notification memory reads */

/* The seven exports, once: in mpupdate.backends.EXPORTS order (the model's export_index). */
#define MPFAKE_EXPORTS(X)                                                                      \
    X(MpManagerOpen)                                                                           \
    X(MpUpdateStart)                                                                           \
    X(MpUpdateControl)                                                                         \
    X(MpHandleClose)                                                                           \
    X(MpErrorMessageFormat)                                                                    \
    X(MpFreeMemory)                                                                            \
    X(MpManagerVersionQuery)

#define MPFAKE_INDEX(name) EXPORT_##name,
enum { MPFAKE_EXPORTS(MPFAKE_INDEX) EXPORT_COUNT };
#define MPFAKE_NAME(name) #name,
static const char *const export_names[EXPORT_COUNT] = {MPFAKE_EXPORTS(MPFAKE_NAME)};

/* The name of export number 'index' (NULL past the last): lets the controller check that this
 * library numbers the exports as it does. Declared here, not in mpfake_control.h, because only
 * that check needs it. */
const char *mpfake_export_name(uint32_t index);
const char *mpfake_export_name(uint32_t index)
{
    return index < EXPORT_COUNT ? export_names[index] : NULL;
}

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static mpfake_model_fn g_model;  /* read and written atomically */
static uint32_t g_blocks;        /* notifications delivered, ever (atomic) */

/* -- the exports: the model answers ---------------------------------------------------------- */

#define ADDRESS(pointer) ((uint64_t)(uintptr_t)(pointer))

static int32_t ask(uint32_t index, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
    mpfake_model_fn model = __atomic_load_n(&g_model, __ATOMIC_ACQUIRE);
    return model == NULL ? MPFAKE_E_UNEXPECTED : model(index, a0, a1, a2, a3);
}

int32_t WINAPI MpManagerOpen(uint32_t dwReserved, MPHANDLE *phMpHandle)
{
    return ask(EXPORT_MpManagerOpen, dwReserved, ADDRESS(phMpHandle), 0, 0);
}

int32_t WINAPI MpUpdateStart(MPHANDLE hMpHandle, uint32_t dwUpdateOptions,
                             MPCALLBACK_INFO *pCallbackInfo, MPHANDLE *phUpdateHandle)
{
    return ask(EXPORT_MpUpdateStart, ADDRESS(hMpHandle), dwUpdateOptions, ADDRESS(pCallbackInfo),
               ADDRESS(phUpdateHandle));
}

int32_t WINAPI MpUpdateControl(MPHANDLE hMpHandle, uint32_t control)
{
    return ask(EXPORT_MpUpdateControl, ADDRESS(hMpHandle), control, 0, 0);
}

int32_t WINAPI MpHandleClose(MPHANDLE hMpHandle)
{
    return ask(EXPORT_MpHandleClose, ADDRESS(hMpHandle), 0, 0, 0);
}

int32_t WINAPI MpErrorMessageFormat(MPHANDLE hMpHandle, int32_t hr, uint16_t **ppszText)
{
    return ask(EXPORT_MpErrorMessageFormat, ADDRESS(hMpHandle), (uint32_t)hr, ADDRESS(ppszText),
               0);
}

void WINAPI MpFreeMemory(void *pMemory)
{
    (void)ask(EXPORT_MpFreeMemory, ADDRESS(pMemory), 0, 0, 0);
}

int32_t WINAPI MpManagerVersionQuery(MPHANDLE hMpHandle, MPVERSION_INFO *pInfo)
{
    return ask(EXPORT_MpManagerVersionQuery, ADDRESS(hMpHandle), ADDRESS(pInfo), 0, 0);
}

/* -- identity and the model ------------------------------------------------------------------ */

uint32_t mpfake_abi_version(void)
{
    return MPFAKE_ABI_VERSION;
}

uint32_t mpfake_sizeof(uint32_t which)
{
    return which == 0 ? (uint32_t)sizeof(mpfake_notification) : 0;
}

void mpfake_set_model(mpfake_model_fn model)
{
    __atomic_store_n(&g_model, model, __ATOMIC_RELEASE);
}

/* -- delivery -------------------------------------------------------------------------------- */

static uint32_t g_quarantine_on;
static void **g_quarantine;
static size_t g_quarantine_count, g_quarantine_capacity;

/* A delivered block: freed, or kept (already poisoned) while the quarantine is on. */
static void release_block(void *block)
{
    int kept = 0;
    pthread_mutex_lock(&g_lock);
    if (g_quarantine_on) {
        if (g_quarantine_count == g_quarantine_capacity) {
            size_t capacity = g_quarantine_capacity ? 2 * g_quarantine_capacity : 64;
            void **grown = (void **)realloc(g_quarantine, capacity * sizeof(void *));
            if (grown != NULL) {
                g_quarantine = grown;
                g_quarantine_capacity = capacity;
            }
        }
        if (g_quarantine_count < g_quarantine_capacity) {
            g_quarantine[g_quarantine_count++] = block;
            kept = 1;
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (!kept)
        free(block);
}

/* Whether an item's offsets fit inside it (a malformed item is not delivered). */
static int well_formed(const mpfake_notification *item)
{
    if (item->bytes == NULL || item->size < sizeof(MPCALLBACK_DATA))
        return 0;
    if (item->data_offset != 0) {
        if (item->data_offset < sizeof(MPCALLBACK_DATA) ||
            item->data_offset > item->size - sizeof(MPSIGUPDATE_DATA) ||
            item->data_offset % sizeof(void *) != 0)
            return 0;
        if (item->path_offset != 0 &&
            (item->path_offset < item->data_offset + sizeof(MPSIGUPDATE_DATA) ||
             item->path_offset > item->size - sizeof(uint16_t) || item->path_offset % 2 != 0 ||
             item->bytes[item->size - 2] != 0 || item->bytes[item->size - 1] != 0))
            return 0; /* the path must end, with its NUL, inside the item */
    } else if (item->path_offset != 0) {
        return 0;
    }
    return 1;
}

uint32_t mpfake_deliver(uint64_t function, uint64_t context, const mpfake_notification *items,
                        uint32_t count, const int32_t *stop)
{
    MPCALLBACK_FUNCTION callback = (MPCALLBACK_FUNCTION)(uintptr_t)function;
    uint32_t delivered = 0;
    if (callback == NULL || items == NULL)
        return 0;
    for (; delivered < count; delivered++) {
        const mpfake_notification *item = &items[delivered];
        MPCALLBACK_DATA *data;
        unsigned char *block;
        if (delivered > 0 && stop != NULL && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
            break;
        if (!well_formed(item))
            break;
        block = (unsigned char *)malloc(item->size);
        if (block == NULL)
            break;
        memcpy(block, item->bytes, item->size);
        data = (MPCALLBACK_DATA *)(void *)block;
        if (item->data_offset != 0) {
            MPSIGUPDATE_DATA *update = (MPSIGUPDATE_DATA *)(void *)(block + item->data_offset);
            data->Data.pSigUpdateData = update;
            if (item->path_offset != 0)
                update->Path = (uint16_t *)(void *)(block + item->path_offset);
        }
        callback((uintptr_t)context, data);
        /* MpClient frees the notification as soon as the callback returns. */
        memset(block, MPFAKE_POISON, item->size);
        release_block(block);
        __atomic_add_fetch(&g_blocks, 1u, __ATOMIC_RELAXED);
    }
    return delivered;
}

void mpfake_set_quarantine(uint32_t on)
{
    pthread_mutex_lock(&g_lock);
    g_quarantine_on = on != 0;
    pthread_mutex_unlock(&g_lock);
}

void mpfake_release_quarantine(void)
{
    void **blocks;
    size_t count, i;
    pthread_mutex_lock(&g_lock);
    blocks = g_quarantine;
    count = g_quarantine_count;
    g_quarantine = NULL;
    g_quarantine_count = g_quarantine_capacity = 0;
    pthread_mutex_unlock(&g_lock);
    for (i = 0; i < count; i++)
        free(blocks[i]);
    free(blocks);
}

uint32_t mpfake_blocks_delivered(void)
{
    return __atomic_load_n(&g_blocks, __ATOMIC_RELAXED);
}

/* -- threads --------------------------------------------------------------------------------- */

typedef struct slot {
    struct slot *next;
    uint64_t id;
    pthread_t thread;
    mpfake_thread_fn body;
    uint64_t argument;
    int running;
    int joining; /* a join waits for it: it stays listed (and answers 'alive') until joined */
} slot;

static slot *g_threads;
static pthread_cond_t g_joined = PTHREAD_COND_INITIALIZER;
static uint64_t g_next_thread = 1;
static uint32_t g_live;

static void *thread_main(void *argument)
{
    slot *self = (slot *)argument;
    self->body(self->argument);
    pthread_mutex_lock(&g_lock);
    self->running = 0;
    g_live--;
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

uint64_t mpfake_thread_start(mpfake_thread_fn body, uint64_t argument)
{
    slot *created = (slot *)calloc(1, sizeof(slot));
    if (created == NULL || body == NULL) {
        free(created);
        return 0;
    }
    created->body = body;
    created->argument = argument;
    created->running = 1;
    pthread_mutex_lock(&g_lock);
    created->id = g_next_thread++;
    g_live++;
    if (pthread_create(&created->thread, NULL, thread_main, created) != 0) {
        g_live--;
        pthread_mutex_unlock(&g_lock);
        free(created);
        return 0;
    }
    created->next = g_threads; /* listed only once pthread_create has set 'thread' */
    g_threads = created;
    pthread_mutex_unlock(&g_lock);
    return created->id;
}

static slot **find_thread(uint64_t thread)
{
    slot **link;
    for (link = &g_threads; *link != NULL; link = &(*link)->next)
        if ((*link)->id == thread)
            return link;
    return NULL;
}

int32_t mpfake_thread_join(uint64_t thread)
{
    slot **link, *found;
    pthread_mutex_lock(&g_lock);
    link = find_thread(thread);
    found = link != NULL ? *link : NULL;
    if (found == NULL || pthread_equal(found->thread, pthread_self())) {
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    if (found->joining) { /* another join waits for it: wait for that one to finish */
        while (find_thread(thread) != NULL)
            pthread_cond_wait(&g_joined, &g_lock);
        pthread_mutex_unlock(&g_lock);
        return 0;
    }
    found->joining = 1;
    pthread_mutex_unlock(&g_lock);
    pthread_join(found->thread, NULL);
    pthread_mutex_lock(&g_lock);
    link = find_thread(thread); /* the list may have changed meanwhile */
    if (link != NULL)
        *link = found->next;
    pthread_cond_broadcast(&g_joined);
    pthread_mutex_unlock(&g_lock);
    free(found);
    return 0;
}

uint32_t mpfake_thread_alive(uint64_t thread)
{
    slot **link;
    uint32_t alive;
    pthread_mutex_lock(&g_lock);
    link = find_thread(thread);
    alive = link != NULL && (*link)->running != 0;
    pthread_mutex_unlock(&g_lock);
    return alive;
}

uint32_t mpfake_live_threads(void)
{
    uint32_t live;
    pthread_mutex_lock(&g_lock);
    live = g_live;
    pthread_mutex_unlock(&g_lock);
    return live;
}
