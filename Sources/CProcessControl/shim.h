#ifndef WEBHOOK_TOKEND_CPROCESSCONTROL_SHIM_H
#define WEBHOOK_TOKEND_CPROCESSCONTROL_SHIM_H

#include <sys/prctl.h>
#include <sys/vfs.h>

// prctl(2) is C-variadic, which Swift cannot call: a fixed-arity wrapper.
static inline int webhook_tokend_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

static inline int webhook_tokend_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

// The file system type of a path (statfs(2), which Swift's Glibc module lacks): tmpfs or ramfs
// for token sinks. Returns -1 with errno set on failure.
static inline long webhook_tokend_file_system_type(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return (long)info.f_type;
}

#endif
