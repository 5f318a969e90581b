import CLinux
// `struct stat` comes from Glibc and again from CoreFoundation's headers (see NodePlugin.swift):
// MemberImportVisibility needs both imported.
internal import CoreFoundation
import Glibc
import SecretProviderClass

/// A mount, unmount, mkdir or rmdir that failed, with the errno it failed with.
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
    /// Something other than a directory (a file; symlinks are refused earlier): kubelet never asks for that.
    case notDirectory
    /// A mount whose filesystem answers.
    case mounted
    /// A FUSE mount whose daemon is gone (ENOTCONN): a plugin that stopped without unmounting.
    case deadMount
}

/// Kubelet's directory (`--kubelet-dir`), held open: target paths are resolved beneath its
/// `pods` directory from this descriptor.
public final class KubeletDirectory: Sendable {
    public static let defaultPath = "/var/lib/kubelet"

    /// Without a trailing slash.
    public let path: String
    fileprivate let descriptor: Int32

    public init(path: String) throws(MountError) {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let descriptor = clinux_open_directory(trimmed)
        guard descriptor >= 0 else {
            throw MountError(operation: "open the kubelet directory", path: trimmed, code: errno)
        }
        self.path = trimmed
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Where kubelet puts pods' volumes, so where every target path must be.
    var podsPath: String { "\(path)/pods" }
}

/// A volume's target path, resolved beneath kubelet's pods directory without following any
/// symlink: the directory that holds the target, open, and the target's name in it. Every
/// operation goes through that descriptor, so a symlink put into the path afterwards changes
/// nothing, and a bind mount can land nowhere else.
final class TargetPath {
    /// As kubelet gave it, for messages.
    let path: String
    private let name: String
    private let parent: Int32

    /// Refuses a path outside kubelet's pods directory, or through a symlink, before anything is
    /// done to it. `path` is absolute and clean (NodeService checked).
    init(_ path: String, in kubelet: KubeletDirectory) throws(VolumeError) {
        let pods = kubelet.podsPath + "/"
        guard path.hasPrefix(pods), path.count > pods.count else {
            throw VolumeError(
                .invalidArgument,
                "target path \(path) is not beneath kubelet's pods directory \(kubelet.podsPath) (--kubelet-dir \(kubelet.path)): "
                    + "kubelet publishes volumes only there")
        }
        var components = path.dropFirst(kubelet.path.count + 1).split(separator: "/").map(String.init)
        // pods/<pod uid> is the pod's own directory; kubelet's targets are beneath it
        // (<pod uid>/volumes/kubernetes.io~csi/<volume>/mount), and a mount on it would hide the pod's files.
        guard components.count >= 3 else {
            throw VolumeError(
                .invalidArgument,
                "target path \(path) is a pod's own directory, not a volume's target beneath it "
                    + "(\(kubelet.podsPath)/<pod uid>/volumes/kubernetes.io~csi/<volume>/mount); it is refused")
        }
        let name = components.removeLast()
        let parent = clinux_open_directory_beneath(kubelet.descriptor, components.joined(separator: "/"))
        guard parent >= 0 else {
            let code = errno
            switch code {
            case ELOOP:
                throw VolumeError(
                    .invalidArgument,
                    "target path \(path) passes through a symbolic link; kubelet's paths never do, so it is refused (a bind mount "
                        + "there could land outside \(kubelet.podsPath))")
            case EXDEV:
                throw VolumeError(
                    .invalidArgument, "target path \(path) leads outside \(kubelet.podsPath); it is refused")
            case ENOENT:
                throw VolumeError(
                    .notFound,
                    "the directory that holds target path \(path) does not exist: kubelet creates it before publishing")
            default:
                throw VolumeError(
                    .internalError,
                    "cannot open the directory that holds target path \(path): \(String(cString: strerror(code)))")
            }
        }
        self.path = path
        self.name = name
        self.parent = parent
        var kind = CLINUX_ENTRY_OTHER
        if clinux_entry_kind(parent, name, &kind) == 0, kind == CLINUX_ENTRY_SYMLINK {
            throw VolumeError(
                .invalidArgument,
                "target path \(path) is a symbolic link; kubelet's targets never are, so it is refused")
        }
    }

    deinit { close(parent) }

    var state: TargetState {
        var kind = CLINUX_ENTRY_OTHER
        guard clinux_entry_kind(parent, name, &kind) == 0 else {
            switch errno {
            case ENOTCONN, ECONNABORTED: return .deadMount
            case ENOENT: return .missing
            default: return .notDirectory
            }
        }
        switch kind {
        case CLINUX_ENTRY_DIRECTORY: return .directory
        case CLINUX_ENTRY_MOUNT_ROOT: return .mounted
        default: return .notDirectory
        }
    }

    /// The device of the filesystem at the target, not following a symlink: with something mounted
    /// there, the mount's. nil when it cannot be read (missing, or a dead FUSE mount).
    var device: dev_t? {
        var status = stat()
        guard fstatat(parent, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return status.st_dev
    }

    /// The device of the filesystem at `path` (a mountpoint's: its mount's), following nothing.
    static func device(ofPath path: String) -> dev_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_dev
    }

    /// True when the target is a directory with no entries.
    var isEmptyDirectory: Bool {
        let descriptor = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        guard let stream = fdopendir(descriptor) else {
            close(descriptor)
            return false
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if entryName != "." && entryName != ".." { return false }
        }
        return true
    }

    /// Bind-mounts `source` (a view of the plugin's own mount) on the target, read-only, nosuid,
    /// nodev and noexec from the first moment.
    func bindReadOnly(from source: String) throws(MountError) {
        var step = CLINUX_BIND_OPEN_SOURCE
        guard clinux_bind_read_only(source, parent, name, &step) == 0 else {
            let code = errno
            let operation =
                switch step {
                case CLINUX_BIND_OPEN_SOURCE: "open the view \(source) to bind it on"
                case CLINUX_BIND_SET_ATTRIBUTES: "make the bind mount of \(source) read-only for"
                case CLINUX_BIND_OPEN_TARGET: "open the target (without following symlinks)"
                default: "bind-mount \(source) on"
                }
            throw MountError(operation: operation, path: path, code: code)
        }
    }

    /// Unmounts the target; lazily (MNT_DETACH) when it is busy or its FUSE daemon is gone, so a
    /// process holding a file open never blocks an unpublish.
    func unmount() throws(MountError) {
        if clinux_unmount_beneath(parent, name, 0) == 0 { return }
        let code = errno
        guard code == EBUSY || code == ENOTCONN || code == ECONNABORTED else {
            throw MountError(operation: "unmount", path: path, code: code)
        }
        guard clinux_unmount_beneath(parent, name, 1) == 0 else {
            throw MountError(operation: "unmount (lazily)", path: path, code: errno)
        }
    }

    func makeDirectory(mode: mode_t = 0o750) throws(MountError) {
        guard mkdirat(parent, name, mode) == 0 || errno == EEXIST else {
            throw MountError(operation: "create directory", path: path, code: errno)
        }
    }

    /// Removes an empty directory; a missing one is fine (idempotent unpublish).
    func removeDirectory() throws(MountError) {
        guard unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
            throw MountError(operation: "remove directory", path: path, code: errno)
        }
    }
}
