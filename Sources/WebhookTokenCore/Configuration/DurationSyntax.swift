/// Durations in the configuration file: a number with a unit, or several (`"90s"`, `"1m30s"`,
/// `"500ms"`, `"2h"`). A bare number is refused: `timeout = 30` could mean seconds or
/// milliseconds, and a guess is how outages start.
public enum DurationSyntax {
    public static let expected = "a duration such as \"30s\", \"5m\", \"1h30m\" or \"500ms\""

    /// The longest duration accepted: ten years, far beyond any sensible setting. Without a bound,
    /// a typo such as `"99999999999999999999h"` makes `Duration.seconds(_:)` trap on overflow, and
    /// a configuration mistake would crash the daemon instead of being reported.
    public static let maximumSeconds: Double = 10 * 365 * 86_400

    public static func parse(_ text: String) -> Duration? {
        var total = Duration.zero
        var rest = Substring(text.trimmingSpaces)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && ($0.isNumber || $0 == ".") })
            guard !digits.isEmpty, let value = Double(digits), value.isFinite else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix(while: { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: return nil
            }
            guard value * scale <= maximumSeconds - total.seconds else { return nil }
            total += .seconds(value * scale)
        }
        return total
    }

    /// The shortest readable form: `"1h30m"`, `"45s"`, `"1.5s"`, `"250ms"`.
    ///
    /// A fraction of a second is written exactly, from the duration's integer components, so that
    /// the text parses back to the duration (as `--check-config` output must): rounding to whole
    /// milliseconds rendered `"2.5ms"` as `"3ms"` and `"0.0004s"` as `"0ms"`, which a timeout then
    /// refuses; and `Double`'s description may use an exponent (`"1e-05s"`), which is not duration
    /// syntax. Found by the property-based fuzz tests (`ConfigurationParserFuzzTests`).
    public static func format(_ duration: Duration) -> String {
        let totalSeconds = duration.seconds
        let (wholeSeconds, attoseconds) = duration.components
        if duration > .zero && attoseconds != 0 {
            let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
            if wholeSeconds == 0 && attoseconds % attosecondsPerMillisecond == 0 {
                return "\(attoseconds / attosecondsPerMillisecond)ms"
            }
            var fraction = String(attoseconds)
            fraction = String(repeating: "0", count: 18 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            return "\(wholeSeconds).\(fraction)s"
        }
        if totalSeconds != totalSeconds.rounded(.down) {
            return "\(totalSeconds)s"
        }
        var remaining = Int(totalSeconds)
        var text = ""
        if remaining >= 3600 {
            text += "\(remaining / 3600)h"
            remaining %= 3600
        }
        if remaining >= 60 {
            text += "\(remaining / 60)m"
            remaining %= 60
        }
        if remaining > 0 || text.isEmpty {
            text += "\(remaining)s"
        }
        return text
    }
}

extension String {
    var trimmingSpaces: Substring {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice = slice.dropFirst() }
        while slice.last?.isWhitespace == true { slice = slice.dropLast() }
        return slice
    }
}
