extension ConfigurationKey {
    /// The configuration reference as man(7) source, one `.SS` per table and a `.TP` per key: the
    /// body of webhook-tokend.toml(5), kept equal to this by a test (ManualPageTests), as the
    /// README's reference is to ``referenceMarkdown()``.
    public static func referenceRoff() -> String {
        var text = ""
        for table in Table.allCases {
            let heading = table.isArray ? "[[\(table.rawValue)]]" : "[\(table.rawValue)]"
            text += ".SS \(heading)\n\(roffLine(table.summary.capitalizingFirstLetter)).\n"
            if table.isPerProfile {
                text += "Also per profile, as \\fB[profiles.\\fINAME\\fB.\(table.rawValue)]\\fR.\n"
            }
            for key in keys(of: table) {
                text += ".TP\n.B \(key.name)\n\(roffLine(key.summary))\n"
                if let value = key.defaultValue {
                    text += "Default:\n.BR \(roffQuoted(value)) .\n"
                }
            }
        }
        return text
    }

    /// Text as one roff input line: backslashes escaped, and no leading `.` or `'`, which would
    /// make it a request.
    private static func roffLine(_ text: String) -> String {
        let escaped = text.replacingBackslashes
        guard let first = escaped.first, first == "." || first == "'" else { return escaped }
        return "\\&" + escaped
    }

    /// An argument of a roff macro: in double quotes, with `"` written as `\(dq`.
    private static func roffQuoted(_ text: String) -> String {
        var result = "\""
        for character in text.replacingBackslashes {
            result += character == "\"" ? "\\(dq" : String(character)
        }
        return result + "\""
    }
}

extension String {
    fileprivate var replacingBackslashes: String {
        var result = ""
        for character in self { result += character == "\\" ? "\\e" : String(character) }
        return result
    }

    fileprivate var capitalizingFirstLetter: String {
        guard let first else { return self }
        return first.uppercased() + dropFirst()
    }
}
