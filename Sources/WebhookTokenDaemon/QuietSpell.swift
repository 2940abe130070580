/// Decides when the daemon has been at rest long enough to give back the code that serving
/// faulted in (``ResidentCode``), by looking at the sockets' connections at each watchdog ping.
///
/// Serving one request maps about 5 MiB of the executable back in (a few dozen code pages, each
/// with the neighbourhood the kernel maps around a fault). A daemon at rest keeps them for
/// nothing; releasing them needs no wakeup of its own when it rides on the watchdog's, which
/// comes anyway. At rest means: no connection open now, and none opened or closed since the
/// previous look (a whole ping interval, 15 s with `WatchdogSec=30s`). The pages are released once
/// per quiet spell: again only after connections came and went.
struct QuietSpell {
    /// ``ConnectionCounter/changes`` at the previous look.
    private var changesAtLastLook: Int?
    /// ``ConnectionCounter/changes`` when the code was last released.
    private var changesAtRelease: Int?

    /// One look; `true` when the code should be released now.
    mutating func look(changes: Int, open: Int) -> Bool {
        defer { changesAtLastLook = changes }
        guard open == 0, changes == changesAtLastLook, changes != changesAtRelease else { return false }
        changesAtRelease = changes
        return true
    }
}
