/// Reads one top-level string member out of a JSON object without a JSON library.
///
/// Tolerant by design: it only needs the `error` and `detail` members of the daemon's error
/// documents, so anything it does not understand yields nil instead of an error.
struct JSONStringField {
    private let bytes: [UInt8]
    private var index = 0

    /// The value of the top-level member `key` of the object in `bytes`, if it is a string.
    static func value(of key: String, in bytes: [UInt8]) -> String? {
        var scanner = JSONStringField(bytes: bytes)
        return scanner.findMember(Array(key.utf8))
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private mutating func findMember(_ key: [UInt8]) -> String? {
        skipWhitespace()
        guard consume(0x7B) else { return nil }  // {
        while true {
            skipWhitespace()
            guard peek() == 0x22, let name = readString() else { return nil }
            skipWhitespace()
            guard consume(0x3A) else { return nil }  // :
            skipWhitespace()
            if peek() == 0x22 {
                guard let value = readString() else { return nil }
                if name == key { return String(decoding: value, as: UTF8.self) }
            } else {
                guard skipValue() else { return nil }
            }
            skipWhitespace()
            guard consume(0x2C) else { return nil }  // , (or the closing brace: not found)
        }
    }

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard peek() == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
            index += 1
        }
    }

    /// Skips a number, literal, object or array; strings inside are skipped as strings.
    private mutating func skipValue() -> Bool {
        var depth = 0
        while let byte = peek() {
            switch byte {
            case 0x22:
                guard readString() != nil else { return false }
            case 0x7B, 0x5B:  // { [
                depth += 1
                index += 1
            case 0x7D, 0x5D:  // } ]
                if depth == 0 { return true }
                depth -= 1
                index += 1
                if depth == 0 { return true }
            case 0x2C:  // ,
                if depth == 0 { return true }
                index += 1
            default:
                index += 1
            }
        }
        return depth == 0
    }

    /// Reads a string starting at the opening quote and returns its decoded UTF-8 bytes.
    private mutating func readString() -> [UInt8]? {
        index += 1  // opening quote
        var result: [UInt8] = []
        while let byte = peek() {
            index += 1
            switch byte {
            case 0x22:
                return result
            case 0x5C:
                guard let escaped = peek() else { return nil }
                index += 1
                switch escaped {
                case 0x62: result.append(0x08)  // \b
                case 0x66: result.append(0x0C)  // \f
                case 0x6E: result.append(0x0A)  // \n
                case 0x72: result.append(0x0D)  // \r
                case 0x74: result.append(0x09)  // \t
                case 0x75:  // \uXXXX, with surrogate pairs
                    guard var code = readHex4() else { return nil }
                    if (0xD800..<0xDC00).contains(code), peek() == 0x5C, index + 1 < bytes.count,
                        bytes[index + 1] == 0x75
                    {
                        let saved = index
                        index += 2
                        if let low = readHex4(), (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = saved
                        }
                    }
                    result.append(contentsOf: Array(String(Unicode.Scalar(code) ?? "\u{FFFD}").utf8))
                default: result.append(escaped)  // \" \\ \/ and anything unknown
                }
            default:
                result.append(byte)
            }
        }
        return nil
    }

    private mutating func readHex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case 0x30...0x39: digit = byte - 0x30
            case 0x41...0x46: digit = byte - 0x41 + 10
            case 0x61...0x66: digit = byte - 0x61 + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
