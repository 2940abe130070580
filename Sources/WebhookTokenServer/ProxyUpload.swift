import NIOCore
import Synchronization

/// The body of a request larger than `max_request_body`, passed upstream as it arrives rather
/// than kept — so such a request cannot be replayed after a 401/403.
///
/// Backpressure: once more than ``highWater`` bytes wait for the upstream, the consumer's
/// connection stops being read (`autoRead` off) until they have gone out, so a fast consumer and
/// a slow upstream hold at most about that much in the daemon.
final class ProxyUpload: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    static let highWater = 256 * 1024

    struct ConsumerGone: Error {}

    private struct State {
        var chunks: [ByteBuffer] = []
        var head = 0
        var bytes = 0
        var finished = false
        var failed = false
        var paused = false
        var waiter: CheckedContinuation<ByteBuffer?, any Error>?
    }

    private let state = Mutex(State())
    private let channel: any Channel

    init(channel: any Channel) {
        self.channel = channel
    }

    /// More of the body (on the event loop).
    func append(_ chunk: ByteBuffer) {
        let (waiter, pause) = state.withLock { state -> (CheckedContinuation<ByteBuffer?, any Error>?, Bool) in
            if let waiter = state.waiter {
                state.waiter = nil
                return (waiter, false)
            }
            state.chunks.append(chunk)
            state.bytes += chunk.readableBytes
            guard state.bytes > Self.highWater, !state.paused else { return (nil, false) }
            state.paused = true
            return (nil, true)
        }
        waiter?.resume(returning: chunk)
        if pause { channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
    }

    /// The body is complete (`fail`: it never will be, the consumer went away).
    func finish(failed: Bool = false) {
        let waiter = state.withLock { state -> CheckedContinuation<ByteBuffer?, any Error>? in
            if failed { state.failed = true } else { state.finished = true }
            defer { state.waiter = nil }
            return state.waiter
        }
        if failed { waiter?.resume(throwing: ConsumerGone()) } else { waiter?.resume(returning: nil) }
    }

    private enum Next {
        case chunk(ByteBuffer, resume: Bool)
        case end
        case gone
        case wait
    }

    func next() async throws -> ByteBuffer? {
        try await withCheckedThrowingContinuation { continuation in
            let next = state.withLock { state -> Next in
                if state.head < state.chunks.count {
                    let chunk = state.chunks[state.head]
                    state.head += 1
                    if state.head == state.chunks.count { (state.chunks, state.head) = ([], 0) }
                    state.bytes -= chunk.readableBytes
                    let resume = state.paused && state.bytes <= Self.highWater / 2
                    if resume { state.paused = false }
                    return .chunk(chunk, resume: resume)
                }
                if state.failed { return .gone }
                if state.finished { return .end }
                state.waiter = continuation
                return .wait
            }
            switch next {
            case .chunk(let chunk, let resume):
                if resume {
                    let channel = self.channel
                    channel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { channel.read() }
                }
                continuation.resume(returning: chunk)
            case .end: continuation.resume(returning: nil)
            case .gone: continuation.resume(throwing: ConsumerGone())
            case .wait: break
            }
        }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let upload: ProxyUpload
        func next() async throws -> ByteBuffer? { try await upload.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(upload: self) }
}
