import FoundationEssentials
import Logging

/// The logging setup shared by both executables.
public enum LogSetup {
    /// Logs go to stderr (stdout carries command output); level from AKVFS_LOG_LEVEL (default warning
    /// for commands, overridden by daemons).
    public static func bootstrap(defaultLevel: Logger.Level = .warning) {
        let level =
            ProcessInfo.processInfo.environment["AKVFS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
