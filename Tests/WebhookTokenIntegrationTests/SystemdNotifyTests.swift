import Foundation
import Testing
import TokenEndpointEmulator

/// The sd_notify protocol as the real daemon speaks it, against a datagram socket the test binds
/// in place of systemd's: `NOTIFY_SOCKET` as a file-system path and as an abstract `@name`.
@Suite("systemd notifications")
struct SystemdNotifyTests {
    @Test(
        "READY=1 (with STATUS=) only after the first token; WATCHDOG=1; RELOADING=1+MONOTONIC_USEC then READY=1 on SIGHUP; STOPPING=1 on SIGTERM",
        arguments: [false, true])
    func notificationSequence(abstract: Bool) async throws {
        let harness = try await DaemonHarness(expiresIn: 3600)
        do {
            try await checkSequence(harness, abstract: abstract)
        } catch {
            print(harness.log())
            await harness.cleanup()
            throw error
        }
        await harness.cleanup()
    }

    private func checkSequence(_ harness: DaemonHarness, abstract: Bool) async throws {
        let address =
            abstract
            ? "@webhook-tokend-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            : harness.directory.file("notify.sock")
        let notify = try NotifySocket(address: address)

        // The endpoint is unavailable at first: status lines, but no READY=1.
        harness.emulator.setBehavior(.respond(status: 503, headers: [], body: #"{"error":"temporarily_unavailable"}"#))
        let process = try await harness.launch(environment: ["NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"])
        let waiting = try await notify.wait(for: "STATUS")
        try await eventually("a STATUS= naming the 503") {
            notify.messages(with: "STATUS").contains { $0["STATUS"]?.contains("503") == true }
        }
        #expect(notify.messages(with: "READY").isEmpty, "READY=1 before the first token")
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 503)

        // The first token: READY=1 and STATUS= in one message, and the token is there.
        harness.emulator.setBehavior(.issue)
        let ready = try await notify.wait(for: "READY")
        #expect(ready.index > waiting.index)
        #expect(ready.fields["READY"] == "1")
        #expect(ready.fields["STATUS"]?.hasPrefix("token valid until ") == true, "\(ready.fields)")
        #expect(try socketRequest(harness.socketPath, "GET", "/v1/token").status == 200)

        // The watchdog is pinged at half of WATCHDOG_USEC.
        try await eventually("WATCHDOG=1 pings") { notify.messages(with: "WATCHDOG").count >= 3 }

        // SIGHUP: RELOADING=1 with the monotonic time now, then READY=1 again.
        kill(process.processIdentifier, SIGHUP)
        let reloading = try await notify.wait(for: "RELOADING", after: ready.index)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nowMicroseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        let sent = try #require(reloading.fields["MONOTONIC_USEC"].flatMap { UInt64($0) }, "\(reloading.fields)")
        #expect(
            sent <= nowMicroseconds && nowMicroseconds - sent < 10_000_000,
            "MONOTONIC_USEC \(sent), now \(nowMicroseconds)")
        let readyAgain = try await notify.wait(for: "READY", after: reloading.index)
        #expect(readyAgain.fields["STATUS"]?.hasPrefix("token valid until ") == true, "\(readyAgain.fields)")

        // SIGTERM: STOPPING=1, and a clean exit.
        #expect(notify.messages(with: "STOPPING").isEmpty)
        #expect(try await harness.stop() == 0)
        _ = try await notify.wait(for: "STOPPING", after: readyAgain.index)
    }

    @Test("a first fetch refused permanently: no READY=1, the endpoint's error in STATUS=, exit 78")
    func permanentFailureStatus() async throws {
        let harness = try await DaemonHarness(expiresIn: 3600)
        do {
            let notify = try NotifySocket(address: harness.directory.file("notify.sock"))
            harness.emulator.setCredentials(clientID: harness.clientID, clientSecret: "another secret")
            try await harness.launch(environment: ["NOTIFY_SOCKET": notify.address], waitForSocket: false)
            #expect(try await harness.waitForExit() == 78)
            #expect(notify.messages(with: "READY").isEmpty)
            let statuses = notify.messages(with: "STATUS").compactMap { $0["STATUS"] }
            #expect(statuses.contains { $0.contains("invalid_client") }, "\(statuses)")
        } catch {
            print(harness.log())
            await harness.cleanup()
            throw error
        }
        await harness.cleanup()
    }
}
