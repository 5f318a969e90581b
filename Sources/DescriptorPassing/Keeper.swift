import Glibc

/// `akvfs-keeper`: holds descriptors for akvfs daemons so that their FUSE connections and state
/// outlive a crash or a restart, as systemd's file-descriptor store does for a unit. It knows
/// nothing of FUSE or of akvfs's state, so it has nothing to upgrade when akvfs does.
///
/// A root process connects to its socket and sends one request per message:
/// `STORE <name>` with one descriptor (answer `OK`), `REMOVE <name>` (`OK`), or `LIST` (`KEPT`
/// and the names, one per line, with the descriptors in the same order). A descriptor that reports an
/// error or hang-up (an unmounted FUSE connection, whose state then goes with it) is let go.
public final class Keeper {
    private let listener: LocalSocket
    private var kept: [String: Int32] = [:]
    private let log: (String) -> Void

    public init(socketPath: String, log: @escaping (String) -> Void = { _ in }) throws(ContinuityError) {
        listener = try LocalSocket.listen(at: socketPath)
        self.log = log
    }

    deinit {
        kept.values.forEach { close($0) }
    }

    /// Serves until `stop` is set by the caller (checked every second).
    public func run(until stop: () -> Bool = { false }) {
        while !stop() {
            var waiting = [pollfd(fd: listener.descriptor, events: Int16(POLLIN), revents: 0)]
            let names = Array(kept.keys)
            // Only errors and hang-ups are wanted from kept descriptors: they are reported whatever the events.
            waiting += names.map { pollfd(fd: kept[$0]!, events: 0, revents: 0) }
            guard poll(&waiting, nfds_t(waiting.count), 1000) >= 0 || errno == EINTR else {
                log("poll failed: \(String(cString: strerror(errno)))")
                return
            }
            for (index, name) in names.enumerated()
            where waiting[index + 1].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                log("letting go of \(name): its other end is gone")
                release(name)
            }
            if waiting[0].revents & Int16(POLLIN) != 0, let connection = listener.accept() {
                serve(connection)
            }
        }
    }

    private func serve(_ connection: LocalSocket) {
        connection.setTimeout(seconds: 5)
        guard let request = try? connection.receive() else { return }
        let words = request.text.split(separator: " ", maxSplits: 1).map(String.init)
        let answer: LocalSocket.Message
        switch (words.first, words.count) {
        case ("STORE", 2)
        where request.descriptors.count == 1 && kept[words[1]] == nil && kept.count >= LocalSocket.mostDescriptors:
            close(request.descriptors[0])
            answer = LocalSocket.Message(
                "ERROR full: a keeper holds at most \(LocalSocket.mostDescriptors) descriptors")
        case ("STORE", 2) where request.descriptors.count == 1:
            release(words[1])
            kept[words[1]] = request.descriptors[0]
            log("keeping \(words[1])")
            answer = LocalSocket.Message("OK")
        case ("REMOVE", 2) where request.descriptors.isEmpty:
            release(words[1])
            answer = LocalSocket.Message("OK")
        case ("LIST", 1) where request.descriptors.isEmpty:
            let names = kept.keys.sorted()
            // Never empty: an empty message reads as the connection closing.
            answer = LocalSocket.Message(
                (["KEPT"] + names).joined(separator: "\n"), descriptors: names.map { kept[$0]! })
        default:
            request.descriptors.forEach { close($0) }
            answer = LocalSocket.Message("ERROR unknown request; STORE <name>, REMOVE <name> or LIST")
        }
        try? connection.send(answer)
    }

    private func release(_ name: String) {
        if let descriptor = kept.removeValue(forKey: name) { close(descriptor) }
    }
}
