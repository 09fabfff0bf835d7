/* The native fake's control API: configuration and introspection, beside MpClient.dll's seven
 * exports (which the fake library also exports, with the DLL's signatures).
 *
 * Read twice: by cffi's cdef() (after mpupdate/_cdef/mpclient_types.h, for MPVERSION_INFO) and as
 * C by mpfake.c. Keep it cdef-clean: no #include, no #ifdef, no macros, fixed-width types only.
 *
 * Numbers used below (no macros here, so they are spelled out):
 *   delivery       0 immediate, 1 thread, 2 timed          (as FakeMpClient's delivery=)
 *   abort_handle   0 manager, 1 update, 2 either           (as FakeMpClient's abort_handle=)
 *   handle kinds   0 manager, 1 update
 *   call functions 0 MpManagerOpen, 1 MpUpdateStart, 2 MpUpdateControl, 3 MpHandleClose,
 *                  4 MpErrorMessageFormat, 5 MpFreeMemory, 6 MpManagerVersionQuery
 *                  (mpupdate.backends.EXPORTS order)
 *   worker states  0 none, 1 running, 2 finished (not joined yet), 3 joined
 *
 * The seven exports behave as fakes/dll.py's FakeMpClient. Where that one raises instead of
 * answering, this one answers and records: a synchronous MpUpdateStart of a never-ending scenario
 * outside thread delivery returns 0x8007046B (HRESULT_FROM_WIN32(ERROR_POSSIBLE_DEADLOCK), a
 * fake-only answer) and counts in mpfake_thread_hangs(); a violation is recorded and the call
 * completes as in FakeMpClient's lenient mode (NativeFakeMpClient raises afterwards if strict).
 *
 * Everything the library is given is copied; nothing passed in needs to outlive the call.
 * Strings the library returns (mpfake_violation, mpfake_last_error) stay valid until the next
 * mpfake_configure / mpfake_reset. */

typedef struct {
    double at;                       /* seconds after the update's start */
    const uint16_t *path;            /* MPSIGUPDATE_DATA.Path: NUL-terminated UTF-16, or NULL */
    uint32_t notify;                 /* MPNOTIFY */
    uint32_t hresult;                /* hResult, unsigned */
    uint32_t callback_type;          /* MPCALLBACK_TYPE, normally 6 (SIGUPDATE) */
    uint32_t has_data;               /* 0: pSigUpdateData is NULL; the fields below are unused */
    uint32_t percent;
    uint32_t total_updates;
    uint32_t current_index;
    uint32_t update_type;
    uint32_t stage;
} mpfake_notification;

typedef struct {
    uint32_t code;                   /* HRESULT, unsigned */
    const uint16_t *text;            /* NUL-terminated UTF-16, without the trailing CR LF */
} mpfake_message;

typedef struct {
    const mpfake_notification *notifications;  /* between the synthesized START and COMPLETE */
    const mpfake_message *messages;            /* MpErrorMessageFormat's table; first match wins */
    MPVERSION_INFO versions_before;
    MPVERSION_INFO versions_after;             /* reported after a COMPLETE carrying S_OK */
    double complete_at;
    double abort_latency;
    int64_t base_filetime;                     /* FILETIME at virtual time 0 */
    uint32_t notification_count;
    uint32_t message_count;
    uint32_t has_complete;                     /* 0: the update never ends by itself */
    uint32_t complete_hresult;
    uint32_t open_hresult;                     /* a failure here fails MpManagerOpen */
    uint32_t start_hresult;                    /* a failure here fails MpUpdateStart */
    uint32_t delivery;
    uint32_t abort_handle;
} mpfake_scenario;

typedef struct {
    uint64_t args[3];                /* as FakeCall.args: handles and pointers as integers */
    uint64_t thread;                 /* the update handle whose worker thread called, else 0 */
    uint32_t function;
    uint32_t arg_count;
    uint32_t has_hresult;            /* 0 for MpFreeMemory and a refused (hanging) start */
    uint32_t hresult;                /* unsigned */
} mpfake_call_record;

