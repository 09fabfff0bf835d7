/* The x86 (32-bit Windows) ABI check of the Windows lane, run under Debian's wine32.
 *
 *   x86_check.exe PATH_TO_MPFAKE_DLL
 *
 * Built by i686-w64-mingw32-gcc from our run-time loader (mpupdate/_csrc/loader.c, the code the
 * compiled module uses) and run against the native fake built as a 32-bit DLL. On x86 the
 * exports and the callback are stdcall: a convention mismatch on either side corrupts the stack
 * on every call, so many calls in a row crash or misbehave. Checked here:
 * - the loader resolves all seven exports by their undecorated names (as MpClient.dll exports
 *   them), and the stdcall-decorated names do not exist;
 * - the exports are called through the loader's WINAPI types, many times, and hand their
 *   arguments intact to the model (here a small C model standing in for the Python one);
 * - the library calls our WINAPI callback with the right context and data, on the calling thread
 *   (mpfake_deliver inside MpUpdateStart) and from threads it creates (ASYNC).
 * Exit status 0 and a last line "x86 check: OK" on success. The lane also builds and runs it for
 * x64 under wine64, which proves the check itself wherever wine32 cannot be installed. */
#include "mpupdate/_csrc/prelude.h"
#include "mpupdate/_cdef/mpclient_types.h"
#include "mpupdate/_csrc/loader.c"
#include "mpupdate/fakes/native/mpfake_control.h"

#include <stdio.h>

#if !defined(_WIN32)
#error "x86_check.c is for Windows (built for x86; the lane also runs an x64 build of it)"
#endif

#define CONTEXT_VALUE ((uintptr_t)0x5EED1234u)
#define MANAGER ((MPHANDLE)(uintptr_t)0x1000u)
#define UPDATE ((MPHANDLE)(uintptr_t)0x2000u)
#define ROUNDS 200
#define ITEMS 5 /* START, three DOWNLOAD_PROGRESS with data and a path, COMPLETE */

typedef void (*set_model_fn)(mpfake_model_fn);
typedef uint32_t (*deliver_fn)(uint64_t, uint64_t, const mpfake_notification *, uint32_t,
                               const int32_t *);
typedef uint64_t (*thread_start_fn)(mpfake_thread_fn, uint64_t);
typedef int32_t (*thread_join_fn)(uint64_t);

static deliver_fn deliver;
static thread_start_fn thread_start;
static thread_join_fn thread_join;

/* The prepared notifications, laid out as mpfake_control.h says. */
typedef struct {
    MPCALLBACK_DATA data;
    MPSIGUPDATE_DATA update;
    uint16_t path[16];
} prepared;
static prepared blocks[ITEMS];
static mpfake_notification items[ITEMS];

static uint64_t g_callback, g_context, g_worker;
static volatile LONG g_calls, g_bad, g_percent_sum, g_model_bad;
static HANDLE g_done;
static const uint16_t denied[] = {'D', 'e', 'n', 'i', 'e', 'd', '.', 0};

static void prepare(void)
{
    static const uint16_t path[] = {'C', ':', '\\', 'x', '.', 'v', 'd', 'm', 0};
    int i;
    memset(blocks, 0, sizeof(blocks));
    for (i = 0; i < ITEMS; i++) {
        blocks[i].data.Type = 6;
        items[i].bytes = (const uint8_t *)&blocks[i];
        items[i].size = sizeof(prepared);
    }
    blocks[0].data.Notify = 0x8001;
    blocks[ITEMS - 1].data.Notify = 0x800D;
    for (i = 1; i < ITEMS - 1; i++) {
        blocks[i].data.Notify = 0x8006;
        blocks[i].update.dwPercentComplete = 25u * (uint32_t)i;
        blocks[i].update.dwTotalUpdates = 1;
        blocks[i].update.Stage = 2;
        memcpy(blocks[i].path, path, sizeof(path));
        items[i].data_offset = (uint32_t)offsetof(prepared, update);
        items[i].path_offset = (uint32_t)offsetof(prepared, path);
    }
}

