import NIOCore
import NIOHTTP1
import WebhookTokenCore
import WebhookTokenProtocol

/// Every error the socket server sends, built in one place: a JSON body
/// `{"error": "<code>", "detail": "<sentence>"}` (escaped), the code repeated in the
/// `X-Webhook-Tokend-Error` header, `Cache-Control: no-store`.
enum ErrorResponse {
    static func body(code: ErrorCode, detail: String) -> String {
        JSONText.object([("error", JSONText.string(code.rawValue)), ("detail", JSONText.string(detail))]) + "\n"
    }

    /// The headers of an error answer (without `Content-Length` and `Connection`).
    static func headers(code: ErrorCode, extra: [(String, String)] = []) -> [(String, String)] {
        [("Content-Type", "application/json"), ("Cache-Control", "no-store"), (ProtocolHeader.error, code.rawValue)]
            + extra
    }

    /// A whole HTTP/1.1 response that closes the connection, for the handlers that sit before
    /// the HTTP codec or beside it (connection admission, the header timeout).
    static func raw(
        status: HTTPResponseStatus, code: ErrorCode, detail: String, extraHeaders: [(String, String)] = []
    ) -> ByteBuffer {
        let body = body(code: code, detail: detail)
        var text = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        for (name, value) in headers(code: code, extra: extraHeaders) { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        return ByteBuffer(string: text)
    }
}

extension ChannelHandlerContext {
    /// Writes the last thing this connection will carry, then closes it once written.
    func writeThenClose(_ data: NIOAny) {
        let loopBound = NIOLoopBound(self, eventLoop: eventLoop)
        writeAndFlush(data).whenComplete { _ in
            loopBound.value.close(promise: nil)
        }
    }
}
