import ArgumentParser
import CommandLineSupport

/// `akvfs-csi`: the CSI node plugin in an executable of its own, so that `akvfs mount` does not
/// load the gRPC, protobuf and YAML stacks (and the full Foundation they pull in) it never uses.
/// Users run it as `akvfs csi ...`, which executes this binary from the same directory.
@main
enum CSIEntry {
    static func main() async {
        ProcessHardening.keepMemoryOutOfCoreDumps(program: "akvfs csi")
        await CSICommand.main()
    }
}