static void deliver_all(uint64_t unused)
{
    (void)unused;
    deliver(g_callback, g_context, items, ITEMS, NULL);
}

/* A model standing in for FakeMpClient: checks what the exports hand it, answers. */
static int32_t model(uint32_t index, uint64_t a0, uint64_t a1, uint64_t a2,
                                   uint64_t a3)
{
    switch (index) {
    case 0: /* MpManagerOpen */
        if (a0 != 0 || a1 == 0)
            InterlockedIncrement(&g_model_bad);
        *(MPHANDLE *)(uintptr_t)a1 = MANAGER;
        return 0;
    case 1: { /* MpUpdateStart */
        MPCALLBACK_INFO *info = (MPCALLBACK_INFO *)(uintptr_t)a2;
        if ((MPHANDLE)(uintptr_t)a0 != MANAGER || info == NULL || a3 == 0)
            InterlockedIncrement(&g_model_bad);
        g_callback = (uint64_t)(uintptr_t)info->pfnCallbackFunction;
        g_context = info->CallbackContext;
        *(MPHANDLE *)(uintptr_t)a3 = UPDATE;
        if (a1 & 1u) /* ASYNC: from a thread the library creates */
            g_worker = thread_start(deliver_all, 0);
        else
            deliver_all(0);
        return 0;
    }
    case 2: /* MpUpdateControl */
        return a1 == 0 ? 0 : (int32_t)0x800710DDL;
    case 3: /* MpHandleClose */
        if ((MPHANDLE)(uintptr_t)a0 == UPDATE && g_worker != 0) {
            thread_join(g_worker);
            g_worker = 0;
        }
        return 0;
    case 4: /* MpErrorMessageFormat */
        if ((uint32_t)a1 != 0x80070005u || a2 == 0)
            return (int32_t)0x80004005L;
        *(const uint16_t **)(uintptr_t)a2 = denied;
        return 0;
    case 5: /* MpFreeMemory */
        if ((const uint16_t *)(uintptr_t)a0 != denied)
            InterlockedIncrement(&g_model_bad);
        return 0;
    case 6: /* MpManagerVersionQuery */
        memset((void *)(uintptr_t)a1, 0, sizeof(MPVERSION_INFO));
        return 0;
    default:
        InterlockedIncrement(&g_model_bad);
        return (int32_t)0x80004005L;
    }
}

static int32_t WINAPI on_notify(uintptr_t context, MPCALLBACK_DATA *data)
{
    InterlockedIncrement(&g_calls);
    if (context != CONTEXT_VALUE || data == NULL || data->Type != 6)
        InterlockedIncrement(&g_bad);
    else if (data->Data.pSigUpdateData != NULL) {
        MPSIGUPDATE_DATA *update = data->Data.pSigUpdateData;
        if (update->Path == NULL || update->Path[0] != 'C' || update->Path[8] != 0)
            InterlockedIncrement(&g_bad);
        InterlockedExchangeAdd(&g_percent_sum, (LONG)update->dwPercentComplete);
    }
    if (data != NULL && data->Notify == 0x800D)
        SetEvent(g_done);
    return 0;
}

static int fail(const char *what, long value)
{
    printf("x86 check: FAILED: %s (%ld / 0x%08lX)\n", what, value, (unsigned long)value);
    return 1;
}

