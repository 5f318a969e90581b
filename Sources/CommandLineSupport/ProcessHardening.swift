import CLinux
import Glibc

/// What a process that holds secrets does for itself when it starts.
public enum ProcessHardening {
    /// Marks the process not dumpable, so a crash writes no core file with secrets in it
    /// (whatever `ulimit -c` and the machine's core pattern say) and other processes of the same
    /// user cannot read its memory. Returns why not when the kernel refuses, for a warning.
    public static func keepMemoryOutOfCoreDumps() -> String? {
        guard clinux_set_not_dumpable() == 0 else {
            return "core dumps stay possible (prctl PR_SET_DUMPABLE: \(String(cString: strerror(errno)))); a crash could write secrets to disk"
        }
        return nil
    }
}
