import Foundation
import KeyVault
import SecretProviderClass
import Testing

@Suite("SecretProviderClass parameters (docs/secretproviderclass.md, Parameters)")
struct ParameterTests {
    // Each step adds one input and moves to the next error (docs/secretproviderclass.md, Order of checks).
    @Test func checkOrderOfTheRequiredValues() throws {
        var parameters: [String: String] = [:]
        var attributes: [String: String] = [:]
        expectParseError(
            .invalidArgument, "pod name is not provided", parameters: parameters, podAttributes: attributes)
        attributes["csi.storage.k8s.io/pod.name"] = "app-0"
        expectParseError(
            .invalidArgument, "pod namespace is not provided", parameters: parameters, podAttributes: attributes)
        attributes["csi.storage.k8s.io/pod.namespace"] = "default"
        expectParseError(
            .invalidArgument, "keyvaultName is not provided", parameters: parameters, podAttributes: attributes)
        parameters["keyvaultName"] = "testKV"
        expectParseError(
            .invalidArgument, "tenantId is not provided", parameters: parameters, podAttributes: attributes)
        parameters["tenantId"] = Fixture.tenant
        parameters["usePodIdentity"] = "tru"
        expectParseError(
            .invalidArgument,
            #"failed to parse usePodIdentity flag, error: strconv.ParseBool: parsing "tru": invalid syntax"#,
            parameters: parameters, podAttributes: attributes)
    }

    @Test func podNameComesFirstEvenWithOtherMistakes() {
        expectParseError(
            .invalidArgument, "pod name is not provided", parameters: ["keyvaultname": "x", "usePodIdentity": "tru"],
            podAttributes: [:])
        expectParseError(
            .invalidArgument, "CSIDriver object must set podInfoOnMount: true",
            parameters: Fixture.parameters(), podAttributes: ["csi.storage.k8s.io/pod.name": "app-0"])
    }

    @Test func flagsAreCheckedBeforeTheVaultAndAuthBeforeObjects() {
        expectParseError(
            .invalidArgument, "failed to parse useVMManagedIdentity flag",
            parameters: ["useVMManagedIdentity": "yes"])
        // No credentials and no objects: the credentials error comes first, as in the provider.
        expectParseError(
            .unauthenticated, "nodePublishSecretRef secret is not set",
            parameters: Fixture.parameters(["objects": nil]), secrets: [:])
    }

    // MARK: Booleans

