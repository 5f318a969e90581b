#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// One executable, two builds (docs/fuzzing.md):
// - normal builds: `akvfs-fuzz <target> <file or directory>…` replays inputs through a target and
//   exits 1 if any breaks an invariant, so the corpora run as regression tests;
// - `-DFUZZING -sanitize=fuzzer` builds: libFuzzer drives the target named by AKVFS_FUZZ_TARGET,
//   taking libFuzzer's usual arguments.
//
// SwiftPM links executables with `--defsym main=<module>_main`, so libFuzzer's own `main` is
// never the entry point (and `-parse-as-library` would leave that symbol undefined). This `main`
// hands over to libFuzzer through LLVMFuzzerRunDriver instead; LLVMFuzzerTestOneInput is still
// defined because libFuzzer's unused `main` refers to it.
@main
struct FuzzEntry {
    static func main() {
        #if FUZZING
            exit(runFuzzer())
        #else
            exit(Replayer.run(Array(CommandLine.arguments.dropFirst())))
        #endif
    }
}

#if FUZZING
    // swift-format-ignore: AlwaysUseLowerCamelCase
    // libFuzzer's C entry points keep their C names.
    @_silgen_name("LLVMFuzzerRunDriver")
    private func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// The target this process fuzzes, chosen once before libFuzzer starts.
    nonisolated(unsafe) private var selected: FuzzTarget?

    private func runFuzzer() -> CInt {
        let name = getenv("AKVFS_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        if name == "list" {
            for target in FuzzTarget.all { print(target.name) }
            return 0
        }
        guard let target = FuzzTarget.named(name) else {
            print(
                "akvfs-fuzz: set AKVFS_FUZZ_TARGET to one of: \(FuzzTarget.all.map(\.name).joined(separator: " ")) (or list)"
            )
            return 2
        }
        selected = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput)
    }

    // swift-format-ignore: AlwaysUseLowerCamelCase
    @_cdecl("LLVMFuzzerTestOneInput")
    func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            try selected?.run(input)
        } catch {
            // Crashing is how libFuzzer learns of a failure: it saves the input as crash-<sha1>.
            print("akvfs-fuzz: invariant failed in \(selected?.name ?? "?"): \(error.message)")
            fflush(nil)
            abort()
        }
        return 0
    }
#endif

/// The normal build's entry: replays files through a target.
enum Replayer {
    static func run(_ arguments: [String]) -> Int32 {
        guard let name = arguments.first, let target = FuzzTarget.named(name) else {
            print("usage: akvfs-fuzz <target> <file or directory>…   (replays inputs; exits 1 on a failed invariant)")
            print("targets:")
            for target in FuzzTarget.all { print("  \(target.name.padding(16))\(target.summary)") }
            return 2
        }
        var files: [String] = []
        for path in arguments.dropFirst() {
            guard let found = inputFiles(at: path) else {
                print("akvfs-fuzz: cannot read \(path)")
                return 2
            }
            files += found
        }
        var failures = 0
        for file in files {
            guard let input = readFile(file) else {
                print("akvfs-fuzz: cannot read \(file)")
                return 2
            }
            do {
                try target.run(input)
            } catch {
                failures += 1
                print("FAIL \(file): \(error.message)")
            }
        }
        print("akvfs-fuzz \(target.name): \(files.count - failures) passed, \(failures) failed")
        return failures == 0 ? 0 : 1
    }

    /// `path` itself, or the regular files directly inside it (a corpus directory), sorted.
    private static func inputFiles(at path: String) -> [String]? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        guard status.st_mode & S_IFMT == S_IFDIR else { return [path] }
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if !name.hasPrefix("."), entry.pointee.d_type == DT_REG { names.append(name) }
        }
        return names.sorted().map { "\(path)/\($0)" }
    }

    private static func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[..<count]
            if count < chunk.count { return ferror(file) == 0 ? bytes : nil }
        }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
