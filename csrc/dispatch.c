/* CPU feature detection and the one table of kernels, chosen once (numpy's dispatch model):
 * the best path this CPU supports, unless XNORINFER_ISA forces another. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dispatch.h"

#ifdef XNOR_X86
#include <cpuid.h>
#endif
#if defined(XNOR_X86) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static _Thread_local char last_error[256] = "no error";

xnor_status xnor_fail(xnor_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *xnor_last_error(void) { return last_error; }

static const char *const isa_names[XNOR_ISA_COUNT] = {"ref", "scalar", "avx2", "avx512", "neon"};

const char *xnor_isa_name(xnor_isa isa) {
    return (unsigned)isa < XNOR_ISA_COUNT ? isa_names[isa] : "unknown";
}

static const xnor_kernels *build_table(xnor_isa isa) {
    switch (isa) {
    case XNOR_ISA_REF: return &xnor_kernels_ref;
    case XNOR_ISA_SCALAR: return &xnor_kernels_scalar;
#ifdef XNOR_X86
    case XNOR_ISA_AVX2: return &xnor_kernels_avx2;
    case XNOR_ISA_AVX512: return &xnor_kernels_avx512;
#endif
#ifdef XNOR_ARM64
    case XNOR_ISA_NEON: return &xnor_kernels_neon;
#endif
    default: return NULL;
    }
}

#ifdef XNOR_X86
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

/* Whether the OS saves the AVX-512 registers (opmask, ZMM) across context switches.  macOS enables
 * them in XCR0 only once a thread has run its first AVX-512 instruction, so XCR0 says no until then;
 * its kernel reports the support in a sysctl instead. */
static int os_saves_zmm(uint64_t xcr0) {
#if defined(__APPLE__)
    int avx512f = 0;
    size_t len = sizeof avx512f;
    if (sysctlbyname("hw.optional.avx512f", &avx512f, &len, NULL, 0) == 0 && avx512f) return 1;
#endif
    return (xcr0 & 0xe6) == 0xe6;
}
#endif

static unsigned detect_supported(void) {
    unsigned mask = (1u << XNOR_ISA_REF) | (1u << XNOR_ISA_SCALAR);
#ifdef XNOR_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return mask;
    int popcnt = (c >> 23) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!popcnt) mask &= ~(1u << XNOR_ISA_SCALAR); /* the scalar path uses the popcnt instruction */
    if (!(osxsave && avx)) return mask;
    uint64_t xcr0 = read_xcr0();
    int os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = os_ymm && os_saves_zmm(xcr0);
    if (__get_cpuid_max(0, NULL) < 7) return mask;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    int vpopcntdq = (c >> 14) & 1;
    if (os_ymm && avx2 && fma && popcnt) mask |= 1u << XNOR_ISA_AVX2; /* FMA: the float conv kernel */
    if (os_zmm && avx512f && avx512bw && avx512vl && vpopcntdq) mask |= 1u << XNOR_ISA_AVX512;
#endif
#ifdef XNOR_ARM64
    mask |= 1u << XNOR_ISA_NEON; /* Advanced SIMD is mandatory on AArch64 */
#endif
    return mask;
}

/* XNORINFER_NIBBLE_SPLIT=0 runs every path on plain operands only (no nibble-split micro-kernel), so
 * tests cover the plain kernels on large shapes too and benchmarks can compare the two layouts. */
static xnor_kernels plain_tables[XNOR_ISA_COUNT];
static int plain_only;

static const xnor_kernels *table_for(xnor_isa isa) {
    const xnor_kernels *t = build_table(isa);
    return t && plain_only ? &plain_tables[isa] : t; /* filled once, by init_once_fn */
}

static unsigned supported_mask;
static const xnor_kernels *_Atomic active_kernels;
static xnor_isa _Atomic active_isa;
static xnor_status init_status = XNOR_OK;
static char init_error[256];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_once_fn(void) {
    const char *split = getenv("XNORINFER_NIBBLE_SPLIT");
    plain_only = split && strcmp(split, "0") == 0;
    for (int i = 0; plain_only && i < XNOR_ISA_COUNT; i++) {
        const xnor_kernels *t = build_table((xnor_isa)i);
        if (t) plain_tables[i] = *t, plain_tables[i].gemm_ukernel_split = NULL;
    }
    supported_mask = detect_supported();
    for (int i = 0; i < XNOR_ISA_COUNT; i++) /* a path the build left empty is not supported */
        if (!table_for((xnor_isa)i) || !table_for((xnor_isa)i)->gemm_direct) supported_mask &= ~(1u << i);
    xnor_isa best = XNOR_ISA_REF;
    for (int i = XNOR_ISA_COUNT - 1; i >= 0; i--)
        if (supported_mask & (1u << i)) { best = (xnor_isa)i; break; }
    const char *forced = getenv("XNORINFER_ISA");
    if (forced && *forced) {
        int found = -1;
        for (int i = 0; i < XNOR_ISA_COUNT; i++)
            if (strcmp(forced, isa_names[i]) == 0) found = i;
        if (found < 0) {
            init_status = XNOR_EINVAL;
            snprintf(init_error, sizeof init_error,
                     "XNORINFER_ISA=%s is not a known path (ref, scalar, avx2, avx512, neon)", forced);
        } else if (!(supported_mask & (1u << found))) {
            init_status = XNOR_EUNSUPPORTED;
            snprintf(init_error, sizeof init_error,
                     "XNORINFER_ISA=%s, but this CPU or build does not support it", forced);
        } else {
            best = (xnor_isa)found;
        }
    }
    active_isa = best;
    active_kernels = table_for(best);
}

xnor_status xnor_init(void) {
    pthread_once(&init_once, init_once_fn);
    if (init_status != XNOR_OK) return xnor_fail(init_status, "%s", init_error);
    return XNOR_OK;
}

unsigned xnor_isa_supported(void) {
    pthread_once(&init_once, init_once_fn);
    return supported_mask;
}

xnor_isa xnor_isa_active(void) {
    pthread_once(&init_once, init_once_fn);
    return active_isa;
}

const xnor_kernels *xnor_active(void) { return active_kernels; }

xnor_status xnor_isa_select(xnor_isa isa) {
    pthread_once(&init_once, init_once_fn);
    if ((unsigned)isa >= XNOR_ISA_COUNT)
        return xnor_fail(XNOR_EINVAL, "unknown ISA %d", (int)isa);
    if (!(supported_mask & (1u << isa)))
        return xnor_fail(XNOR_EUNSUPPORTED, "ISA %s is not supported by this CPU or build",
                         isa_names[isa]);
    active_kernels = table_for(isa);
    active_isa = isa;
    init_status = XNOR_OK; /* an explicit, valid choice supersedes a bad XNORINFER_ISA */
    return XNOR_OK;
}

double xnor_popcount_peak_loop(uint64_t iters, uint64_t *sink) {
    if (xnor_init() != XNOR_OK || !sink) return 0.0;
    return xnor_active()->peak(iters, sink);
}
