import FoundationEssentials
import HTTPTransport
import Logging

/// The logging setup shared by both executables.
public enum LogSetup {
    /// Logs go to stderr (stdout carries command output); level from AKVFS_LOG_LEVEL (default warning
    /// for commands, overridden by daemons).
    public static func bootstrap(defaultLevel: Logger.Level = .warning) {
        let setting = ProcessInfo.processInfo.environment["AKVFS_LOG_LEVEL"]
        let level = setting.flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
        LoggingSystem.bootstrap { label in
            var handler = EscapingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
        if let setting, Logger.Level(rawValue: setting) == nil {
            Logger(label: "akvfs").warning(
                "AKVFS_LOG_LEVEL=\(setting) names no log level (\(levels.joined(separator: ", "))); logging at \(level.rawValue)"
            )
        }
    }

    /// The names AKVFS_LOG_LEVEL and the mount option log_level take.
    public static let levels = Logger.Level.allCases.map(\.rawValue)
}

/// One line per event, whatever its text carries. Messages quote what servers, tokens and requests
/// carried, so a newline or a terminal escape in them is written as an escape (`OutsideText`)
/// rather than forging a log line or driving the terminal of whoever reads the log.
struct EscapingLogHandler: LogHandler {
    private var base: StreamLogHandler

    init(_ base: StreamLogHandler) {
        self.base = base
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(OutsideText.escaped(event.message.description, limit: .max))"
        event.metadata = event.metadata?.mapValues(Self.escaped)
        base.log(event: event)
    }

    private static func escaped(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(OutsideText.escaped(text, limit: .max))
        case .stringConvertible(let convertible): .string(OutsideText.escaped(convertible.description, limit: .max))
        case .dictionary(let dictionary): .dictionary(dictionary.mapValues(escaped))
        case .array(let array): .array(array.map(escaped))
        }
    }
}