typedef struct {
    uint64_t handle;
    uint64_t manager;
    uint64_t context;
    uint64_t wall_filetime;          /* FILETIME of the update's start */
    double start;                    /* virtual time of the update's start */
    double last_at;                  /* the latest 'at' delivered */
    uint32_t options;
    uint32_t aborted;
    uint32_t completed;
    uint32_t complete_hresult;
    uint32_t delivered_count;
    uint32_t worker;                 /* worker state, see above */
} mpfake_update_record;

/* Identity and layout: mpfake_abi_version() is 1; mpfake_sizeof(0..4) gives sizeof of
 * mpfake_notification, mpfake_message, mpfake_scenario, mpfake_call_record, mpfake_update_record
 * as the library was compiled (0 for anything else). */
uint32_t mpfake_abi_version(void);
uint32_t mpfake_sizeof(uint32_t which);

/* Configuration. mpfake_configure: 0, or -1 (text in mpfake_last_error()) when handles of the
 * previous configuration are still open or the scenario is invalid; otherwise it resets
 * everything (as mpfake_reset) and copies the scenario. mpfake_reset: stops every worker (no
 * further callback is made), forgets all handles, updates, calls, violations and buffers and
 * returns to the default scenario (one update completing with S_OK at 1 s, immediate delivery);
 * -1 from inside a callback. mpfake_quiesce: stops and joins every worker, makes no further
 * callback, keeps the records (for interpreter exit). */
int32_t mpfake_configure(const mpfake_scenario *scenario);
int32_t mpfake_reset(void);
void mpfake_quiesce(void);
const char *mpfake_last_error(void);

/* Virtual time (what "timed" delivery runs on; immediate and thread modes move it too).
 * mpfake_next_due: 1 and *when set if a notification is scheduled, else 0.
 * mpfake_advance_to: move time to 'when' (never backwards), delivering every notification due
 * on the way, in time order, on the calling thread. */
double mpfake_now(void);
int32_t mpfake_next_due(double *when);
void mpfake_advance_to(double when);

/* Holding workers ("thread" delivery only): a worker about to deliver plan item 'index'
 * (0 is the synthesized START) waits until mpfake_release_holds() or an abort of its update.
 * index -1 holds nothing. mpfake_wait_held: 1 once at least 'count' workers wait, 0 after
 * 'timeout' seconds of real time. */
void mpfake_set_hold(int32_t index);
void mpfake_release_holds(void);
uint32_t mpfake_held(void);
int32_t mpfake_wait_held(uint32_t count, double timeout);

/* Quarantine (off by default): freed notification blocks are poisoned with 0xDD but kept
 * allocated until the next reset, so a test can read what a stale pointer would see. */
void mpfake_set_quarantine(uint32_t on);

/* Introspection. mpfake_open_handles fills up to 'capacity' entries and returns the number of
 * open handles. The mpfake_thread_* counters are per calling thread, so a caller can tell
 * whether its own last call recorded a violation (or refused a start that would hang).
 * mpfake_clear_violations forgets the violations recorded so far (a test that provoked them on
 * purpose); texts obtained before stay valid until the next reset. */
uint32_t mpfake_open_handle_count(void);
uint32_t mpfake_open_handles(uint64_t *values, uint32_t *kinds, uint32_t capacity);
uint32_t mpfake_outstanding_allocations(void);
uint32_t mpfake_live_workers(void);
uint32_t mpfake_violation_count(void);
const char *mpfake_violation(uint32_t index);
void mpfake_clear_violations(void);
uint32_t mpfake_thread_violations(void);
int64_t mpfake_thread_last_violation(void);
uint32_t mpfake_thread_hangs(void);
uint32_t mpfake_call_count(void);
uint32_t mpfake_calls(uint32_t start, mpfake_call_record *out, uint32_t capacity);
uint32_t mpfake_calls_to(uint32_t function);
uint32_t mpfake_update_count(void);
int32_t mpfake_update(uint32_t index, mpfake_update_record *out);
uint32_t mpfake_update_delivered(uint32_t index, uint32_t *notify, uint32_t capacity);
