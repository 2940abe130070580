/// Text that came from the token endpoint, made safe to store, log and show.
///
/// The endpoint is not trusted with anything but a token's lifetime: its `scope`,
/// `error_description`, a bad `token_type` and the like are quoted into logs, systemd's `STATUS=`,
/// `/v1/status` and the client's output. A hostile or broken endpoint could otherwise print
/// terminal escape sequences there, forge a separate log line with a newline, or fill the journal.
/// So such text is bounded and reduced to printable ASCII *before it is stored*; everything else is
/// replaced visibly (`\x1b`, `\u{e9}`), never silently, so an operator still sees that it was there.
public enum UntrustedText {
    /// The default bound, in characters of the sanitised text, before `...` is appended.
    public static let defaultLimit = 200

    /// `text` with every character outside printable ASCII (0x20–0x7E) escaped, cut at `limit`.
    public static func sanitize(_ text: some StringProtocol, limit: Int = defaultLimit) -> String {
        var result = ""
        result.reserveCapacity(min(text.utf8.count, limit) + 3)
        var length = 0
        for scalar in text.unicodeScalars {
            let piece: String
            switch scalar.value {
            case 0x20...0x7E:
                piece = String(Character(scalar))
            case 0..<0x80:
                piece = "\\x" + hex(scalar.value, digits: 2)
            default:
                piece = "\\u{" + hex(scalar.value, digits: 1) + "}"
            }
            if length + piece.utf8.count > limit {
                result += "..."
                return result
            }
            result += piece
            length += piece.utf8.count
        }
        return result
    }

    /// Whether `text` would pass ``sanitize(_:limit:)`` unchanged.
    public static func isClean(_ text: some StringProtocol, limit: Int = defaultLimit) -> Bool {
        text.utf8.count <= limit && text.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
