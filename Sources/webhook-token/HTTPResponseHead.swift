/// The status line and header fields of a response, before its body has arrived.
struct HTTPResponseHead {
    let status: Int
    let reason: String
    let headers: [(name: String, value: String)]
    /// The declared body length, or nil if the body runs until the connection closes.
    let contentLength: Int?
    /// How many bytes of the buffer the head occupied, including the blank line.
    let byteCount: Int
}
