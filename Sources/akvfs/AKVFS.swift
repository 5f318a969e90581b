import ArgumentParser

/// `akvfs` and, when invoked as `mount.akvfs` (mount(8) and fstab), the mount helper.
@main
enum Entry {
    static func main() async {
        let invokedAs = CommandLine.arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "akvfs"
        if invokedAs == "mount.akvfs" || invokedAs == "mount.fuse.akvfs" {
            MountHelper.main(Array(CommandLine.arguments.dropFirst()))
        }
        await AKVFS.main()
    }
}

struct AKVFS: AsyncParsableCommand {
    static let version = "0.1.0-dev"

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
        subcommands: [MountCommand.self, UnmountCommand.self, GetCommand.self, CheckCommand.self, CSICommand.self, VersionCommand.self]
    )
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the akvfs version.")

    func run() {
        print("akvfs \(AKVFS.version)")
    }
}
