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
 * - the exports are called through the loader's WINAPI types, many times;
 * - the fake calls our WINAPI callback with the right context and data, on the calling thread
 *   (immediate delivery) and from its own threads (thread delivery, ASYNC).
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
#define ROUNDS 200
#define PROGRESS 3

typedef int32_t (*configure_fn)(const mpfake_scenario *);
typedef int32_t (*reset_fn)(void);

static volatile LONG g_calls;
static volatile LONG g_bad;
static volatile LONG g_percent_sum;
static HANDLE g_done;

static int32_t WINAPI on_notify(uintptr_t context, MPCALLBACK_DATA *data)
{
    InterlockedIncrement(&g_calls);
    if (context != CONTEXT_VALUE || data == NULL || data->Type != 6)
        InterlockedIncrement(&g_bad);
    else if (data->Data.pSigUpdateData != NULL)
        InterlockedExchangeAdd(&g_percent_sum, (LONG)data->Data.pSigUpdateData->dwPercentComplete);
    if (data != NULL && data->Notify == 0x800D)
        SetEvent(g_done);
    return 0;
}

static int fail(const char *what, long value)
{
    printf("x86 check: FAILED: %s (%ld / 0x%08lX)\n", what, value, (unsigned long)value);
    return 1;
}

static int run(uint32_t delivery, uint32_t options, const char *name)
{
    static const uint16_t path[] = {'C', ':', '\\', 'x', '.', 'v', 'd', 'm', 0};
    static const uint16_t denied[] = {'D', 'e', 'n', 'i', 'e', 'd', '.', 0};
    static const mpfake_message messages[] = {{0x80070005u, denied}};
    mpfake_notification progress[PROGRESS];
    mpfake_scenario scenario;
    configure_fn configure = (configure_fn)(uintptr_t)mpupdate_symbol("mpfake_configure");
    reset_fn reset = (reset_fn)(uintptr_t)mpupdate_symbol("mpfake_reset");
    MPCALLBACK_INFO info;
    MPHANDLE manager = NULL, update = NULL;
    int round, i;

    if (configure == NULL || reset == NULL)
        return fail("the fake's control API is not exported", 0);
    memset(progress, 0, sizeof(progress));
    for (i = 0; i < PROGRESS; i++) {
        progress[i].at = 0.1 * (i + 1);
        progress[i].path = path;
        progress[i].notify = 0x8006; /* SIGUPDATE_DOWNLOAD_PROGRESS */
        progress[i].callback_type = 6;
        progress[i].has_data = 1;
        progress[i].percent = 25u * (uint32_t)(i + 1);
        progress[i].total_updates = 1;
        progress[i].stage = 2;
    }
    memset(&scenario, 0, sizeof(scenario));
    scenario.notifications = progress;
    scenario.notification_count = PROGRESS;
    scenario.messages = messages;
    scenario.message_count = 1;
    scenario.has_complete = 1;
    scenario.complete_at = 1.0;
    scenario.delivery = delivery;
    if (reset() != 0 || configure(&scenario) != 0)
        return fail("mpfake_configure refused the scenario", 0);

    info.pfnCallbackFunction = on_notify;
    info.CallbackContext = CONTEXT_VALUE;
    g_calls = g_bad = g_percent_sum = 0;
    for (round = 0; round < ROUNDS; round++) {
        int32_t hr = MpManagerOpen(0, &manager);
        if (hr != 0)
            return fail("MpManagerOpen", hr);
        ResetEvent(g_done);
        hr = MpUpdateStart(manager, options, &info, &update);
        if (hr != 0)
            return fail("MpUpdateStart", hr);
        if (WaitForSingleObject(g_done, 10000) != WAIT_OBJECT_0)
            return fail("no SIGUPDATE_COMPLETE within 10 s", round);
        if ((hr = MpHandleClose(update)) != 0)
            return fail("MpHandleClose(update)", hr);
        if ((hr = MpHandleClose(manager)) != 0)
            return fail("MpHandleClose(manager)", hr);
    }
    /* START + PROGRESS + COMPLETE per round, each with our context. */
    if (g_calls != ROUNDS * (PROGRESS + 2))
        return fail("callbacks made", g_calls);
    if (g_bad != 0)
        return fail("callbacks with a wrong context or type", g_bad);
    if (g_percent_sum != ROUNDS * (25 + 50 + 75))
        return fail("MPSIGUPDATE_DATA read through the callback", g_percent_sum);
    printf("x86 check: %s: %d updates, %ld stdcall callbacks\n", name, ROUNDS, (long)g_calls);
    return 0;
}

int main(int argc, char **argv)
{
    int32_t hr;
    MPHANDLE manager = NULL;
    MPVERSION_INFO versions;
    uint16_t *text = NULL;
    if (argc != 2) {
        printf("usage: x86_check PATH_TO_MPFAKE_DLL\n");
        return 2;
    }
    g_done = CreateEventW(NULL, TRUE, FALSE, NULL);
    hr = mpupdate_load(argv[1]);
    if (hr != 0)
        return fail(mpupdate_load_error(), hr);
    if (!mpupdate_is_loaded() || mpupdate_utf16_length(NULL, 1) != 0)
        return fail("the loader's state", 0);
    if (mpupdate_missing_exports() != 0)
        return fail("exports missing by their undecorated names", (long)mpupdate_missing_exports());
    if (mpupdate_symbol("_MpManagerOpen@8") != NULL || mpupdate_symbol("MpManagerOpen@8") != NULL)
        return fail("the exports carry stdcall decorations", 0);
    printf("x86 check: the seven exports resolve by their undecorated names\n");

    if (run(0, 0x2, "immediate delivery, synchronous start") != 0)
        return 1;
    if (run(1, 0x3, "thread delivery, ASYNC") != 0)
        return 1;

    /* The remaining exports through their WINAPI types. */
    if ((hr = MpManagerOpen(0, &manager)) != 0)
        return fail("MpManagerOpen", hr);
    if ((hr = MpManagerVersionQuery(manager, &versions)) != 0)
        return fail("MpManagerVersionQuery", hr);
    if ((hr = MpErrorMessageFormat(manager, (int32_t)0x80070005L, &text)) != 0 || text == NULL)
        return fail("MpErrorMessageFormat", hr);
    if (text[0] != 'D' || text[6] != '.') /* the fake adds CR LF, as the DLL does */
        return fail("MpErrorMessageFormat's text", text[0]);
    MpFreeMemory(text);
    if ((hr = MpUpdateControl(manager, 1)) != (int32_t)0x800710DDL)
        return fail("MpUpdateControl(PAUSE) should answer 0x800710DD", hr);
    if ((hr = MpHandleClose(manager)) != 0)
        return fail("MpHandleClose(manager)", hr);
    if (mpupdate_unload() != 0)
        return fail("mpupdate_unload", 0);
    printf("x86 check: OK\n");
    return 0;
}
