/* Our run-time loader (mpupdate/_csrc/loader.c). One library per process.
 *
 * mpupdate_load: path is an absolute UTF-8 path. Windows: LoadLibraryExW with
 *   LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_SYSTEM32, so neither the DLL nor its
 *   dependencies can come from the current directory or PATH. Elsewhere: dlopen(RTLD_NOW|RTLD_LOCAL).
 *   Returns S_OK, or a failure HRESULT (HRESULT_FROM_WIN32 of the loader's error on Windows,
 *   0x8007007E with the dlerror() text in mpupdate_load_error() elsewhere). Loading while a
 *   library is loaded fails with 0x800710DD (unload first).
 * mpupdate_missing_exports: a bit per export, set when the loaded library lacks it; bit i is the
 *   export mpupdate_export_name(i) names (NULL past the last), the loader's own list. */

int32_t mpupdate_load(const char *path_utf8);
int32_t mpupdate_unload(void);
int mpupdate_is_loaded(void);
uint32_t mpupdate_missing_exports(void);
const char *mpupdate_load_error(void);
const char *mpupdate_export_name(uint32_t index);
size_t mpupdate_utf16_length(const uint16_t *text, size_t max_units);
