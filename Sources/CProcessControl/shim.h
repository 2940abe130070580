#ifndef WEBHOOK_TOKEND_CPROCESSCONTROL_SHIM_H
#define WEBHOOK_TOKEND_CPROCESSCONTROL_SHIM_H

#include <sys/prctl.h>

// prctl(2) is C-variadic, which Swift cannot call: a fixed-arity wrapper.
static inline int webhook_tokend_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

static inline int webhook_tokend_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

#endif
