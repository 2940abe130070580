import Logging
import NIOCore
import NIOHTTP1
import WebhookTokenCore
import WebhookTokenProtocol

/// Decides, the moment a connection is accepted, whether it is served: by the kernel's word on
/// who connected (`SO_PEERCRED`), against the connection limits — in all, and per user — and the
/// `[access]` rules: a peer that may use no profile is refused without learning which exist. A connection that is not served is answered at once and closed, so that a
/// refused or over-limit peer holds nothing open while it idles.
struct ConnectionAdmission: Sendable {
    let limits: TokenSocketServer.Limits
    let access: SharedAccessRules
    /// The profile whose `[access]` rule alone decides (a proxy socket); `nil`: any profile's (the
    /// token socket).
    var profile: String? = nil
    let deniedPeers: DeniedPeerLog
    let connections: ConnectionCounter
    let observer: any ServerObserver
    let logger: Logger

    /// Admits `channel` and then builds its serving pipeline with `serve`, or installs a
    /// ``ConnectionRejector``. `serve` gets the peer, `nil` on a socket without credentials (a
    /// test's TCP socket), which is served only when the rule lets everyone in.
    func admit(
        _ channel: any Channel, serve: @escaping @Sendable (PeerCredentials?) throws -> Void
    ) -> EventLoopFuture<Void> {
        let peer = PeerCredentialsReader.read(from: channel, withGroups: access.namesGroups)
        let uid = peer?.uid ?? UInt32.max
        let (total, user) = connections.open(uid: uid)
        channel.closeFuture.whenComplete { _ in connections.closed(uid: uid) }
        return channel.eventLoop.makeCompletedFuture {
            if let rejection = rejection(peer: peer, total: total, user: user) {
                try channel.pipeline.syncOperations.addHandler(ConnectionRejector(response: rejection))
            } else {
                try serve(peer)
            }
        }
    }

    /// The answer for a connection that is not to be served, or `nil` to serve it.
    private func rejection(peer: PeerCredentials?, total: Int, user: Int) -> ByteBuffer? {
        if !(profile.map { access.permits(peer, profile: $0) } ?? access.admits(peer)) {
            deniedPeers.record(peer: peer, logger: logger)
            observer.peerDenied()
            observer.requestCompleted(route: .other, status: 403, duration: nil)
            return ErrorResponse.raw(
                status: .forbidden, code: .peerNotAllowed, detail: AccessRefusal.detail(peer: peer))
        }
        if total > limits.maximumConnections {
            observer.requestCompleted(route: .other, status: 503, duration: nil)
            return ErrorResponse.raw(
                status: .serviceUnavailable, code: .tooManyConnections,
                detail: "the daemon serves \(limits.maximumConnections) connections, its limit; retry shortly",
                extraHeaders: [("Retry-After", "1")])
        }
        if user > limits.maximumConnectionsPerUser {
            observer.requestCompleted(route: .other, status: 503, duration: nil)
            return ErrorResponse.raw(
                status: .serviceUnavailable, code: .tooManyConnections,
                detail: "uid \(peer?.uid ?? 0) holds \(limits.maximumConnectionsPerUser) connections, "
                    + "the most one user may (max_connections_per_user); close idle ones or retry shortly",
                extraHeaders: [("Retry-After", "1")])
        }
        return nil
    }
}

/// The words of a `403 peer_not_allowed`, the same at admission and after a reload.
enum AccessRefusal {
    static func detail(peer: PeerCredentials?) -> String {
        "\(peer.map { "uid \($0.uid)" } ?? "this peer") is not allowed to use this socket; "
            + "see [access] in the daemon's configuration"
    }
}
