import CLinux
import DescriptorPassing
import Glibc

// akvfs-keeper --socket PATH: keeps descriptors for akvfs daemons (their FUSE connections and
// state) while they restart, like systemd's file-descriptor store. See docs/mounting.md.

func report(_ message: String) {
    let line = Array("akvfs-keeper: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    report(message)
    exit(2)
}

var arguments = CommandLine.arguments.dropFirst()
var socketPath: String?
while let argument = arguments.popFirst() {
    switch argument {
    case "--socket": socketPath = arguments.popFirst()
    case "--help", "-h":
        print(
            "usage: akvfs-keeper --socket PATH\n\nKeeps descriptors for akvfs daemons (root only) until they are unmounted; SIGTERM or SIGINT to stop."
        )
        exit(0)
    default: fail("unknown argument \(argument); usage: akvfs-keeper --socket PATH")
    }
}
guard let socketPath, socketPath.hasPrefix("/") else { fail("--socket PATH is required, an absolute path") }
guard geteuid() == 0 else { fail("only root may keep FUSE connections; run as root") }
// What it keeps includes state with secrets: no core file, no reading its memory.
_ = clinux_set_not_dumpable()

// The poll loop checks the flag each second; the handler only stores it.
nonisolated(unsafe) var stopping: sig_atomic_t = 0
signal(SIGTERM) { _ in stopping = 1 }
signal(SIGINT) { _ in stopping = 1 }
signal(SIGPIPE, SIG_IGN)
// A parent may have started this with the signals blocked (posix_spawn passes its mask on).
var handled = sigset_t()
sigemptyset(&handled)
sigaddset(&handled, SIGTERM)
sigaddset(&handled, SIGINT)
sigprocmask(SIG_UNBLOCK, &handled, nil)

do {
    let keeper = try Keeper(socketPath: socketPath, log: report)
    report("listening at \(socketPath)")
    keeper.run(until: { stopping != 0 })
    unlink(socketPath)
} catch {
    fail("\(error)")
}
