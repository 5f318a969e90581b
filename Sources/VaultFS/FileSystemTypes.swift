import Glibc

/// A POSIX error number the filesystem answers with.
public struct Errno: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }

    public static let noEntry = Errno(ENOENT)
    public static let accessDenied = Errno(EACCES)
    public static let inputOutput = Errno(EIO)
    public static let readOnly = Errno(EROFS)
    public static let notDirectory = Errno(ENOTDIR)
    public static let isDirectory = Errno(EISDIR)
    public static let noAttribute = Errno(ENODATA)
    public static let range = Errno(ERANGE)
    public static let invalid = Errno(EINVAL)
    public static let badHandle = Errno(EBADF)
    public static let timedOut = Errno(ETIMEDOUT)

    public var description: String { String(cString: strerror(code)) }
}

public enum FileType: Sendable, Equatable {
    case directory
    case regular
}

/// What `stat` shows for an inode.
public struct FileAttributes: Sendable, Equatable {
    public var inode: UInt64
    public var type: FileType
    /// Permission bits only (e.g. 0o440); the type bits come from `type`.
    public var permissions: UInt16
    public var size: Int
    public var uid: UInt32
    public var gid: UInt32
    /// Seconds since the epoch: Key Vault's `updated` for objects, mount time for directories.
    public var modified: Int64
    public var created: Int64
    public var linkCount: UInt32
}

/// The answer to a lookup: an inode the kernel now holds one more reference to.
public struct EntryReply: Sendable, Equatable {
    public var attributes: FileAttributes
    public var entryTimeout: Double
    public var attributeTimeout: Double
}

public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var inode: UInt64
    public var type: FileType
}

/// Something the kernel cached that is no longer true; sent to the kernel outside request handlers.
public enum Invalidation: Sendable, Equatable {
    /// Drop the inode's cached data and attributes (a directory whose listing changed).
    case inode(UInt64)
    /// `name` in `parent` no longer shows `inode`: the kernel forgets the name (the next lookup
    /// finds the new version, or nothing), and watchers of `inode` hear it was deleted. Processes
    /// that have `inode` open keep reading it.
    case entry(parent: UInt64, name: String, inode: UInt64)
}

public struct FileSystemStatistics: Sendable, Equatable {
    public var files: UInt64
    public var blockSize: UInt64 = 4096
    public var nameMaximum: UInt64 = 255
}
