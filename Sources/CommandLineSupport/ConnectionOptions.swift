import ArgumentParser
import FoundationEssentials
import HTTPTransport
import KeyVault

/// The version both executables report (and send as the User-Agent).
public enum AKVFSVersion {
    public static let current = "0.1.0-dev"
}

/// Where the vault is and how to reach it.
public struct ConnectionOptions: ParsableArguments {
    public init() {}

    @Option(
        help:
            "Azure cloud: AzurePublicCloud (default), AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud, or AzureStackCloud with --cloud-env-file. Env: AZURE_CLOUD_NAME."
    )
    public var cloud: String?

    @Option(
        name: .customLong("cloud-env-file"),
        help: ArgumentHelp(
            "JSON file describing a custom cloud (activeDirectoryEndpoint, keyVaultEndpoint, keyVaultDNSSuffix). Env: AZURE_ENVIRONMENT_FILEPATH.",
            valueName: "file"))
    public var cloudEnvironmentFile: String?

    @Option(
        help: ArgumentHelp(
            "PEM file of extra CAs to trust besides the system ones. Env: AKVFS_CA_FILE.", valueName: "file"))
    public var caFile: String?

    @Option(help: "Key Vault REST api-version to send.")
    public var apiVersion = "7.6"

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Give up on one operation, retries included, after this many seconds.", valueName: "seconds")
    )
    public var timeout = 120

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Wait at most this many seconds when Key Vault throttles with Retry-After.", valueName: "seconds"))
    public var maxRetryAfter = 120

    @Flag(
        help:
            "Offer HTTP/2 to Key Vault and multiplex requests over one connection (default: a pool of keep-alive HTTP/1.1 connections). Env: AKVFS_HTTP2=1."
    )
    public var http2 = false

    @Flag(
        help: "Send tokens even when the vault's challenge names a resource outside its domain (custom domains only).")
    public var disableChallengeResourceVerification = false

    public func validate() throws {
        try requireOption("timeout", timeout, in: 1...3600, unit: "seconds")
        try requireOption("max-retry-after", maxRetryAfter, in: 0...3600, unit: "seconds")
    }

    public func resolvedCloud(_ environment: [String: String]) throws -> AzureCloud {
        try AzureCloud.resolve(
            name: cloud ?? environment["AZURE_CLOUD_NAME"],
            environmentFile: cloudEnvironmentFile ?? environment["AZURE_ENVIRONMENT_FILEPATH"]
        )
    }

    /// `concurrency`, when given, is the most requests one vault may have in flight
    /// (`--max-concurrency`): over HTTP/1.1 each needs a connection of its own, so the pool per
    /// host follows it.
    public func httpConfiguration(_ environment: [String: String], concurrency: Int? = nil) -> HTTPClientConfiguration {
        var configuration = HTTPClientConfiguration()
        if let concurrency { configuration.maxConnectionsPerHost = concurrency }
        configuration.extraCAFile = caFile ?? environment["AKVFS_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.userAgent = "akvfs/\(AKVFSVersion.current)"
        configuration.preferHTTP2 = prefersHTTP2(environment)
        return configuration
    }

    private func prefersHTTP2(_ environment: [String: String]) -> Bool {
        http2 || environment["AKVFS_HTTP2"] == "1"
    }

    /// `concurrency` as for `httpConfiguration`: that many first requests of a burst ask the vault
    /// on their own, opening the connections the burst needs while the token is fetched (one
    /// HTTP/2 connection needs one).
    public func clientOptions(_ environment: [String: String], concurrency: Int = 1) -> KeyVaultClientOptions {
        var options = KeyVaultClientOptions()
        options.parallelFirstContacts = prefersHTTP2(environment) ? 1 : concurrency
        options.apiVersion = apiVersion
        options.retry.deadline = .seconds(timeout)
        options.retry.maxRetryAfter = .seconds(maxRetryAfter)
        options.verifyChallengeResource = !disableChallengeResourceVerification
        return options
    }
}
