// CFuse: the parts of libfuse3's low-level API that Swift cannot import directly.
//
// libfuse selects ABI variants with function-like macros keyed on FUSE_USE_VERSION, and Swift's
// Clang importer drops function-like macros. Each wrapper below is a plain function that the C
// compiler expands for us, so the Swift side never depends on which libfuse release is installed
// (3.14 on Debian 12, 3.17+ where fuse_session_new itself became a macro).
#ifndef CFUSE_H
#define CFUSE_H

// 3.12 is the oldest API with fuse_loop_cfg_*; fuse_lowlevel.h refuses to compile without it.
#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>

// fuse_session_new is a macro over fuse_session_new_versioned since libfuse 3.17.
static inline struct fuse_session *cfuse_session_new(struct fuse_args *args,
                                                     const struct fuse_lowlevel_ops *ops,
                                                     void *userdata) {
    return fuse_session_new(args, ops, sizeof(*ops), userdata);
}

// fuse_session_loop_mt is a macro that picks fuse_session_loop_mt_312 (or _31/_32) by version.
static inline int cfuse_session_loop_mt(struct fuse_session *se, struct fuse_loop_config *config) {
    return fuse_session_loop_mt(se, config);
}

// FUSE_ARGS_INIT is an initializer macro; argv stays owned by the caller.
static inline struct fuse_args cfuse_args_init(int argc, char **argv) {
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    return args;
}

// The size of the ops table is part of the ABI handshake; Swift's MemoryLayout is not guaranteed
// to agree with C's sizeof for imported structs with unions, so ask the compiler.
static inline size_t cfuse_lowlevel_ops_size(void) {
    return sizeof(struct fuse_lowlevel_ops);
}

#endif
