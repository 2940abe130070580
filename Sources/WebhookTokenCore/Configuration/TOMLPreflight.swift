/// A scan of the configuration text before it reaches the TOML library, refusing the inputs that
/// the library cannot be trusted with. Found by the property-based fuzz tests
/// (`ConfigurationParserFuzzTests`):
///
/// - A NUL character: TOMLKit hands the text to toml++ as a C string, so a NUL silently cut the file
///   short: everything after it was ignored, and a file with a stray NUL could be accepted without
///   its later tables. TOML forbids a raw NUL anywhere, so it is an error.
/// - Inputs on which toml++ 3.4.0 (bundled by TOMLKit) fails an internal assertion instead of
///   reporting an error: a table header whose name starts with a character that cannot start a key
///   (`[é`, `[.a]`, `[=`, `[[`, followed by a line break…), a `}` inside an array (`a = [}`,
///   `a = [1, }`), and U+0085, U+2028 or U+2029 where a value or key is expected. The assertion
///   aborts a debug build; in a release build it is an optimiser assumption, so behaviour is
///   undefined. All of these are invalid TOML; here they become an ordinary syntax error with a line.
///
/// The scan knows only what it needs: strings (basic, literal and multi-line), comments, table
/// headers and the nesting of `[`/`{` in values. Outside strings and comments TOML allows only ASCII,
/// so any other character there is refused as well (a byte-order mark at the very start excepted).
/// It never refuses valid TOML; everything it lets through is still parsed and checked by toml++.
enum TOMLPreflight {
    /// The first problem found: its 1-based line and a message; `nil` if the text may be parsed.
    static func problem(in text: String) -> (line: Int, message: String)? {
        let scalars = Array(text.unicodeScalars)
        var line = 1
        var index = 0
        /// Open `[` and `{` of values (not of table headers).
        var nesting: [Unicode.Scalar] = []
        /// Whether only blanks precede `index` on its line.
        var atLineStart = true

        func at(_ offset: Int) -> Unicode.Scalar? {
            index + offset < scalars.count ? scalars[index + offset] : nil
        }
        func isKeyStart(_ scalar: Unicode.Scalar?) -> Bool {
            guard let scalar, scalar.isASCII else { return false }
            let c = Character(scalar)
            return c.isLetter || c.isNumber || c == "_" || c == "-" || c == "\"" || c == "'"
        }

        if let first = scalars.first, first == "\u{FEFF}" { index = 1 }
        if let nul = scalars.firstIndex(of: "\u{0}") {
            let nulLine = scalars[..<nul].reduce(1) { $1 == "\n" ? $0 + 1 : $0 }
            return (nulLine, "a NUL character (U+0000), which TOML does not allow anywhere")
        }
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\n":
                line += 1
                atLineStart = true
                index += 1
                continue
            case " ", "\t", "\r":
                index += 1
                continue
            case "#":
                while index < scalars.count, scalars[index] != "\n" { index += 1 }
                continue
            case "\"", "'":
                // A string: skip to its end, counting lines; a line break ends a single-line string
                // (an error toml++ reports itself).
                let multiLine = at(1) == scalar && at(2) == scalar
                index += multiLine ? 3 : 1
                while index < scalars.count {
                    let c = scalars[index]
                    if c == "\\" && scalar == "\"" {
                        if at(1) == "\n" { line += 1 }
                        index += 2
                        continue
                    }
                    if c == "\n" {
                        if !multiLine { break }
                        line += 1
                    }
                    if c == scalar && (!multiLine || (at(1) == scalar && at(2) == scalar)) {
                        index += multiLine ? 3 : 1
                        // A multi-line string may end with up to two more quotes.
                        while multiLine, index < scalars.count, scalars[index] == scalar { index += 1 }
                        break
                    }
                    index += 1
                }
                atLineStart = false
                continue
            case "[" where atLineStart && nesting.isEmpty:
                // A table header: its name must start with a key character.
                index += at(1) == "[" ? 2 : 1
                while let c = at(0), c == " " || c == "\t" { index += 1 }
                guard isKeyStart(at(0)) else {
                    return (
                        line,
                        "a table header must start with a key name (letters, digits, '_', '-' or a quoted name) after '['"
                    )
                }
                atLineStart = false
                continue
            case "[", "{":
                nesting.append(scalar)
            case "]":
                if nesting.last == "{" { return (line, "a ']' closes an inline table opened with '{'") }
                if !nesting.isEmpty { nesting.removeLast() }
            case "}":
                if nesting.last == "[" { return (line, "a '}' closes an array opened with '['") }
                if !nesting.isEmpty { nesting.removeLast() }
            case let c where !c.isASCII || (c.value < 0x20 && c != "\t") || c.value == 0x7F:
                return (
                    line, "the character U+\(String(c.value, radix: 16, uppercase: true)) outside a string or comment"
                )
            default:
                break
            }
            atLineStart = false
            index += 1
        }
        return nil
    }
}
