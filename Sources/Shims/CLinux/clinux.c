// See include/clinux.h for what each function does and why it is here.
#define _GNU_SOURCE
#include "clinux.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

int clinux_set_not_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
}

int clinux_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0L, 0L, 0L, 0L);
}

int clinux_open_directory(const char *path) {
    return open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int clinux_open_directory_beneath(int directory, const char *path) {
    struct open_how how = {
        // No O_NOFOLLOW: with it a trailing symlink would be opened itself; RESOLVE_NO_SYMLINKS refuses it.
        .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof how);
}

int clinux_entry_kind(int directory, const char *name, enum clinux_entry_kind *kind) {
    struct statx status;
    if (statx(directory, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &status) != 0) return -1;
    if (S_ISLNK(status.stx_mode)) {
        *kind = CLINUX_ENTRY_SYMLINK;
    } else if (!S_ISDIR(status.stx_mode)) {
        *kind = CLINUX_ENTRY_OTHER;
    } else if ((status.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (status.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        *kind = CLINUX_ENTRY_MOUNT_ROOT;
    } else {
        *kind = CLINUX_ENTRY_DIRECTORY;
    }
    return 0;
}

int clinux_bind_read_only(const char *source, int directory, const char *name, enum clinux_bind_step *step) {
    *step = CLINUX_BIND_OPEN_SOURCE;
    int tree = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) return -1;
    int result = -1;
    int target = -1;
    struct mount_attr attributes = {
        .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    };
    *step = CLINUX_BIND_SET_ATTRIBUTES;
    if (mount_setattr(tree, "", AT_EMPTY_PATH, &attributes, sizeof attributes) != 0) goto done;
    *step = CLINUX_BIND_OPEN_TARGET;
    target = clinux_open_directory_beneath(directory, name);
    if (target < 0) goto done;
    *step = CLINUX_BIND_ATTACH;
    result = move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
done:;
    int saved = errno;
    if (target >= 0) close(target);
    close(tree);
    errno = saved;
    return result;
}

int clinux_unmount_beneath(int directory, const char *name, int lazy) {
    // The path walks from the open directory (a magic link to exactly it) to `name`, whose
    // symlink UMOUNT_NOFOLLOW refuses to follow; the mount on `name` is what goes.
    char path[4096 + 64];
    if (snprintf(path, sizeof path, "/proc/self/fd/%d/%s", directory, name) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return umount2(path, UMOUNT_NOFOLLOW | (lazy ? MNT_DETACH : 0));
}

int clinux_check_mount_api(void) {
    // An invalid descriptor: EBADF where the call exists, ENOSYS where it does not.
    struct mount_attr attributes = {0};
    if (mount_setattr(-1, "", AT_EMPTY_PATH, &attributes, sizeof attributes) == 0 || errno != ENOSYS) return 0;
    return -1;
}

int clinux_memfd(const char *name, long long size) {
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    if (ftruncate(fd, size) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int clinux_seal(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
}

int clinux_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

int clinux_is_fuse_device(int fd) {
    struct stat status;
    if (fstat(fd, &status) != 0) return 0;
    return S_ISCHR(status.st_mode) && major(status.st_rdev) == 10 && minor(status.st_rdev) == 229;
}

int clinux_stream_socket_is_live(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int connected = connect(fd, (struct sockaddr *)&address, sizeof address);
    int saved = errno;
    close(fd);
    if (connected == 0) return 1;
    if (saved == ECONNREFUSED || saved == ENOENT) return 0;
    errno = saved;
    return -1;
}

int clinux_peer_credentials(int socket, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

long clinux_send_with_descriptors(int socket, const void *bytes, unsigned long length, const int *descriptors, int count) {
    struct iovec vector = {.iov_base = (void *)bytes, .iov_len = length};
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1};
    // The kernel passes at most SCM_MAX_FD (253) descriptors in one message.
    char control[CMSG_SPACE(sizeof(int) * 253)];
    if (count > 16) {
        errno = EINVAL;
        return -1;
    }
    if (count > 0) {
        memset(control, 0, sizeof control);
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), descriptors, sizeof(int) * count);
    }
    return sendmsg(socket, &message, MSG_NOSIGNAL);
}

long clinux_receive_with_descriptors(int socket, void *bytes, unsigned long capacity, int *descriptors, int capacity_descriptors, int *count) {
    struct iovec vector = {.iov_base = bytes, .iov_len = capacity};
    // The kernel passes at most SCM_MAX_FD (253) descriptors in one message.
    char control[CMSG_SPACE(sizeof(int) * 253)];
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    *count = 0;
    long received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) return -1;
    int overflow = (message.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int arrived = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *values = (int *)CMSG_DATA(header);
        for (int index = 0; index < arrived; index++) {
            if (*count < capacity_descriptors) {
                descriptors[(*count)++] = values[index];
            } else {
                close(values[index]);
                overflow = 1;
            }
        }
    }
    if (overflow) {
        for (int index = 0; index < *count; index++) close(descriptors[index]);
        *count = 0;
        errno = EMSGSIZE;
        return -1;
    }
    return received;
}
