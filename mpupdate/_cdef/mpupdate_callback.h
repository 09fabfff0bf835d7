/* The callback MpClient calls for every update notification: compiled by cffi as a real C
 * function with the WINAPI convention (stdcall on 32-bit Windows); its Python body is registered
 * by mpupdate._native at import. cdef-only: this is not C. */

extern "Python" int32_t WINAPI mpupdate_callback(uintptr_t context, MPCALLBACK_DATA *pData);