    @Test(arguments: ["1", "t", "T", "TRUE", "true", "True", " true "])
    func goParseBoolTrue(value: String) throws {
        let request = try #require(
            parsed(
                Fixture.parameters(["useVMManagedIdentity": value]),
                options: ParserOptions(allowNodeManagedIdentity: true)))
        #expect(request.identity == .nodeManagedIdentity(clientId: nil))
    }

    @Test(arguments: ["", "0", "f", "F", "FALSE", "false", "False"])
    func goParseBoolFalse(value: String) throws {
        let parameters = Fixture.parameters([
            "usePodIdentity": value, "useVMManagedIdentity": value, "useAzureTokenProxy": value,
        ])
        let request = try #require(parsed(parameters))
        #expect(request.identity == .servicePrincipal(clientId: Fixture.clientId, clientSecret: Fixture.clientSecret))
    }

    @Test(arguments: ["usePodIdentity", "useVMManagedIdentity", "useAzureTokenProxy"])
    func badBooleansUseTheProvidersText(flag: String) {
        expectParseError(
            .invalidArgument,
            #"failed to parse \#(flag) flag, error: strconv.ParseBool: parsing "tru": invalid syntax"#,
            parameters: Fixture.parameters([flag: "tru"]))
        expectParseError(
            .invalidArgument,
            #"failed to parse \#(flag) flag, error: strconv.ParseBool: parsing "invalid-value": invalid syntax"#,
            parameters: Fixture.parameters([flag: "invalid-value"]))
        expectParseError(
            .invalidArgument, #"parsing "yes": invalid syntax"#, parameters: Fixture.parameters([flag: "yes"]))
    }

    @Test(arguments: [
        ["usePodIdentity", "useAzureTokenProxy"], ["usePodIdentity", "useVMManagedIdentity"],
        ["useVMManagedIdentity", "useAzureTokenProxy"],
        ["usePodIdentity", "useVMManagedIdentity", "useAzureTokenProxy"],
    ])
    func onlyOneIdentityMode(flags: [String]) {
        var changes: [String: String?] = [:]
        for flag in flags { changes[flag] = "true" }
        expectParseError(
            .invalidArgument,
            "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy",
            parameters: Fixture.parameters(changes), options: ParserOptions(allowNodeManagedIdentity: true))
    }

    // MARK: Identity modes akvfs refuses

    @Test func podIdentityIsUnsupported() {
        expectParseError(
            .invalidArgument, "usePodIdentity is not supported", "deprecated", "workload identity", "clientID",
            "api://AzureADTokenExchange", parameters: Fixture.parameters(["usePodIdentity": "true"]))
    }

    // `useAzureTokenProxy: true`: akvfs does not implement identity binding, whatever else is set
    // (docs/secretproviderclass.md, Stricter: pod identity and identity binding).
    @Test func identityBindingIsUnsupported() {
        let message = "identity binding (useAzureTokenProxy) is not supported by akvfs; use workload identity"
        expectParseError(.invalidArgument, message, parameters: Fixture.parameters(["useAzureTokenProxy": "true"]))
        expectParseError(
            .invalidArgument, message,
            parameters: Fixture.parameters(["useAzureTokenProxy": "true", "clientID": Fixture.clientId]),
            secrets: [:])
        expectParseError(
            .invalidArgument, "failed to parse useAzureTokenProxy",
            parameters: Fixture.parameters(["useAzureTokenProxy": "invalid-value"]))
    }

    @Test func nodeIdentityNeedsThePluginsConsent() {
        expectParseError(
            .failedPrecondition, "useVMManagedIdentity is not allowed", "--allow-node-identity", "any pod on the node",
            "workload identity", parameters: Fixture.parameters(["useVMManagedIdentity": "true"]))
    }

    @Test func nodeIdentityWhenAllowed() throws {
        let options = ParserOptions(allowNodeManagedIdentity: true)
        let systemAssigned = try #require(
            parsed(Fixture.parameters(["useVMManagedIdentity": "true"]), secrets: [:], options: options))
        #expect(systemAssigned.identity == .nodeManagedIdentity(clientId: nil))
        let userAssigned = try #require(
            parsed(
                Fixture.parameters(["useVMManagedIdentity": "true", "userAssignedIdentityID": Fixture.clientId]),
                secrets: [:],
                options: options))
        #expect(userAssigned.identity == .nodeManagedIdentity(clientId: Fixture.clientId))
        expectParseError(
            .invalidArgument, #"userAssignedIdentityID "my-identity" is not valid"#, "GUID",
            parameters: Fixture.parameters(["useVMManagedIdentity": "true", "userAssignedIdentityID": "my-identity"]),
            options: options)
    }

    // `useVMManagedIdentity: true`, no objects (docs/secretproviderclass.md, The objects parameter).
    @Test func objectsIsRequired() {
        let options = ParserOptions(allowNodeManagedIdentity: true)
        expectParseError(
            .invalidArgument, "objects is not set",
            parameters: Fixture.parameters(["useVMManagedIdentity": "true", "objects": nil]), options: options)
        expectParseError(
            .invalidArgument, "objects is not set",
            parameters: Fixture.parameters(["useVMManagedIdentity": "true", "objects": "  \n "]), options: options)
    }

    // MARK: Vault name (Key Vault's rules, checked early: docs/secretproviderclass.md, Stricter: vault names)

    @Test func providerVaultNameVectors() {
        expectParseError(
            .invalidArgument, #"failed to get vault: Invalid vault name: "kv", must be between 3 and 24 chars"#,
            parameters: Fixture.parameters(["keyvaultName": "kv"]))
        expectParseError(
            .invalidArgument, #"failed to get vault: Invalid vault name: "kv_test", must match [-a-zA-Z0-9]{3,24}"#,
            parameters: Fixture.parameters(["keyvaultName": "kv_test"]))
        expectParseError(
            .invalidArgument,
            #"failed to get vault: Invalid vault name: "longkeyvaultnamewhichisnotvalid", must be between 3 and 24 chars"#,
            parameters: Fixture.parameters(["keyvaultName": "longkeyvaultnamewhichisnotvalid"]))
    }

    @Test(arguments: [
        ("1kv", "must start with a letter"), ("-kv", "must start with a letter"),
        ("kv-", "must end with a letter or digit"),
        ("k--v", "must not contain '--'"), ("kvé1", "must match [-a-zA-Z0-9]{3,24}"),
        ("myvault.vault.azure.net", "not its URL or host name"),
        ("https://myvault.vault.azure.net/", "not its URL or host name"),
    ])
    func keyVaultNamingRules(name: String, fragment: String) {
        expectParseError(
            .invalidArgument, "failed to get vault: Invalid vault name: \"\(name)\"", fragment,
            "Key Vault names are 3-24 characters",
            parameters: Fixture.parameters(["keyvaultName": name]))
    }

    @Test(arguments: ["testkv", "testKV", "a-b-1", "abc", "abcdefghijklmnopqrstuvwx"])
    func validVaultNames(name: String) throws {
        #expect(try #require(parsed(Fixture.parameters(["keyvaultName": name]))).keyVaultName == name)
    }

    @Test func vaultNameIsCheckedBeforeTenantAndObjects() {
        expectParseError(
            .invalidArgument, "Invalid vault name", parameters: ["keyvaultName": "kv_test", "objects": "- garbage"])
    }

    // Vault URLs per cloud (docs/secretproviderclass.md, cloudName).
    @Test(
        arguments: [
            (nil, "https://testkv.vault.azure.net/"), ("", "https://testkv.vault.azure.net/"),
            ("AzurePublicCloud", "https://testkv.vault.azure.net/"),
            ("AzureChinaCloud", "https://testkv.vault.azure.cn/"),
            ("AzureGermanCloud", "https://testkv.vault.microsoftazure.de/"),
            ("AzureUSGovernmentCloud", "https://testkv.vault.usgovcloudapi.net/"),
            ("azureusgovernmentcloud", "https://testkv.vault.usgovcloudapi.net/"),
        ] as [(String?, String)])
    func vaultURLPerCloud(cloud: String?, url: String) throws {
        let request = try #require(parsed(Fixture.parameters(["cloudName": cloud])))
        #expect(try request.vaultEndpoint().url + "/" == url)
    }

    // MARK: Tenant

    @Test func tenantIDBeatsTenantId() throws {
        let both = try #require(
            parsed(Fixture.parameters(["tenantID": "contoso.onmicrosoft.com", "tenantId": Fixture.tenant])))
        #expect(both.tenantId == "contoso.onmicrosoft.com")
        let legacy = try #require(parsed(Fixture.parameters(["tenantId": Fixture.tenant])))
        #expect(legacy.tenantId == Fixture.tenant)
        let emptyNew = try #require(parsed(Fixture.parameters(["tenantID": " ", "tenantId": Fixture.tenant])))
        #expect(emptyNew.tenantId == Fixture.tenant)
        let adfs = try #require(parsed(Fixture.parameters(["tenantId": nil, "tenantID": "adfs"])))
        #expect(adfs.tenantId == "adfs")
    }

    @Test(arguments: ["a/b", "tenant?x=1", "contoso onmicrosoft.com", "..%2f"])
    func tenantMustBeAnIDOrDomain(tenant: String) {
        expectParseError(
            .invalidArgument, "tenantId", "is not valid", "directory (tenant) ID",
            parameters: Fixture.parameters(["tenantId": tenant]))
    }

    // MARK: Cloud

    @Test(arguments: [
        "AzurePublicCloud", "azurepubliccloud", "AZURECHINACLOUD", "AzureUSGovernmentCloud", "AzureGermanCloud",
    ])
    func cloudNamesAreCaseInsensitive(name: String) throws {
        let request = try #require(parsed(Fixture.parameters(["cloudName": name])))
        #expect(request.cloudName == name)
        #expect(try request.resolveCloud().name.lowercased() == name.lowercased())
    }

    @Test func unknownCloudName() {
        expectParseError(
            .invalidArgument, "cloudName AzureCloud1 is not valid", "AzurePublicCloud, AzureUSGovernmentCloud",
            parameters: Fixture.parameters(["cloudName": "AzureCloud1"]))
    }

    @Test func cloudEnvFileNameOnlyWithAzureStackCloud() {
        expectParseError(
            .invalidArgument, "cloudEnvFileName is only used with cloudName AzureStackCloud",
            parameters: Fixture.parameters(["cloudEnvFileName": "/etc/kubernetes/akscustom.json"]))
        expectParseError(
            .invalidArgument, "cloudEnvFileName is only used with cloudName AzureStackCloud, not AzureChinaCloud",
            parameters: Fixture.parameters([
                "cloudName": "AzureChinaCloud", "cloudEnvFileName": "/etc/kubernetes/akscustom.json",
            ]))
        expectParseError(
            .invalidArgument, "cloudName AzureStackCloud is not valid, error: cloudEnvFileName is not set",
            parameters: Fixture.parameters(["cloudName": "AzureStackCloud"]))
        expectParseError(
            .invalidArgument, "must be an absolute path",
            parameters: Fixture.parameters(["cloudName": "azurestackcloud", "cloudEnvFileName": "akscustom.json"]))
    }

    // The file is read per request; the process environment is left alone
    // (docs/secretproviderclass.md, cloudEnvFileName; Differs: the cloud file is read per volume).
    @Test func azureStackCloudReadsItsFileWithoutTouchingTheEnvironment() throws {
        let missing = try #require(
            parsed(
                Fixture.parameters(["cloudName": "AzureStackCloud", "cloudEnvFileName": "/nonexistent/akscustom.json"]))
        )
        #expect(missing.cloudEnvironmentFile == "/nonexistent/akscustom.json")
        #expect(throws: VolumeError.self) { try missing.resolveCloud() }
        do {
            _ = try missing.resolveCloud()
        } catch {
            #expect(error.code == .failedPrecondition)
            #expect(error.message.hasPrefix("cloudName AzureStackCloud is not valid, error: "))
            #expect(error.message.contains("/nonexistent/akscustom.json"))
        }

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("akvfs-spc-\(UUID().uuidString).json")
            .path
        let json =
            #"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.stack.example/","keyVaultEndpoint":"https://vault.stack.example/","keyVaultDNSSuffix":"vault.stack.example"}"#
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let request = try #require(
            parsed(Fixture.parameters(["cloudName": "AzureStackCloud", "cloudEnvFileName": path])))
        #expect(try request.vaultEndpoint().url == "https://testkv.vault.stack.example")
        #expect(ProcessInfo.processInfo.environment["AZURE_ENVIRONMENT_FILEPATH"] == nil)
    }

    // MARK: Trimming

    @Test func valuesAreTrimmed() throws {
        let parameters = Fixture.parameters([
            "keyvaultName": " testkv ", "tenantId": "\t\(Fixture.tenant)\n", "cloudName": " AzureChinaCloud ",
            "usePodIdentity": " false ",
        ])
        let request = try #require(
            parsed(
                parameters,
                podAttributes: ["csi.storage.k8s.io/pod.name": " app-0 ", "csi.storage.k8s.io/pod.namespace": " ns "]))
        #expect(request.keyVaultName == "testkv")
        #expect(request.tenantId == Fixture.tenant)
        #expect(request.cloudName == "AzureChinaCloud")
        #expect(request.podName == "app-0")
        #expect(request.podNamespace == "ns")
    }

    // MARK: Unknown keys (docs/secretproviderclass.md, Stricter: unknown parameters)

    @Test func unknownParametersAreRejectedWithASuggestion() {
        expectParseError(
            .invalidArgument, "unknown parameter keyvaultname (did you mean keyvaultName?)", "keyvaultName, tenantID",
            "resourceGroup and subscriptionId are accepted and ignored",
            parameters: Fixture.parameters(["keyvaultName": nil, "keyvaultname": "testkv"]))
        expectParseError(
            .invalidArgument, "unknown parameter userAssignedIdentityId (did you mean userAssignedIdentityID?)",
            parameters: Fixture.parameters(["userAssignedIdentityId": Fixture.clientId]))
        expectParseError(
            .invalidArgument, "unknown parameters clientId (did you mean clientID?), frobnicate:",
            parameters: Fixture.parameters(["clientId": Fixture.clientId, "frobnicate": "1"]))
    }

    @Test func legacyAndKubeletKeysAreAccepted() throws {
        let parameters = Fixture.parameters([
            "resourceGroup": "rg", "subscriptionId": "sub", "csi.storage.k8s.io/ephemeral": "true",
            "csi.storage.k8s.io/some.future.key": "x", "providerName": "azure",
        ])
        #expect(parsed(parameters) != nil)
    }

    // MARK: Pod attributes (docs/secretproviderclass.md, Stricter: pod volumeAttributes)

    @Test(arguments: SecretProviderClassParser.parameterKeys)
    func podAttributesNeverOverrideParameters(key: String) {
        var attributes = Fixture.pod
        attributes["secretProviderClass"] = "my-spc"
        attributes[key] = "anything"
        expectParseError(
            .invalidArgument, "volumeAttributes may not set \(key)", "set it in the SecretProviderClass my-spc",
            parameters: Fixture.parameters(), podAttributes: attributes)
    }

    @Test func unknownPodAttributesAreRejected() {
        var attributes = Fixture.pod
        attributes["secretProviderClas"] = "my-spc"
        expectParseError(
            .invalidArgument, "unknown volumeAttributes key secretProviderClas (did you mean secretProviderClass?)",
            parameters: Fixture.parameters(), podAttributes: attributes)
    }

    @Test func withASecretProviderClass() throws {
        let attributes = Fixture.pod.merging([
            "csi.storage.k8s.io/pod.uid": "0b2d7f4e-1111-2222-3333-444455556666",
            "csi.storage.k8s.io/serviceAccount.name": "app",
            "csi.storage.k8s.io/ephemeral": "true", "secretProviderClass": "my-spc", "providerName": "azure",
        ]) { $1 }
        let request = try #require(parsed(Fixture.parameters(), podAttributes: attributes))
        #expect(request.podName == "app-0")
        #expect(request.podNamespace == "default")
        #expect(request.podUID == "0b2d7f4e-1111-2222-3333-444455556666")
        #expect(request.serviceAccountName == "app")
        #expect(request.secretProviderClass == "my-spc")
        #expect(request.keyVaultName == "testkv")
        #expect(request.objects.map(\.name) == ["secret1"])
    }

    @Test func withoutASecretProviderClassTheAttributesAreTheParameters() throws {
        let volumeContext = Fixture.parameters().merging(Fixture.pod) { $1 }
            .merging(["csi.storage.k8s.io/serviceAccount.name": "app", "csi.storage.k8s.io/ephemeral": "true"]) { $1 }
        let request = try #require(parsed(volumeContext, podAttributes: [:]))
        #expect(request.podName == "app-0")
        #expect(request.serviceAccountName == "app")
        #expect(request.secretProviderClass == nil)
        #expect(request.identity == .servicePrincipal(clientId: Fixture.clientId, clientSecret: Fixture.clientSecret))
    }

    @Test func kubeletsPodInfoWinsOverParameters() throws {
        let parameters = Fixture.parameters(["csi.storage.k8s.io/pod.name": "spoofed"])
        #expect(try #require(parsed(parameters)).podName == "app-0")
    }
}

