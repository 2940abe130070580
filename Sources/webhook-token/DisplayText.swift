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

    /// "5" rather than "5.0"; "0.5" stays.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() && value < 1e9 ? String(Int(value)) : String(value)
    }
}
