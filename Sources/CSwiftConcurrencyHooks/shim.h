#ifndef WEBHOOK_TOKEND_CSWIFTCONCURRENCYHOOKS_SHIM_H
#define WEBHOOK_TOKEND_CSWIFTCONCURRENCYHOOKS_SHIM_H

// The Swift runtime's hook for enqueueing a job on the global executor (libswift_Concurrency
// exports it; null means the default, libdispatch's worker pool). Declared here so that the
// daemon sets it by reference: in a binary linked with -static-stdlib it is not in the dynamic
// symbol table (the runtime's archives are linked with --exclude-libs ALL), so the dlsym lookup
// of NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
// cannot find it.
extern void *_Nullable swift_task_enqueueGlobal_hook;

// Swift 6 refuses a mutable global: read and set it through functions, once, from the main thread
// before any task exists.
static inline void *_Nullable webhook_tokend_enqueue_global_hook(void) {
    return swift_task_enqueueGlobal_hook;
}

static inline void webhook_tokend_set_enqueue_global_hook(void *_Nonnull hook) {
    swift_task_enqueueGlobal_hook = hook;
}

#endif
