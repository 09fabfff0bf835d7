/* One captured notification, as the compiled callback (mpupdate/_csrc/capture.c) stores it and
 * mpupdate._native reads it (struct format "=IiQIIIIIIIIIIQ", 64 bytes, no padding; a test holds
 * the two equal). Both C and cdef: fixed-width types only.
 *
 * flags: MPUPDATE_RECORD_HAS_DATA when Type was SIGUPDATE and pSigUpdateData was not NULL (the
 * five numbers are then the data's; otherwise 0); MPUPDATE_RECORD_HAS_PATH when Path was not NULL
 * (its UTF-16LE text is path_units units at byte path_offset of the batch's text);
 * MPUPDATE_RECORD_PATH_CUT when Path had no terminator within its first MPUPDATE_PATH_MAX_UNITS
 * units (the text is those units; nothing past them is read); MPUPDATE_RECORD_PATH_DROPPED when the queue's text
 * space was full (the path is lost, counted in paths_dropped). thread: the delivering thread,
 * as threading.get_ident() numbers it. */
#define MPUPDATE_RECORD_HAS_DATA 1
#define MPUPDATE_RECORD_HAS_PATH 2
#define MPUPDATE_RECORD_PATH_CUT 4
#define MPUPDATE_RECORD_PATH_DROPPED 8
#define MPUPDATE_PATH_MAX_UNITS 32767   /* the longest path kept: the Windows long-path limit */
#define MPUPDATE_RESERVED_RECORDS 64    /* places past the bound for COMPLETE, INTERNAL_FAILURE */

typedef struct {
    uint32_t notify;       /* MPCALLBACK_DATA.Notify */
    int32_t hresult;       /* MPCALLBACK_DATA.hResult */
    uint64_t filetime;     /* MPCALLBACK_DATA.TimeStamp */
    uint32_t type;         /* MPCALLBACK_DATA.Type */
    uint32_t flags;        /* MPUPDATE_RECORD_* */
    uint32_t percent;      /* MPSIGUPDATE_DATA.dwPercentComplete */
    uint32_t total;        /* MPSIGUPDATE_DATA.dwTotalUpdates */
    uint32_t index;        /* MPSIGUPDATE_DATA.dwCurrentUpdateIndex */
    uint32_t update_type;  /* MPSIGUPDATE_DATA.eType */
    uint32_t stage;        /* MPSIGUPDATE_DATA.Stage */
    uint32_t path_units;   /* UTF-16 units of the path */
    uint32_t path_offset;  /* byte offset of the path in the batch's text */
    uint32_t reserved;     /* 0 */
    uint64_t thread;       /* the thread that called back */
} mpupdate_record;

/* A per-update queue (opaque; mpupdate/_csrc/capture.c). */
typedef struct mpupdate_queue mpupdate_queue;

/* What one mpupdate_queue_take() hands over: valid until the next take on that queue or its free.
 * The counters are totals since the queue was made. */
typedef struct {
    const mpupdate_record *records;
    uint32_t count;
    const uint8_t *text;
    uint32_t text_bytes;
    uint64_t dropped;       /* notifications not kept: the queue was full (or memory ran out) */
    uint64_t null_data;     /* notifications with a NULL MPCALLBACK_DATA pointer */
    uint64_t paths_dropped; /* paths not kept: the text space was full (or memory ran out) */
    uint64_t captured;      /* notifications kept */
    uint64_t problems;      /* dropped + null_data + paths_dropped: changes when any does */
} mpupdate_batch;
