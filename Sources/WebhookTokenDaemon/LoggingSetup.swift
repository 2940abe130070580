import Logging
import WebhookTokenSystemd

/// Chooses where log lines go: native journal entries when stderr is the journal, plain lines on
/// stderr otherwise. Called once, by the executable, before anything logs.
public enum LoggingSetup {
    public static func bootstrap(level: String) {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        let journal = JournalLogHandler.stderrIsJournal()
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                journal ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }
}
