/// Minimal JSON text production for the daemon's responses.
///
/// Responses are built from a handful of known fields, most of which change only when a token is
/// renewed; writing them directly (rather than through an encoder) lets the server pre-render them
/// once per token instead of once per request.
public enum JSONText {
    /// Escapes a string for use between double quotes in JSON (and in TOML basic strings, whose
    /// escapes are a superset for the characters escaped here).
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20 || c.value == 0x7F:
                let hex = String(c.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `"text"` with escaping.
    public static func string(_ text: String) -> String {
        "\"" + escaped(text) + "\""
    }

    /// `"text"` or `null`.
    public static func optionalString(_ text: String?) -> String {
        text.map(string) ?? "null"
    }

    /// A JSON object from already-rendered values, in the given order.
    public static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(string($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
}
