import Logging
import WebhookTokenCore
import WebhookTokenServer
import WebhookTokenSystemd

/// Starts the `[proxy]` socket of every profile that has one: adopted from systemd when a passed
/// socket is bound to its path (a second `ListenStream=`), bound here otherwise.
enum ProxyStartup {
    struct Failure: Error, CustomStringConvertible {
        let profile: String
        let path: String
        let underlying: any Error
        var description: String { "cannot start the proxy of the profile \(profile) on \(path): \(underlying)" }
    }

    static func start(
        _ configuration: Configuration, passed: [CInt], groupID: UInt32?, serving: any TokenServing,
        limits: TokenSocketServer.Limits, access: SharedAccessRules, connections: ConnectionCounter,
        metrics: DaemonMetrics, logger: Logger
    ) async throws(Failure) -> [ProxySocketServer] {
        var started: [ProxySocketServer] = []
        for profile in configuration.profiles {
            guard let proxy = profile.proxy else { continue }
            let listener: TokenSocketServer.Listener
            if let fd = SocketActivation.descriptor(boundTo: proxy.socketPath, among: passed) {
                listener = .descriptor(fd)
            } else {
                listener = .path(proxy.socketPath, mode: configuration.socket.mode, groupID: groupID)
            }
            do {
                let upstream = try ProxyUpstream(proxy: proxy, caFile: profile.endpoint.caFile)
                started.append(
                    try await ProxySocketServer.start(
                        profile: profile.name, proxy: proxy, upstream: upstream, listener: listener, serving: serving,
                        limits: limits, access: access, connections: connections, serverObserver: metrics,
                        observer: metrics, logger: logger))
            } catch {
                for server in started { await server.shutdown() }
                throw Failure(profile: profile.name, path: proxy.socketPath, underlying: error)
            }
            logger.info(
                "Proxying",
                metadata: [
                    "profile": "\(profile.name)", "socket": "\(proxy.socketPath)",
                    "upstream": "\(proxy.upstreamOrigin)",
                ])
        }
        return started
    }
}
