import FuseBridge
// `struct stat` comes from Glibc and again from CoreFoundation's headers (Foundation is loaded
// through SwiftProtobuf, GRPCCore and Subprocess). Which of the two owns its members depends on
// the order the compiler happens to load them, so MemberImportVisibility needs both imported.
internal import CoreFoundation
import Glibc

/// A mount(2), umount2(2), mkdir(2) or rmdir(2) that failed, with the errno it failed with.
public struct MountError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var code: Int32

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// What is at a volume's target path.
enum TargetState: Equatable {
    case missing
    /// A directory with nothing mounted on it.
    case directory
    /// Something other than a directory: kubelet never asks for that.
    case notDirectory
    /// A mount whose filesystem answers.
    case mounted
    /// A FUSE mount whose daemon is gone (ENOTCONN): a plugin that stopped without unmounting.
    case deadMount
}

/// The syscalls the node plugin needs for target paths, each wrapped once with its errno.
enum TargetMounts {
    static func state(of path: String) -> TargetState {
        if MountTable.isDisconnected(path) { return .deadMount }
        var status = stat()
        guard stat(path, &status) == 0 else {
            switch errno {
            case ENOTCONN, ECONNABORTED: return .deadMount
            case ENOENT: return .missing
            default: return .notDirectory
            }
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { return .notDirectory }
        return isMountPoint(path) ? .mounted : .directory
    }

    static func isMountPoint(_ path: String) -> Bool {
        let canonical = MountTable.canonical(path)
        return MountTable.read().contains { $0.mountpoint == canonical }
    }

    /// Bind-mounts `source` on `target`, then makes that bind read-only, nosuid, nodev and noexec
    /// (a bind ignores those flags on the first call; only a remount of the bind applies them).
    static func bindReadOnly(_ source: String, on target: String) throws(MountError) {
        guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
            throw MountError(operation: "bind-mount \(source) on", path: target, code: errno)
        }
        let flags = UInt(MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        guard mount(nil, target, nil, flags, nil) == 0 else {
            let code = errno
            _ = umount2(target, Int32(MNT_DETACH))
            throw MountError(operation: "make read-only the bind mount at", path: target, code: code)
        }
    }

    /// Unmounts `target`; lazily (MNT_DETACH) when it is busy or its FUSE daemon is gone, so a
    /// process holding a file open never blocks an unpublish.
    static func unmount(_ target: String) throws(MountError) {
        if umount2(target, 0) == 0 { return }
        let code = errno
        guard code == EBUSY || code == ENOTCONN || code == ECONNABORTED else {
            throw MountError(operation: "unmount", path: target, code: code)
        }
        guard umount2(target, Int32(MNT_DETACH)) == 0 else {
            throw MountError(operation: "unmount (lazily)", path: target, code: errno)
        }
    }

    static func makeDirectory(_ path: String, mode: mode_t = 0o750) throws(MountError) {
        guard mkdir(path, mode) == 0 || errno == EEXIST else {
            throw MountError(operation: "create directory", path: path, code: errno)
        }
    }

    /// Removes an empty directory; a missing one is fine (idempotent unpublish).
    static func removeDirectory(_ path: String) throws(MountError) {
        guard rmdir(path) == 0 || errno == ENOENT else {
            throw MountError(operation: "remove directory", path: path, code: errno)
        }
    }
}
