import ArgumentParser
import CommandLineSupport
import FuseBridge
import Glibc

/// `akvfs unmount`: detach an akvfs mount; its daemon then exits.
struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount",
        abstract: "Unmount an akvfs mount (its daemon then exits).",
        discussion: "Also clears a dead mount left by a daemon that was killed ('Transport endpoint is not connected')."
    )

    @Argument(help: "The mountpoint.")
    var mountpoint: String

    @Flag(help: "Detach even while files are open (they fail from then on).")
    var lazy = false

    func run() throws {
        let entries = MountTable.read()
        guard let entry = entries.last(where: { $0.mountpoint == MountTable.canonical(mountpoint) }) else {
            Terminal.error("akvfs: \(mountpoint) is not a mountpoint.")
            throw ExitCode.failure
        }
        guard entry.filesystemType == "fuse.akvfs" else {
            Terminal.error("akvfs: \(mountpoint) is a \(entry.filesystemType) mount, not an akvfs one; use umount.")
            throw ExitCode.failure
        }
        if geteuid() == 0 {
            guard umount2(entry.mountpoint, lazy ? Int32(MNT_DETACH) : 0) == 0 else {
                let error = errno
                let hint = error == EBUSY ? " Files are open there; close them or use --lazy." : ""
                Terminal.error("akvfs: cannot unmount \(mountpoint): \(String(cString: strerror(error))).\(hint)")
                throw ExitCode.failure
            }
        } else {
            let status = Spawn.wait(["fusermount3", "-u"] + (lazy ? ["-z"] : []) + [entry.mountpoint])
            guard status == 0 else {
                Terminal.error("akvfs: fusermount3 could not unmount \(mountpoint) (exit \(status)).")
                throw ExitCode.failure
            }
        }
    }
}

/// posix_spawn of a command found on PATH, waiting for it.
enum Spawn {
    static func wait(_ arguments: [String]) -> Int32 {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { (text: String) in strdup(text) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawnp(&pid, arguments[0], nil, nil, argv, environ) == 0 else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
