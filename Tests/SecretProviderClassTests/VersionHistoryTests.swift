import ObjectFormats
import SecretProviderClass
import Testing

@Suite("objectVersionHistory (docs/secretproviderclass.md, objectVersionHistory; Differs: at most N versions)")
struct VersionHistoryTests {
    typealias Version = (version: String, created: Int64?, enabled: Bool)
    static let hour: Int64 = 3600
    static let t: Int64 = 1_700_000_000
    /// TestGetLatestNKeyVaultObjects: a(t+10h) b(+9) c(+8) d(+7) e(+6).
    static let five: [Version] = [
        ("a", t + 10 * hour, true), ("b", t + 9 * hour, true), ("c", t + 8 * hour, true), ("d", t + 7 * hour, true),
        ("e", t + 6 * hour, true),
    ]

    static func object(history: Int, version: String? = nil, alias: String? = nil) -> VolumeObject {
        VolumeObject(name: "secret1", type: .secret, version: version, alias: alias, versionHistory: history)
    }

    static func files(_ object: VolumeObject, _ versions: [Version]) throws -> [String] {
        try SecretProviderClassParser.expandHistory(object, versions: versions).map {
            "\($0.path.joined(separator: "/"))=\($0.version ?? "")"
        }
    }

    @Test func fiveLatest() throws {
        let expected = ["secret1/0=a", "secret1/1=b", "secret1/2=c", "secret1/3=d", "secret1/4=e"]
        #expect(try Self.files(Self.object(history: 5), Self.five) == expected)
        #expect(
            try Self.files(
                Self.object(history: 5), [Self.five[3], Self.five[0], Self.five[4], Self.five[2], Self.five[1]])
                == expected)
    }

    @Test func fewerVersionsThanHistory() throws {
        let two = Array(Self.five.prefix(2))
        #expect(try Self.files(Self.object(history: 2), two) == ["secret1/0=a", "secret1/1=b"])
        #expect(try Self.files(Self.object(history: 200), two) == ["secret1/0=a", "secret1/1=b"])
    }

    @Test func startAtANamedVersion() throws {
        #expect(
            try Self.files(Self.object(history: 5, version: "c"), Self.five) == [
                "secret1/0=c", "secret1/1=d", "secret1/2=e",
            ])
    }

    // The provider returns N+1 entries when there are more than N versions
    // (docs/secretproviderclass.md, Differs: at most N versions).
    @Test func atMostNFiles() throws {
        #expect(try Self.files(Self.object(history: 3), Self.five) == ["secret1/0=a", "secret1/1=b", "secret1/2=c"])
        #expect(try Self.files(Self.object(history: 2, version: "b"), Self.five) == ["secret1/0=b", "secret1/1=c"])
        #expect(try Self.files(Self.object(history: 4), Self.five).count == 4)
    }

    @Test func disabledSkippedAndMissingCreatedIsEpoch() throws {
        let versions: [Version] = [
            ("old", nil, true), ("a", Self.t, false), ("b", Self.t - 1, true), ("", Self.t + 1, true),
        ]
        #expect(try Self.files(Self.object(history: 5), versions) == ["secret1/0=b", "secret1/1=old"])
        let ties: [Version] = [("x", 5, true), ("y", 5, true), ("z", 5, true)]
        #expect(try Self.files(Self.object(history: 3), ties) == ["secret1/0=x", "secret1/1=y", "secret1/2=z"])
    }

    @Test func expandedFilesAreSingleVersionObjectsUnderTheAlias() throws {
        let object = VolumeObject(
            name: "secret1", type: .secret, alias: "folder/multiple-versions", encoding: .base64, permission: 0o440,
            versionHistory: 3)
        let files = try SecretProviderClassParser.expandHistory(object, versions: Self.five)
        #expect(files.count == 3)
        #expect(files[2].path == ["folder", "multiple-versions", "2"])
        #expect(files[2].alias == "folder/multiple-versions/2")
        #expect(files[2].version == "c")
        #expect(
            files.allSatisfy {
                $0.isSingleVersion && $0.name == "secret1" && $0.encoding == .base64 && $0.permission == 0o440
            })
    }

    @Test(arguments: [0, 1])
    func singleVersionObjectsAreUnchanged(history: Int) throws {
        let object = Self.object(history: history, version: "c")
        #expect(try SecretProviderClassParser.expandHistory(object, versions: Self.five) == [object])
    }

    @Test func missingVersions() {
        do {
            _ = try SecretProviderClassParser.expandHistory(
                Self.object(history: 3, version: "zzz"), versions: Self.five)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .notFound)
            #expect(
                error.message.hasPrefix(
                    "failed to get objectType:secret, objectName:secret1, objectVersion:zzz: version zzz is not among"))
        }
        do {
            _ = try SecretProviderClassParser.expandHistory(Self.object(history: 3), versions: [("a", 1, false)])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message.contains("no enabled versions"))
        }
    }

    // IsSyncingSingleVersion: 0, 1 -> true, 4 -> false.
    @Test func isSingleVersion() {
        #expect(Self.object(history: 0).isSingleVersion)
        #expect(Self.object(history: 1).isSingleVersion)
        #expect(!Self.object(history: 4).isSingleVersion)
    }
}
