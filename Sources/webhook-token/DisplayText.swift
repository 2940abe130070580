/// Makes text that came from the socket safe to show on a terminal.
enum DisplayText {
    /// Replaces control characters (which could move the cursor or recolour the terminal) with
    /// spaces and cuts the text to `limit` characters.
    static func sanitized(_ text: String, limit: Int = 300) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if result.count >= limit {
                result.append(contentsOf: "...".unicodeScalars)
                break
            }
            let value = scalar.value
            result.append(value < 0x20 || (0x7F...0x9F).contains(value) ? " " : scalar)
        }
        return String(result)
    }

    /// Daemon output for a terminal (`status`, `--json`): lines and tabs stay; every other control
    /// character — C0, DEL, C1, which could move the cursor, recolour the terminal or forge a line —
    /// is shown escaped (`\x1b`), and invalid UTF-8 as U+FFFD. The daemon already bounds what the
    /// endpoint said; this is the second line of defence, against a daemon (or an impostor on the
    /// socket) that does not.
    static func filteredOutput(_ bytes: [UInt8]) -> [UInt8] {
        var result = String.UnicodeScalarView()
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            let value = scalar.value
            if value == 0x0A || value == 0x09 || (value >= 0x20 && value != 0x7F && !(0x80...0x9F).contains(value)) {
                result.append(scalar)
            } else {
                let hex = String(value, radix: 16)
                result.append(contentsOf: ("\\x" + (hex.count < 2 ? "0" + hex : hex)).unicodeScalars)
            }
        }
        return Array(String(result).utf8)
    }

    /// "5" rather than "5.0"; "0.5" stays.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() && value < 1e9 ? String(Int(value)) : String(value)
    }
}
