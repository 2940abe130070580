import Foundation
import TokenEndpointEmulator

/// Polls the daemon's socket continuously from its own thread and checks every answer against
/// what the endpoint really issued: a served token must be one the endpoint issued and must not
/// be past its expiry at the moment it was received.
final class TokenAuditor: @unchecked Sendable {
    struct Report {
        var served = 0
        var refused = 0
        var errors = 0
        var errorSamples: [String] = []
        /// Tokens served that the endpoint never issued, or served after their expiry.
        var violations: [String] = []
        /// When each answer came, and whether it was a token.
        var timeline: [(at: ContinuousClock.Instant, token: String?)] = []

        /// The first instant after `instant` at which a token was served.
        func firstServed(after instant: ContinuousClock.Instant) -> ContinuousClock.Instant? {
            timeline.first { $0.at > instant && $0.token != nil }?.at
        }
    }

    private let lock = NSLock()
    private var report = Report()
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(
        socketPath: String, emulator: TokenEndpointEmulator, path: String = "/v1/token",
        interval: Duration = .milliseconds(15)
    ) {
        let thread = Thread { [self] in
            while self.isRunning {
                var failure: String?
                let result: SocketConnection.Response?
                do {
                    result = try socketRequest(socketPath, "GET", "\(path)?format=raw")
                } catch {
                    result = nil
                    failure = "\(error)"
                }
                let now = ContinuousClock.now
                self.lock.lock()
                switch result?.status {
                case 200?:
                    let token = result!.body
                    self.report.served += 1
                    self.report.timeline.append((now, token))
                    if let record = emulator.issuedTokens.first(where: { $0.token == token }) {
                        if now >= record.expiresAt {
                            self.report.violations.append(
                                "token \(token.prefix(6))… served \(record.expiresAt.duration(to: now)) after its expiry"
                            )
                        }
                    } else {
                        self.report.violations.append("served a token the endpoint never issued")
                    }
                case 503?:
                    self.report.refused += 1
                    self.report.timeline.append((now, nil))
                default:
                    self.report.errors += 1
                    if self.report.errorSamples.count < 5 {
                        self.report.errorSamples.append(failure ?? "HTTP \(result?.status ?? 0): \(result?.body ?? "")")
                    }
                }
                self.lock.unlock()
                Thread.sleep(forTimeInterval: interval.seconds)
            }
            self.finished.signal()
        }
        thread.start()
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Stops the polling and waits for its last request, off the cooperative pool: that request
    /// can take as long as the daemon takes to answer.
    func stop() async -> Report {
        lock.withLock { running = false }
        await onOwnThread { self.finished.wait() }
        return lock.withLock { report }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
