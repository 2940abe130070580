/// A complete HTTP/1.1 response from the daemon.
struct HTTPResponse {
    let status: Int
    let reason: String
    /// Header fields in arrival order, names as sent.
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The first value of the header `name`, compared case-insensitively.
    func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}
