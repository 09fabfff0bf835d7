/* mpupdate run-time loader for MpClient.dll (or anything with its exports, such as the native fake).
 *
 * Compiled after mpclient_types.h by build_mpclient.py, and on its own by the mingw layout check.
 * Nothing here is linked against MpClient: every export is resolved after an explicit,
 * absolute-path load, and a stub answers a clear HRESULT when nothing (or not that export) is
 * loaded, so a call before loading never crashes. */

#define MPUPDATE_E_NOT_LOADED ((int32_t)0x8007007EL)     /* HRESULT_FROM_WIN32(ERROR_MOD_NOT_FOUND) */
#define MPUPDATE_E_PROC_NOT_FOUND ((int32_t)0x8007007FL) /* HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND) */
#define MPUPDATE_E_INVALID_OPERATION ((int32_t)0x800710DDL) /* already loaded / nothing to unload */
#define MPUPDATE_E_INVALIDARG ((int32_t)0x80070057L)
#define MPUPDATE_E_OUTOFMEMORY ((int32_t)0x8007000EL)
#define MPUPDATE_E_FAIL ((int32_t)0x80004005L)
#define MPUPDATE_FACILITY_WIN32 0x80070000UL  /* HRESULT_FROM_WIN32(e) = this | (e & 0xFFFF) */

/* The seven exports, once (in mpupdate.backends.EXPORTS order, which a test holds equal to this
 * list, to mpclient_exports.h and to every other list of them): kind (HR: returns an HRESULT,
 * VOID: returns nothing), name, parameters, arguments. Everything below is generated from it. */
#define MPUPDATE_EXPORTS(X)                                                                    \
    X(HR, MpManagerOpen, (uint32_t dwReserved, MPHANDLE *phMpHandle), (dwReserved, phMpHandle)) \
    X(HR, MpUpdateStart,                                                                       \
      (MPHANDLE hMpHandle, uint32_t dwUpdateOptions, MPCALLBACK_INFO *pCallbackInfo,           \
       MPHANDLE *phUpdateHandle),                                                              \
      (hMpHandle, dwUpdateOptions, pCallbackInfo, phUpdateHandle))                             \
    X(HR, MpUpdateControl, (MPHANDLE hMpHandle, uint32_t control), (hMpHandle, control))       \
    X(HR, MpHandleClose, (MPHANDLE hMpHandle), (hMpHandle))                                    \
    X(HR, MpErrorMessageFormat, (MPHANDLE hMpHandle, int32_t hr, uint16_t **ppszText),         \
      (hMpHandle, hr, ppszText))                                                               \
    X(VOID, MpFreeMemory, (void *pMemory), (pMemory))                                          \
    X(HR, MpManagerVersionQuery, (MPHANDLE hMpHandle, MPVERSION_INFO *pInfo), (hMpHandle, pInfo))

#define MPUPDATE_RESULT_HR int32_t
#define MPUPDATE_RESULT_VOID void
/* mpupdate_<name>_fn: the export's type, WINAPI as the DLL's (pinned by the mingw check). */
#define MPUPDATE_TYPEDEF(kind, name, params, args) \
    typedef MPUPDATE_RESULT_##kind (WINAPI *mpupdate_##name##_fn) params;
MPUPDATE_EXPORTS(MPUPDATE_TYPEDEF)

#define MPUPDATE_FIELD(kind, name, params, args) mpupdate_##name##_fn name;
static struct {
    void *module;
    MPUPDATE_EXPORTS(MPUPDATE_FIELD)
} mpupdate_dll;

#define MPUPDATE_NAME(kind, name, params, args) #name,
static const char *const mpupdate_export_names[] = {MPUPDATE_EXPORTS(MPUPDATE_NAME)};
#define MPUPDATE_EXPORT_COUNT (sizeof(mpupdate_export_names) / sizeof(mpupdate_export_names[0]))

static char mpupdate_error_text[512];

static void mpupdate_set_error(const char *text)
{
    size_t n = 0;
    if (text != NULL) {
        while (text[n] != '\0' && n < sizeof(mpupdate_error_text) - 1) {
            mpupdate_error_text[n] = text[n];
            n++;
        }
    }
    mpupdate_error_text[n] = '\0';
}

#ifdef _WIN32
#ifndef LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR
#define LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR 0x00000100
#endif
#ifndef LOAD_LIBRARY_SEARCH_SYSTEM32
#define LOAD_LIBRARY_SEARCH_SYSTEM32 0x00000800
#endif

static void *mpupdate_symbol(const char *name)
{
    /* GetProcAddress returns FARPROC; go through an integer to keep -Wcast-function-type quiet. */
    return (void *)(uintptr_t)GetProcAddress((HMODULE)mpupdate_dll.module, name);
}

