import Synchronization
import WebhookTokenCore
import WebhookTokenEndpoint

/// A token endpoint the test answers by hand: each fetch waits until the test gives its outcome.
final class ScriptedFetcher: TokenFetching {
    private struct State {
        var waiting: [CheckedContinuation<Result<IssuedToken, FetchFailure>, Never>] = []
        var calls = 0
    }

    private let state = Mutex(State())

    /// Fetches started so far.
    var calls: Int { state.withLock { $0.calls } }
    /// Fetches waiting for an answer.
    var pending: Int { state.withLock { $0.waiting.count } }

    func fetch(_ request: TokenRequest, scope: String) async -> Result<IssuedToken, FetchFailure> {
        await withCheckedContinuation { continuation in
            state.withLock {
                $0.calls += 1
                $0.waiting.append(continuation)
            }
        }
    }

    /// Answers the oldest fetch in flight; returns whether there was one.
    @discardableResult
    func answer(_ result: Result<IssuedToken, FetchFailure>) -> Bool {
        let continuation = state.withLock { state in state.waiting.isEmpty ? nil : state.waiting.removeFirst() }
        continuation?.resume(returning: result)
        return continuation != nil
    }
}
