import CLinux
import Glibc

/// What a process that holds secrets does for itself when it starts.
public enum ProcessHardening {
    /// Marks the process not dumpable, so a crash writes no core file with secrets in it
    /// (whatever `ulimit -c` and the machine's core pattern say) and other processes of the same
    /// user cannot read its memory. Each executable calls this first thing: every command it runs
    /// may hold a token or a secret. When the kernel refuses, a warning goes to stderr.
    public static func keepMemoryOutOfCoreDumps(program: String) {
        guard clinux_set_not_dumpable() != 0 else { return }
        Terminal.error(
            "\(program): warning: core dumps stay possible (prctl PR_SET_DUMPABLE: \(String(cString: strerror(errno)))); a crash could write secrets to disk"
        )
    }
}
