import CSystemd
public import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A swift-log handler writing native journal entries with `sd_journal_sendv`, so that fields such
/// as `MESSAGE_ID`, `TOKEN_FINGERPRINT` and `HTTP_STATUS` are queryable (`journalctl
/// MESSAGE_ID=…`). (`sd_journal_send` is C-variadic and cannot be called from Swift.)
///
/// Metadata keys become journal fields: upper-cased, every character other than a letter or digit
/// turned into `_` (`token.fingerprint` → `TOKEN_FINGERPRINT`).
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String
    private let identifier: String

    public init(label: String, identifier: String = "webhook-tokend") {
        self.label = label
        self.identifier = identifier
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "LOGGER=\(label)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
        ]
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra, uniquingKeysWith: { $1 }) }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append("\(Self.fieldName(key))=\(value)")
        }
        Self.send(fields)
    }

    static func send(_ fields: [String]) {
        var storage = fields.map { Array($0.utf8) }
        let count = storage.count
        storage.withUnsafeMutableBufferPointer { buffers in
            var vectors = [iovec](repeating: iovec(), count: count)
            for index in 0..<count {
                buffers[index].withUnsafeMutableBytes { bytes in
                    vectors[index] = iovec(iov_base: bytes.baseAddress, iov_len: bytes.count)
                }
            }
            // The arrays in `storage` are not moved while `buffers` is borrowed.
            _ = sd_journal_sendv(&vectors, Int32(count))
        }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
        if name.first?.isNumber ?? true { name = "F_" + name }
        return name
    }

    /// Whether stderr is connected to the journal: `JOURNAL_STREAM` (`device:inode`) matches
    /// stderr's own device and inode, as systemd sets it for `StandardError=journal`.
    public static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
