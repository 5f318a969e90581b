import Foundation

/// Where SwiftPM put this build's products: the test binary's own directory.
public var buildDirectory: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent() }

/// The path of an executable this build made (`akvfs`, `akvfs-emulator`, …).
public func builtExecutable(_ name: String) -> String {
    buildDirectory.appendingPathComponent(name).path
}

/// A file of this repository (`docs/semantics.md`), found from where this source file lies in it.
public func repositoryFile(_ path: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(path)
}
