// CLinux: Linux calls Swift cannot import as they are.
//
// prctl is variadic, which Swift imports as unavailable; openat2 and statx have no wrapper
// Swift's Glibc module shows (openat2 none in glibc 2.36, statx only with _GNU_SOURCE); the new
// mount API needs flags from both <sys/mount.h> and <linux/*.h>, which clash if one file includes
// both. So the implementations live in clinux.c, built with _GNU_SOURCE, and this header declares
// plain functions only: no macro or struct of it reaches Swift. Every function returns -1 with
// errno set on failure, as the system calls do.
#ifndef CLINUX_H
#define CLINUX_H

// Not dumpable: the kernel writes no core file and feeds no core-dump helper with this
// process's memory, and processes of the same user can neither ptrace it nor read its memory
// through /proc. exec resets the flag, so every akvfs executable sets it for itself.
int clinux_set_not_dumpable(void);

// 1 when dumpable, 0 when not.
int clinux_get_dumpable(void);

// An O_PATH descriptor of the directory `path` (symlinks in it followed: for configured paths).
int clinux_open_directory(const char *path);

// An O_PATH descriptor of the directory `path` beneath `directory`, resolved without following
// any symlink or magic link and without leaving `directory` (openat2 with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS). ELOOP when `path` passes through a symlink,
// EXDEV when it would leave `directory`.
int clinux_open_directory_beneath(int directory, const char *path);

enum clinux_entry_kind {
    CLINUX_ENTRY_DIRECTORY = 1,
    // The root of a mount (something is mounted on the entry).
    CLINUX_ENTRY_MOUNT_ROOT = 2,
    // A file, a device, anything but a directory or a symlink.
    CLINUX_ENTRY_OTHER = 3,
    CLINUX_ENTRY_SYMLINK = 4,
};

// What `name` in `directory` is, without following a symlink there (statx with
// AT_SYMLINK_NOFOLLOW). ENOENT when missing; ENOTCONN when it is a FUSE mount whose daemon is gone.
int clinux_entry_kind(int directory, const char *name, enum clinux_entry_kind *kind);

// Which step of clinux_bind_read_only failed.
enum clinux_bind_step {
    CLINUX_BIND_OPEN_SOURCE = 1,
    CLINUX_BIND_SET_ATTRIBUTES = 2,
    CLINUX_BIND_OPEN_TARGET = 3,
    CLINUX_BIND_ATTACH = 4,
};

// Bind-mounts the directory `source` on `name` in `directory`, read-only, nosuid, nodev and
// noexec from the start (open_tree, mount_setattr, move_mount: the mount never exists writable,
// and it lands on the directory the descriptor holds, whatever the path names meanwhile). `name`
// is opened beneath `directory` as clinux_open_directory_beneath does. On failure `*step` says
// which step failed.
int clinux_bind_read_only(const char *source, int directory, const char *name, enum clinux_bind_step *step);

// Unmounts what is mounted on `name` in `directory` without following a symlink there; `lazy`
// detaches it even while busy (MNT_DETACH).
int clinux_unmount_beneath(int directory, const char *name, int lazy);

// 0 when the kernel has the mount API clinux_bind_read_only uses (Linux 5.12), else -1 (ENOSYS).
int clinux_check_mount_api(void);

// A memory-only file (memfd_create, close-on-exec, sealable) of `size` bytes, for state that must
// outlive this process but never reach a disk: another process gets it by descriptor passing.
int clinux_memfd(const char *name, long long size);

// Seals a memfd against any change (shrink, grow, write, further seals).
int clinux_seal(int fd);

// Gives back the memory of bytes [offset, offset + length) of a memfd (they read as zeros).
int clinux_punch_hole(int fd, long long offset, long long length);

// Whether `fd` is /dev/fuse (character device 10:229): a descriptor received from another
// process is checked before it is trusted as a FUSE connection.
int clinux_is_fuse_device(int fd);

// Whether a process listens on the stream socket at `path`: 1 when a connection is accepted,
// 0 when nobody listens there (ECONNREFUSED) or nothing is there (ENOENT), else -1.
int clinux_stream_socket_is_live(const char *path);

// The credentials of the process at the other end of a Unix socket (SO_PEERCRED).
int clinux_peer_credentials(int socket, int *pid, unsigned int *uid, unsigned int *gid);

// Sends `length` bytes and `count` descriptors (SCM_RIGHTS) in one message on a Unix socket.
long clinux_send_with_descriptors(int socket, const void *bytes, unsigned long length, const int *descriptors, int count);

// Receives up to `capacity` bytes and up to `capacity_descriptors` descriptors (close-on-exec);
// `*count` is how many arrived. Descriptors beyond the capacity, or a truncated control
// message, fail the call with EMSGSIZE after closing what did arrive.
long clinux_receive_with_descriptors(int socket, void *bytes, unsigned long capacity, int *descriptors, int capacity_descriptors, int *count);

#endif