@Suite("Owner of the volume's files")
struct OwnerTests {
    @Test("uid and gid come from the pod's volumeAttributes, or the attributes when there is no class")
    func owner() {
        let fromPod = parsed(
            Fixture.parameters(), podAttributes: Fixture.pod.merging(["uid": "1000", "gid": "3000"]) { $1 })
        #expect(fromPod?.uid == 1000 && fromPod?.gid == 3000)
        let inline = parsed(Fixture.parameters(["uid": "0"]).merging(Fixture.pod) { $1 }, podAttributes: [:])
        #expect(inline?.uid == 0 && inline?.gid == nil)
        #expect(parsed(Fixture.parameters())?.uid == nil)
    }

    @Test("A SecretProviderClass may not choose the files' owner for the pods that name it")
    func notFromTheClass() {
        let pod = Fixture.pod.merging(["secretProviderClass": "app", "uid": "1000"]) { $1 }
        let error = parseError(Fixture.parameters(["uid": "0", "gid": "0"]), podAttributes: pod)
        #expect(error?.code == .invalidArgument)
        #expect(
            error?.message
                == "the SecretProviderClass app sets uid and gid in its parameters: the files' owner is chosen by each pod, with uid and gid in its volumeAttributes or its fsGroup; remove uid and gid from the class"
        )
    }

    @Test("Names and out-of-range IDs are refused", arguments: ["root", "-1", "4294967295", "1e3", "１０"])
    func refused(value: String) {
        let error = parseError(Fixture.parameters(), podAttributes: Fixture.pod.merging(["gid": value]) { $1 })
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("numeric group ID") == true, "\(error?.message ?? "")")
    }

    @Test(arguments: [
        (["csi.storage.k8s.io/pod.name": "web\n0"], "pod name \"web\\n0\" is not a Kubernetes object name"),
        (["csi.storage.k8s.io/pod.name": "Web-0"], "pod name \"Web-0\" is not a Kubernetes object name"),
        (["csi.storage.k8s.io/pod.namespace": "team.a"], "pod namespace \"team.a\" is not a Kubernetes namespace name"),
        (["csi.storage.k8s.io/pod.namespace": String(repeating: "n", count: 64)], "is not a Kubernetes namespace name"),
        (
            ["csi.storage.k8s.io/serviceAccount.name": "reader\u{1B}[2K"],
            "service account name \"reader\\x1b[2K\" is not"
        ),
        (["csi.storage.k8s.io/pod.uid": "0f1e/../x"], "pod uid \"0f1e/../x\" is not a Kubernetes UID"),
    ])
    func kubeletsPodInfoIsChecked(attributes: [String: String], fragment: String) {
        let error = parseError(Fixture.parameters(), podAttributes: Fixture.pod.merging(attributes) { $1 })
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test func longPodNamesAndDottedServiceAccountsAreFine() {
        let name = String(repeating: "a", count: 70) + ".b-1"
        #expect(
            parsed(
                Fixture.parameters(),
                podAttributes: Fixture.pod.merging([
                    "csi.storage.k8s.io/pod.name": name, "csi.storage.k8s.io/serviceAccount.name": "app.reader",
                ]) { $1 }) != nil)
    }

    @Test func filesPerVolumeAreBounded() {
        var options = ParserOptions()
        options.maxFilesPerVolume = 10
        let nine = Fixture.objects((0..<9).map { [("objectName", "s\($0)"), ("objectType", "secret")] })
        #expect(parsed(Fixture.parameters(["objects": nine]), options: options)?.fileCountAtMost == 9)
        // Two plain objects and a history of 9 versions: 11 files.
        let eleven = Fixture.objects([
            [("objectName", "a"), ("objectType", "secret")], [("objectName", "b"), ("objectType", "secret")],
            [("objectName", "c"), ("objectType", "secret"), ("objectVersionHistory", "9")],
        ])
        let error = parseError(Fixture.parameters(["objects": eleven]), options: options)
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("asks for 11 files (3 objects") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("at most 10 per volume (--max-objects-per-volume)") == true)
    }
}
