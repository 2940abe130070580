/// Parses the head of an HTTP/1.x response from raw bytes (no chunked encoding: the daemon always
/// sends Content-Length).
enum HTTPResponseParser {
    /// Heads larger than this are treated as garbage rather than waited for.
    static let maximumHeadBytes = 16 * 1024

    struct ParseError: Error {
        let reason: String

        static func malformed(_ reason: String) -> ParseError { ParseError(reason: reason) }
    }

    /// Parses the head at the start of `buffer`; returns nil while the blank line that ends it has
    /// not arrived yet. Accepts CRLF and bare LF line ends.
    static func parseHead(_ buffer: [UInt8]) throws(ParseError) -> HTTPResponseHead? {
        guard let (headEnd, byteCount) = findEndOfHead(buffer) else {
            if buffer.count > maximumHeadBytes {
                throw .malformed("no end of the response headers within \(maximumHeadBytes) bytes")
            }
            if buffer.count >= 5 && !buffer.starts(with: Array("HTTP/".utf8)) {
                throw .malformed("it does not start with an HTTP status line")
            }
            return nil
        }

        var lines = buffer[..<headEnd].split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        let statusLine = lines.removeFirst()
        let (status, reason) = try parseStatusLine(statusLine)

        var headers: [(name: String, value: String)] = []
        var contentLength: Int?
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw .malformed("header line without a colon")
            }
            let name = String(line[..<colon])
            let value = trimmed(line[line.index(after: colon)...])
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else {
                throw .malformed("invalid header name")
            }
            headers.append((name: name, value: value))

            switch name.lowercased() {
            case "content-length":
                guard !value.isEmpty, value.utf8.count <= 12, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let length = Int(value)
                else {
                    throw .malformed("invalid Content-Length '\(value)'")
                }
                if let contentLength, contentLength != length {
                    throw .malformed("conflicting Content-Length headers")
                }
                contentLength = length
            case "transfer-encoding":
                throw .malformed("unsupported Transfer-Encoding '\(value)'")
            default:
                break
            }
        }
        // Responses that never have a body (RFC 9112 section 6.3).
        if status == 204 || status == 304 || (100..<200).contains(status) {
            contentLength = 0
        }
        return HTTPResponseHead(
            status: status, reason: reason, headers: headers, contentLength: contentLength, byteCount: byteCount)
    }

    /// Returns the index of the line feed ending the last header line and the total head length.
    private static func findEndOfHead(_ buffer: [UInt8]) -> (Int, Int)? {
        var index = 0
        while let lineFeed = buffer[index...].firstIndex(of: 0x0A) {
            let next = lineFeed + 1
            if next < buffer.count && buffer[next] == 0x0A {
                return (lineFeed, next + 1)
            }
            if next + 1 < buffer.count && buffer[next] == 0x0D && buffer[next + 1] == 0x0A {
                return (lineFeed, next + 2)
            }
            index = next
        }
        return nil
    }

    private static func parseStatusLine(_ line: String) throws(ParseError) -> (Int, String) {
        // "HTTP/1.1 200 OK"
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0",
            parts[1].utf8.count == 3, parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let status = Int(parts[1]), status >= 100
        else {
            throw .malformed("invalid status line '\(DisplayText.sanitized(line, limit: 80))'")
        }
        return (status, parts.count > 2 ? String(parts[2]) : "")
    }

    private static func trimmed(_ text: Substring) -> String {
        var text = text
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