static int run(uint32_t options, const char *name)
{
    MPCALLBACK_INFO info;
    MPHANDLE manager = NULL, update = NULL;
    int round;
    info.pfnCallbackFunction = on_notify;
    info.CallbackContext = CONTEXT_VALUE;
    g_calls = g_bad = g_percent_sum = 0;
    for (round = 0; round < ROUNDS; round++) {
        int32_t hr = MpManagerOpen(0, &manager);
        if (hr != 0 || manager != MANAGER)
            return fail("MpManagerOpen", hr);
        ResetEvent(g_done);
        hr = MpUpdateStart(manager, options, &info, &update);
        if (hr != 0 || update != UPDATE)
            return fail("MpUpdateStart", hr);
        if (WaitForSingleObject(g_done, 10000) != WAIT_OBJECT_0)
            return fail("no SIGUPDATE_COMPLETE within 10 s", round);
        if ((hr = MpHandleClose(update)) != 0)
            return fail("MpHandleClose(update)", hr);
        if ((hr = MpHandleClose(manager)) != 0)
            return fail("MpHandleClose(manager)", hr);
    }
    if (g_calls != ROUNDS * ITEMS)
        return fail("callbacks made", g_calls);
    if (g_bad != 0)
        return fail("callbacks with a wrong context, type or path", g_bad);
    if (g_percent_sum != ROUNDS * (25 + 50 + 75))
        return fail("MPSIGUPDATE_DATA read through the callback", g_percent_sum);
    if (g_model_bad != 0)
        return fail("arguments the model received", g_model_bad);
    printf("x86 check: %s: %d updates, %ld stdcall callbacks\n", name, ROUNDS, (long)g_calls);
    return 0;
}

int main(int argc, char **argv)
{
    int32_t hr;
    MPHANDLE manager = NULL;
    MPVERSION_INFO versions;
    uint16_t *text = NULL;
    set_model_fn set_model;
    if (argc != 2) {
        printf("usage: x86_check PATH_TO_MPFAKE_DLL\n");
        return 2;
    }
    g_done = CreateEventW(NULL, TRUE, FALSE, NULL);
    hr = mpupdate_load(argv[1]);
    if (hr != 0)
        return fail(mpupdate_load_error(), hr);
    if (!mpupdate_is_loaded() || mpupdate_utf16_length(NULL, 1) != 0 ||
        strcmp(mpupdate_export_name(0), "MpManagerOpen") != 0)
        return fail("the loader's state", 0);
    if (mpupdate_missing_exports() != 0)
        return fail("exports missing by their undecorated names", (long)mpupdate_missing_exports());
    if (mpupdate_symbol("_MpManagerOpen@8") != NULL || mpupdate_symbol("MpManagerOpen@8") != NULL)
        return fail("the exports carry stdcall decorations", 0);
    printf("x86 check: the seven exports resolve by their undecorated names\n");
    if (MpManagerOpen(0, &manager) != (int32_t)0x8000FFFFL)
        return fail("with no model, MpManagerOpen should answer E_UNEXPECTED", 0);

    set_model = (set_model_fn)(uintptr_t)mpupdate_symbol("mpfake_set_model");
    deliver = (deliver_fn)(uintptr_t)mpupdate_symbol("mpfake_deliver");
    thread_start = (thread_start_fn)(uintptr_t)mpupdate_symbol("mpfake_thread_start");
    thread_join = (thread_join_fn)(uintptr_t)mpupdate_symbol("mpfake_thread_join");
    if (set_model == NULL || deliver == NULL || thread_start == NULL || thread_join == NULL)
        return fail("the fake's control API is not exported", 0);
    prepare();
    set_model(model);

    if (run(0x2, "delivery on the calling thread, synchronous start") != 0)
        return 1;
    if (run(0x3, "delivery from the library's threads, ASYNC") != 0)
        return 1;

    /* The remaining exports through their WINAPI types. */
    if ((hr = MpManagerOpen(0, &manager)) != 0)
        return fail("MpManagerOpen", hr);
    if ((hr = MpManagerVersionQuery(manager, &versions)) != 0)
        return fail("MpManagerVersionQuery", hr);
    if ((hr = MpErrorMessageFormat(manager, (int32_t)0x80070005L, &text)) != 0 || text != denied)
        return fail("MpErrorMessageFormat", hr);
    MpFreeMemory(text);
    if ((hr = MpUpdateControl(manager, 1)) != (int32_t)0x800710DDL)
        return fail("MpUpdateControl(PAUSE) should answer 0x800710DD", hr);
    if ((hr = MpHandleClose(manager)) != 0)
        return fail("MpHandleClose(manager)", hr);
    if (g_model_bad != 0)
        return fail("arguments the model received", g_model_bad);
    set_model(NULL);
    if (mpupdate_unload() != 0)
        return fail("mpupdate_unload", 0);
    printf("x86 check: OK\n");
    return 0;
}
