import ArgumentParser
import CommandLineSupport
import KeyVault
import ObjectFormats
import PKI

/// `akvfs get`: one object's file content on stdout, exactly as the filesystem serves it.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Write one object's file content to stdout, exactly as the filesystem serves it.",
        discussion: """
            OBJECT is secrets/NAME, keys/NAME or certs/NAME, optionally followed by /VERSION. A secret is written \
            as its value (decoded with --encoding); a certificate-backed secret as PEM with the private key first \
            and the chain ordered leaf to root (or the PFX with --format pfx); a key as its public key (PEM); a \
            certificate as its leaf certificate (PEM).

            Example: akvfs get myvault secrets/db-password > password.txt
            """
    )

    @Argument(help: "Vault name (with --cloud) or URL, e.g. myvault or https://myvault.vault.azure.net/.")
    var vault: String

    @Argument(help: ArgumentHelp("secrets|keys|certs/NAME[/VERSION]", valueName: "object"))
    var object: String

    @Option(help: ArgumentHelp("For certificate-backed secrets: pem (default) or pfx.", valueName: "pem|pfx"))
    var format: String?

    @Option(
        help: ArgumentHelp(
            "For secrets: how the value is encoded in Key Vault, decoded on output: utf-8 (default), base64 or hex.",
            valueName: "encoding"))
    var encoding: String?

    @OptionGroup(title: "Vault") var connection: ConnectionOptions
    @OptionGroup(title: "Identity") var identity: IdentityOptions

    func validate() throws {
        let path = try ObjectPath(object)
        if let format {
            guard CertificateFormat(parameter: format) != nil else {
                throw ValidationError("--format '\(format)' is not pem or pfx.")
            }
            guard path.collection == .secrets else {
                throw ValidationError(
                    "--format only applies to secrets (certificate-backed secrets); use secrets/\(path.name).")
            }
        }
        if let encoding {
            guard ObjectEncoding(parameter: encoding) != nil else {
                throw ValidationError("--encoding '\(encoding)' is not utf-8, base64 or hex.")
            }
            guard path.collection == .secrets else { throw ValidationError("--encoding only applies to secrets.") }
        }
    }

    func run() async throws {
        LogSetup.bootstrap()
        let path = try ObjectPath(object)
        let session = try VaultSession(vault: vault, connection: connection, identity: identity)
        defer { session.shutdown() }
        do {
            var formatted = try await fetch(path, session.client)
            defer { formatted.bytes.wipe() }
            for warning in formatted.warnings { Terminal.error("akvfs: warning: \(warning)") }
            try Terminal.write(formatted.bytes)
        } catch let error as KeyVaultError {
            Terminal.error("akvfs: \(error)")
            throw ExitCode.failure
        } catch let error as ObjectFormatError {
            Terminal.error("akvfs: \(path.collection.rawValue)/\(path.name): \(error)")
            throw ExitCode.failure
        }
    }

    private func fetch(_ path: ObjectPath, _ client: KeyVaultClient) async throws -> FormattedObject {
        switch path.collection {
        case .secrets:
            let bundle = try await client.getSecret(path.name, version: path.version)
            guard let value = bundle.value else {
                throw ObjectFormatError("Key Vault returned the secret without a value")
            }
            return try ObjectFormatter.secret(
                value: value,
                contentType: bundle.contentType,
                certificateBacked: bundle.isCertificateBacked,
                format: format.flatMap(CertificateFormat.init(parameter:)) ?? .pem,
                encoding: encoding.flatMap(ObjectEncoding.init(parameter:))
            )
        case .keys:
            return try ObjectFormatter.key(try await client.getKey(path.name, version: path.version).key)
        case .certs:
            guard let der = try await client.getCertificate(path.name, version: path.version).certificateDER else {
                throw ObjectFormatError("Key Vault returned the certificate without its 'cer' content")
            }
            return ObjectFormatter.certificate(cer: der)
        }
    }
}

/// `secrets/NAME[/VERSION]`, `keys/…` or `certs/…` (`certificates/…` also accepted).
struct ObjectPath {
    enum Collection: String { case secrets, keys, certs }

    var collection: Collection
    var name: String
    var version: String?

    init(_ text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let collectionName = parts.first == "certificates" ? "certs" : parts.first ?? ""
        guard (2...3).contains(parts.count), let collection = Collection(rawValue: collectionName), !parts[1].isEmpty
        else {
            throw ValidationError(
                "'\(text)' is not an object path: use secrets/NAME, keys/NAME or certs/NAME, optionally followed by /VERSION."
            )
        }
        self.collection = collection
        name = parts[1]
        version = parts.count == 3 ? parts[2] : nil
        if version?.isEmpty == true {
            throw ValidationError("'\(text)' ends with an empty version; drop the trailing '/' for the latest version.")
        }
    }
}
