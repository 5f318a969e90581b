import Foundation

/// Where SwiftPM put this build's products: the test binary's own directory.
public var buildDirectory: URL { URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent() }

/// The path of an executable this build made (`akvfs`, `akvfs-emulator`, …), or the one in
/// `AKVFS_SHIPPED_DIR` when that directory holds it: scripts/test runs the CSI plugin's tests again
/// against the binaries as `scripts/build-release` makes them.
public func builtExecutable(_ name: String) -> String {
    if let shipped = ProcessInfo.processInfo.environment["AKVFS_SHIPPED_DIR"], !shipped.isEmpty {
        let path = URL(fileURLWithPath: shipped).appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return buildDirectory.appendingPathComponent(name).path
}

/// A file of this repository (`docs/semantics.md`), found from where this source file lies in it.
public func repositoryFile(_ path: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(path)
}
