/// Mount options passed to the kernel (see mount.fuse3(8)).
public struct MountOptions: Sendable, Equatable {
    /// Let users other than the one mounting access the files (non-root needs
    /// `user_allow_other` in /etc/fuse.conf).
    public var allowOther = false
    /// Shown as the source in /proc/mounts, e.g. `akvfs:myvault`.
    public var fsName = "akvfs"
    /// Turn off `default_permissions` (the kernel's mode checks). Only for debugging.
    public var skipPermissionChecks = false

    public init() {}

    /// `ro`, `noatime` and `default_permissions` always; the kernel enforces read-only and modes.
    var optionString: String {
        var options = [
            "ro", "noatime", "nodev", "nosuid", "fsname=\(fsName.replacing(",", with: "_"))", "subtype=akvfs",
        ]
        if !skipPermissionChecks { options.append("default_permissions") }
        if allowOther { options.append("allow_other") }
        return options.joined(separator: ",")
    }
}
