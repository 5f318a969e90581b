import ArgumentParser
import CommandLineSupport
import Glibc

/// `akvfs` and, when invoked as `mount.akvfs` (mount(8) and fstab), the mount helper.
@main
enum Entry {
    static func main() async {
        ProcessHardening.keepMemoryOutOfCoreDumps(program: "akvfs")
        let invokedAs =
            CommandLine.arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "akvfs"
        if invokedAs == "mount.akvfs" || invokedAs == "mount.fuse.akvfs" {
            MountHelper.main(Array(CommandLine.arguments.dropFirst()))
        }
        if CommandLine.arguments.dropFirst().first == "csi" {
            CSIForwarding.run(Array(CommandLine.arguments.dropFirst(2)))
        }
        await AKVFS.main()
    }
}

struct AKVFS: AsyncParsableCommand {
    static let version = AKVFSVersion.current

    static let configuration = CommandConfiguration(
        commandName: "akvfs",
        abstract: "Azure Key Vault as a read-only filesystem.",
        discussion: """
            Secrets, keys and certificates of a vault appear as files, fetched with an Azure identity \
            (managed identity, workload identity, service principal or Azure CLI) and kept in memory only.

            Identity is chosen as the Azure SDKs do (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, \
            AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, managed identity, \
            then the Azure CLI), or explicitly with --credential. Secrets are never taken on the command line.
            """,
        version: version,
        subcommands: [
            MountCommand.self, UnmountCommand.self, GetCommand.self, CheckCommand.self, CSIStub.self,
            VersionCommand.self,
        ]
    )
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the akvfs version.")

    func run() {
        print("akvfs \(AKVFS.version)")
    }
}

/// `akvfs csi ...` is the `akvfs-csi` executable installed next to `akvfs`: the plugin's gRPC,
/// protobuf and YAML stacks stay out of the node mount's memory.
enum CSIForwarding {
    static func run(_ arguments: [String]) -> Never {
        let path = siblingPath()
        let argv = (["akvfs-csi"] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        Terminal.error(
            "akvfs csi: cannot run \(path) (\(reason)); the CSI plugin is the akvfs-csi executable, installed in the same directory as akvfs"
        )
        exit(127)
    }

    private static func siblingPath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "akvfs-csi" }
        let executable = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(
            separator: "/")
        return "\(directory)/akvfs-csi"
    }
}

/// Only what `akvfs --help` lists for csi: `akvfs csi …` is forwarded before parsing (CSIForwarding).
struct CSIStub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csi",
        abstract: "Serve Key Vault objects to Kubernetes pods as a CSI node plugin (see 'akvfs csi --help').")
}
