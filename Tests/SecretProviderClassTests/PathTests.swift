import SecretProviderClass
import Testing

@Suite("File paths and conflicts (docs/secretproviderclass.md, Stricter: file paths; Stricter: files that collide)")
struct PathTests {
    // Accepted by the driver's fileutil.Validate (and so by akvfs).
    @Test(arguments: [
        ("foo", ["foo"]), ("foo/bar", ["foo", "bar"]), ("i/am/well/behaved.txt", ["i", "am", "well", "behaved.txt"]),
        (#"foo\bar"#, [#"foo\bar"#]), ("a..b", ["a..b"]), ("dir/a..b/c..", ["dir", "a..b", "c.."]),
        (".hidden", [".hidden"]),
    ])
    func acceptedPaths(path: String, components: [String]) throws {
        #expect(try SecretProviderClassParser.validateFilePath(path) == components)
        let object = try #require(
            parsedObject([("objectName", "obj1"), ("objectType", "secret"), ("objectAlias", "'\(path)'")]))
        #expect(object.path == components)
        #expect(object.alias == path)
    }

    // Rejected by the driver; the message names the rule (provider's text where the provider has the rule).
    @Test(arguments: [
        ("", "file name must not be empty"),
        ("/dev/null", "file name must be a relative path: \"/dev/null\""),
        ("/secret1", "file name must be a relative path"),
        ("foo/../etc/password", "file name must not contain '..': \"foo/../etc/password\""),
        ("secret1/..", "file name must not contain '..'"), ("../secret1", "file name must not contain '..'"),
        ("..", "must not contain '..'"),
        ("..sneaky.txt", "invalid path: must not start with '..'"),
        ("dir/..data", "invalid path: must not start with '..'"),
        ("..data", "reserved for the volume's ..data"),
        ("foo////bar", #"invalid filepath: "foo////bar""#), ("./foo", #"invalid filepath: "./foo""#),
        ("foo/", #"invalid filepath: "foo/""#),
        ("foo/./bar", #"write it as "foo/bar""#), (".", "invalid filepath"), ("a\u{0}b", "must not contain NUL"),
        // Control characters would be file names in the pod that break or forge what tools show.
        ("line\nbreak", #"must not contain control characters (newline, tab, escape, …; found U+000A): "line\nbreak""#),
        ("tab\there", "found U+0009"), ("esc\u{1B}[31mred", "found U+001B"), ("dir/del\u{7F}", "found U+007F"),
        ("next\u{85}line", "found U+0085"), ("\rfirst", "found U+000D"),
    ])
    func rejectedPaths(path: String, fragment: String) {
        do {
            let components = try SecretProviderClassParser.validateFilePath(path)
            Issue.record("accepted \(components)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    // With a version history the provider writes filepath.Join(alias, "<index>"), which cleans the alias, so the
    // driver sees clean paths; akvfs cleans it the same way. ".." is still refused, and so is an alias that
    // cleans to nothing (the files would land at the volume's root).
    @Test(arguments: [
        ("d/", ["d"]), ("./d", ["d"]), ("a//b/", ["a", "b"]), ("a/./b", ["a", "b"]), ("d", ["d"]),
    ])
    func versionHistoryAliasesAreCleanedAsTheProviderJoinsThem(alias: String, components: [String]) throws {
        let object = try #require(
            parsedObject([
                ("objectName", "obj1"), ("objectType", "secret"), ("objectAlias", "'\(alias)'"),
                ("objectVersionHistory", "2"),
            ]))
        #expect(object.path == components)
        #expect(object.alias == components.joined(separator: "/"))
        let files = try SecretProviderClassParser.expandHistory(
            object, versions: [(version: "v2", created: 2, enabled: true), (version: "v1", created: 1, enabled: true)])
        #expect(files.map(\.alias) == ["0", "1"].map { (components + [$0]).joined(separator: "/") })
    }

    @Test(arguments: [
        ("d/", "1", #"invalid filepath: "d/""#), ("./", "2", "invalid filepath"), (".", "2", "invalid filepath"),
        ("../d", "2", "must not contain '..'"), ("a/../b", "3", "must not contain '..'"),
        ("/d", "2", "must be a relative path"),
    ])
    func uncleanAliasesStayRefusedWithoutAHistoryOrWhenCleaningCannotHelp(
        alias: String, history: String, fragment: String
    ) {
        expectObjectsError(
            Fixture.objects([
                [
                    ("objectName", "obj1"), ("objectType", "secret"), ("objectAlias", "'\(alias)'"),
                    ("objectVersionHistory", history),
                ]
            ]),
            fragment)
    }

    @Test func rejectedAliasesUseTheObjectWrapper() {
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectAlias", "../secret1")]]),
            "failed to get objectType:secret, objectName:secret1, objectVersion:: file name must not contain '..'")
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectAlias", "/etc/passwd")]]),
            "objectName:secret1, objectVersion:: file name must be a relative path")
        expectObjectsError(
            Fixture.objects([[("objectName", "secret1"), ("objectType", "secret"), ("objectAlias", "..data")]]),
            "must not start with '..'")
    }

    @Test func lengthLimits() throws {
        let component255 = String(repeating: "a", count: 255)
        #expect(try SecretProviderClassParser.validateFilePath(component255) == [component255])
        let path4096 =
            Array(repeating: String(repeating: "b", count: 200), count: 20).joined(separator: "/") + "/"
            + String(repeating: "c", count: 76)
        #expect(path4096.utf8.count == 4096)
        #expect(try SecretProviderClassParser.validateFilePath(path4096).count == 21)

        #expect(throws: VolumeError.self) { try SecretProviderClassParser.validateFilePath(component255 + "a") }
        #expect(throws: VolumeError.self) { try SecretProviderClassParser.validateFilePath(path4096 + "c") }
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        #expect(throws: VolumeError.self) {
            try SecretProviderClassParser.validateFilePath(String(repeating: "é", count: 128))
        }
        do {
            _ = try SecretProviderClassParser.validateFilePath(component255 + "a")
        } catch {
            #expect(error.message.contains("256 bytes, longer than 255"))
        }
        do {
            _ = try SecretProviderClassParser.validateFilePath(path4096 + "c")
        } catch {
            #expect(error.message.contains("4097 bytes, longer than 4096"))
        }
        var options = ParserOptions()
        options.maxPathComponentBytes = 8
        #expect(throws: VolumeError.self) {
            try SecretProviderClassParser.validateFilePath("123456789", options: options)
        }
    }

    // MARK: Conflicts (docs/secretproviderclass.md, Stricter: files that collide)

    @Test func duplicateOutputPaths() {
        expectObjectsError(
            Fixture.objects([
                [("objectName", "secret1"), ("objectType", "secret"), ("objectAlias", "app/config")],
                [("objectName", "secret2"), ("objectType", "secret"), ("objectAlias", "app/config")],
            ]),
            "objects objectName:secret1 (objectType:secret, array item 0) and objectName:secret2 (objectType:secret, array item 1) both write \"app/config\"",
            "different objectAlias")
        // The same object twice, once as a secret and once as a certificate, without aliases.
        expectObjectsError(
            Fixture.objects([
                [("objectName", "tls"), ("objectType", "secret")], [("objectName", "tls"), ("objectType", "cert")],
            ]),
            "objectName:tls (objectType:secret, array item 0) and objectName:tls (objectType:cert, array item 1) both write \"tls\""
        )
        // An alias equal to another object's name.
        expectObjectsError(
            Fixture.objects([
                [("objectName", "secret1"), ("objectType", "secret")],
                [("objectName", "secret2"), ("objectType", "secret"), ("objectAlias", "secret1")],
            ]),
            "both write \"secret1\"")
    }

    @Test func fileThatIsAlsoADirectory() {
        for (first, second) in [("a", "a/b"), ("a/b", "a")] {
            expectObjectsError(
                Fixture.objects([
                    [("objectName", "one"), ("objectType", "secret"), ("objectAlias", first)],
                    [("objectName", "two"), ("objectType", "secret"), ("objectAlias", second)],
                ]),
                "writes the file \"a\"", "needs \"a\" to be a directory for \"a/b\"", "objectName:one", "objectName:two"
            )
        }
    }

    @Test func versionHistoryOwnsItsDirectory() {
        expectObjectsError(
            Fixture.objects([
                [("objectName", "secret1"), ("objectType", "secret"), ("objectVersionHistory", "3")],
                [("objectName", "secret2"), ("objectType", "secret"), ("objectAlias", "secret1/0")],
            ]),
            "objectName:secret1 (objectType:secret, array item 0) keeps its 3 versions in the directory \"secret1\"",
            "objectName:secret2 (objectType:secret, array item 1) cannot write \"secret1/0\"")
        expectObjectsError(
            Fixture.objects([
                [("objectName", "secret1"), ("objectType", "secret"), ("objectVersionHistory", "3")],
                [("objectName", "secret1"), ("objectType", "secret"), ("objectVersionHistory", "2")],
            ]),
            "both write \"secret1\"")
    }

    @Test func distinctPathsAreFine() throws {
        let objects = Fixture.objects([
            [("objectName", "secret1"), ("objectType", "secret"), ("objectAlias", "A")],
            [("objectName", "secret2"), ("objectType", "secret"), ("objectAlias", "a")],
            [("objectName", "secret3"), ("objectType", "secret"), ("objectAlias", "dir/x")],
            [("objectName", "secret4"), ("objectType", "secret"), ("objectAlias", "dir/y")],
            [("objectName", "secret5"), ("objectType", "secret"), ("objectAlias", "dirx")],
            [
                ("objectName", "secret1"), ("objectType", "secret"), ("objectVersionHistory", "2"),
                ("objectAlias", "history"),
            ],
        ])
        let request = try #require(parsed(Fixture.parameters(["objects": objects])))
        #expect(request.objects.map(\.path) == [["A"], ["a"], ["dir", "x"], ["dir", "y"], ["dirx"], ["history"]])
    }
}