static int32_t mpupdate_open_module(const char *path_utf8)
{
    HMODULE module;
    DWORD err;
    wchar_t *wide;
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path_utf8, -1, NULL, 0);
    if (n <= 0 || n > 32768) {
        mpupdate_set_error("the path is not valid UTF-8 or is longer than 32767 characters");
        return MPUPDATE_E_INVALIDARG;
    }
    wide = (wchar_t *)malloc((size_t)n * sizeof(wchar_t));
    if (wide == NULL) {
        mpupdate_set_error("out of memory");
        return MPUPDATE_E_OUTOFMEMORY;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path_utf8, -1, wide, n);
    module = LoadLibraryExW(wide, NULL,
                            LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32);
    err = GetLastError();
    free(wide);
    if (module == NULL) {
        mpupdate_set_error("LoadLibraryExW failed");
        return err == 0 ? MPUPDATE_E_FAIL : (int32_t)(MPUPDATE_FACILITY_WIN32 | (err & 0xFFFFUL));
    }
    mpupdate_dll.module = (void *)module;
    return 0;
}

static void mpupdate_close_module(void)
{
    FreeLibrary((HMODULE)mpupdate_dll.module);
}
#else
#include <dlfcn.h>

static void *mpupdate_symbol(const char *name)
{
    return dlsym(mpupdate_dll.module, name);
}

static int32_t mpupdate_open_module(const char *path_utf8)
{
    void *module = dlopen(path_utf8, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        mpupdate_set_error(dlerror());
        return MPUPDATE_E_NOT_LOADED;
    }
    mpupdate_dll.module = module;
    return 0;
}

static void mpupdate_close_module(void)
{
    dlclose(mpupdate_dll.module);
}
#endif

static int32_t mpupdate_load(const char *path_utf8)
{
    int32_t hr;
    if (path_utf8 == NULL || path_utf8[0] == '\0') {
        mpupdate_set_error("no path given");
        return MPUPDATE_E_INVALIDARG;
    }
    if (mpupdate_dll.module != NULL) {
        mpupdate_set_error("a library is already loaded; unload it first");
        return MPUPDATE_E_INVALID_OPERATION;
    }
    hr = mpupdate_open_module(path_utf8);
    if (hr != 0)
        return hr;
    mpupdate_set_error("");
    /* Function pointers go through an integer: ISO C has no object-to-function pointer cast. */
#define MPUPDATE_RESOLVE(kind, name, params, args) \
    mpupdate_dll.name = (mpupdate_##name##_fn)(uintptr_t)mpupdate_symbol(#name);
    MPUPDATE_EXPORTS(MPUPDATE_RESOLVE)
    return 0;
}

static int32_t mpupdate_unload(void)
{
    if (mpupdate_dll.module == NULL)
        return MPUPDATE_E_INVALID_OPERATION;
    mpupdate_close_module();
    memset(&mpupdate_dll, 0, sizeof(mpupdate_dll));
    return 0;
}

static int mpupdate_is_loaded(void)
{
    return mpupdate_dll.module != NULL;
}

static uint32_t mpupdate_missing_exports(void)
{
    uint32_t missing = 0, bit = 0;
    if (mpupdate_dll.module == NULL)
        return (1u << MPUPDATE_EXPORT_COUNT) - 1u;
#define MPUPDATE_MISSING(kind, name, params, args) \
    if (mpupdate_dll.name == NULL)                 \
        missing |= 1u << bit;                      \
    bit++;
    MPUPDATE_EXPORTS(MPUPDATE_MISSING)
    return missing;
}

static const char *mpupdate_export_name(uint32_t index)
{
    return index < MPUPDATE_EXPORT_COUNT ? mpupdate_export_names[index] : NULL;
}

static const char *mpupdate_load_error(void)
{
    return mpupdate_error_text;
}

static size_t mpupdate_utf16_length(const uint16_t *text, size_t max_units)
{
    size_t n = 0;
    if (text == NULL)
        return 0;
    while (n < max_units && text[n] != 0)
        n++;
    return n;
}

/* What a stub answers when its export is not there: nothing loaded, or loaded without it. */
#define MPUPDATE_MISSING_EXPORT() \
    (mpupdate_dll.module == NULL ? MPUPDATE_E_NOT_LOADED : MPUPDATE_E_PROC_NOT_FOUND)

/* The stubs the compiled module calls: the resolved export, or an HRESULT saying why not. */
#define MPUPDATE_STUB_HR(name, params, args)         \
    static int32_t name params                       \
    {                                                \
        if (mpupdate_dll.name == NULL)               \
            return MPUPDATE_MISSING_EXPORT();        \
        return mpupdate_dll.name args;               \
    }
/* Without the export there is nothing that could have allocated what is to be freed. */
#define MPUPDATE_STUB_VOID(name, params, args)       \
    static void name params                          \
    {                                                \
        if (mpupdate_dll.name != NULL)               \
            mpupdate_dll.name args;                  \
    }
#define MPUPDATE_STUB(kind, name, params, args) MPUPDATE_STUB_##kind(name, params, args)
MPUPDATE_EXPORTS(MPUPDATE_STUB)
