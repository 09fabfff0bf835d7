/* The native fake's control API, beside MpClient.dll's seven exports (which the library also
 * exports, with the DLL's signatures and convention).
 *
 * The library holds no behaviour of its own: every export is answered by a *model* the controller
 * registers (mpupdate.fakes.FakeMpClient, through NativeFakeMpClient), and the model asks the
 * library to deliver prepared notifications: on the calling thread, or from threads the library
 * creates (threads Python never created). Only what C alone can show stays here: the exports'
 * ABI, callbacks from foreign threads, one allocation per notification freed (poisoned with 0xDD)
 * as soon as the callback returns.
 *
 * Read twice: by cffi's cdef() and as C by mpfake.c. Keep it cdef-clean: no #include, no #ifdef,
 * no macros, fixed-width types only. */

/* The model: answers export number 'export_index' (mpupdate.backends.EXPORTS order: 0
 * MpManagerOpen, 1 MpUpdateStart, 2 MpUpdateControl, 3 MpHandleClose, 4 MpErrorMessageFormat,
 * 5 MpFreeMemory, 6 MpManagerVersionQuery) called with these arguments, each widened to 64 bits
 * (pointers and handles as addresses, HRESULTs as their unsigned 32-bit pattern). It returns the
 * export's HRESULT (ignored for MpFreeMemory). With no model registered every export answers
 * 0x8000FFFF (E_UNEXPECTED) and MpFreeMemory does nothing. */
typedef int32_t (*mpfake_model_fn)(uint32_t export_index, uint64_t a0, uint64_t a1, uint64_t a2,
                                   uint64_t a3);

/* A thread's body: called once, on a thread the library created, with the argument given. */
typedef void (*mpfake_thread_fn)(uint64_t argument);

/* One prepared notification: an MPCALLBACK_DATA as the DLL passes it, followed (at the offsets
 * given) by its MPSIGUPDATE_DATA and the NUL-terminated UTF-16 Path, which ends the item. Inside
 * 'bytes' those two pointers are NULL; the library points them into its own copy. An item whose
 * offsets or terminator do not fit its size is not delivered. */
typedef struct {
    const uint8_t *bytes;
    uint32_t size;
    uint32_t data_offset;            /* 0: pSigUpdateData stays NULL */
    uint32_t path_offset;            /* 0: Path stays NULL */
} mpfake_notification;

/* Identity: mpfake_abi_version() is 2; mpfake_sizeof(0) is sizeof(mpfake_notification) as the
 * library was compiled (0 for anything else). */
uint32_t mpfake_abi_version(void);
uint32_t mpfake_sizeof(uint32_t which);

/* The model every export calls; NULL detaches it. */
void mpfake_set_model(mpfake_model_fn model);

/* Deliver 'count' notifications in order, on the calling thread, to the MPCALLBACK_FUNCTION at
 * address 'function' with 'context': each is copied into one fresh allocation, its pointers are
 * set, the callback is called, and the block is poisoned (0xDD) and freed as soon as it returns.
 * Before each notification but the first, a non-zero *stop (if stop is not NULL) ends the run.
 * Returns how many were delivered. */
uint32_t mpfake_deliver(uint64_t function, uint64_t context, const mpfake_notification *items,
                        uint32_t count, const int32_t *stop);

/* Threads: mpfake_thread_start runs body(argument) on a new thread and returns its id (0 if it
 * could not be created). mpfake_thread_join waits for it (several threads may) and forgets it:
 * 0, or -1 for an unknown (or already joined) id or the calling thread itself.
 * mpfake_thread_alive: 1 while the body runs.
 * mpfake_live_threads: how many bodies run. */
uint64_t mpfake_thread_start(mpfake_thread_fn body, uint64_t argument);
int32_t mpfake_thread_join(uint64_t thread);
uint32_t mpfake_thread_alive(uint64_t thread);
uint32_t mpfake_live_threads(void);

/* Quarantine (off by default): freed notification blocks are poisoned but kept allocated until
 * mpfake_release_quarantine(), so a test can read what a stale pointer would see. */
void mpfake_set_quarantine(uint32_t on);
void mpfake_release_quarantine(void);
uint32_t mpfake_blocks_delivered(void);
