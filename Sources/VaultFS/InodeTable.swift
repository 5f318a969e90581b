import ObjectCache
import Synchronization

/// Inode numbers for nodes, with the kernel's lookup counts. A node lives while the kernel holds
/// a reference (lookup count > 0) or while it has been listed; numbers are never reused.
///
/// A file inode shows one version for its whole life: the version its first lookup found. When
/// the name comes to show another version, the kernel is told that the old inode is gone
/// (`Invalidation.entry`); once it has been, the key is detached and the next lookup gets a new
/// inode. The old one lives on until the kernel forgets it, so a file opened before a rotation
/// reads its own version to the end (the kernel's page cache is per inode, so pages of two
/// versions never mix either).
///
/// With a journal, every inode the kernel holds is written down before the kernel learns of it
/// (and every later change to it), so another process can take the connection over and answer
/// for all of them (`restore`).
final class InodeTable: Sendable {
    static let rootInode: UInt64 = 1

    struct Node: Sendable, Equatable {
        var key: NodeKey
        var lookups: UInt64
        /// What a file node shows; nil for directories.
        var object: ObjectIdentity?
        /// The version a file inode shows, fixed at its first lookup; nil before that and for directories.
        var file: FileVersion?
        /// The kernel is being told that no name shows it any more.
        var replaced = false
    }

    /// Which object a file inode shows, for finding the inodes to invalidate when it changes.
    struct ObjectIdentity: Hashable, Sendable {
        var source: SourceID
        var reference: ObjectReference
    }

    /// One version of a file's content, how it is rendered, and its attributes.
    struct FileVersion: Sendable, Equatable {
        var version: String
        var rendering: Rendering
        var size: Int
        var modified: Int64
        var created: Int64

        /// Another version, or other bytes of it (a changed rendering), needs another inode.
        func isSameContent(as other: FileVersion) -> Bool {
            version == other.version && rendering == other.rendering && size == other.size
        }
    }

    /// What a lookup of a file gets.
    enum FileLookup {
        /// The inode that shows the version asked for.
        case current(UInt64)
        /// The key still shows this inode of another version; the kernel has to be told it is
        /// gone before the key moves on.
        case replaced(UInt64)
    }

    /// Nodes by inode number, each in a box of its own: a 160-byte node inline in a dictionary that
    /// is a quarter to half empty cost about 70 bytes more per node (0.7 MB at 10,000 secrets).
    struct NodeStore: Sequence {
        // Reached only through the table's state, under its lock.
        private final class Box: @unchecked Sendable {
            var node: Node
            init(_ node: Node) { self.node = node }
        }

        private var boxes: [UInt64: Box] = [:]

        subscript(inode: UInt64) -> Node? {
            get { boxes[inode]?.node }
            set {
                if let newValue, let box = boxes[inode] {
                    box.node = newValue
                } else {
                    boxes[inode] = newValue.map(Box.init)
                }
            }
        }

        var count: Int { boxes.count }

        func makeIterator() -> some IteratorProtocol<(key: UInt64, value: Node)> {
            boxes.lazy.map { (key: $0.key, value: $0.value.node) }.makeIterator()
        }
    }

    private struct State {
        var nextInode: UInt64 = 2
        var nodes = NodeStore()
        /// The inode each key shows now; inodes of earlier versions are not in here.
        var inodes: [NodeKey: UInt64] = [:]
        var showing: [ObjectIdentity: InodeSet] = [:]
        var journal: (any InodeJournal)?
        /// Inode numbers the journal says may have been handed out.
        var reservedUpTo: UInt64 = 0

        mutating func add(_ node: Node) -> UInt64 {
            let inode = nextInode
            nextInode += 1
            nodes[inode] = node
            inodes[node.key] = inode
            if let object = node.object { showing[object, default: InodeSet()].insert(inode) }
            // Numbers shown in listings must not come back for other nodes after a takeover.
            if inode > reservedUpTo {
                reservedUpTo = inode + InodeTable.reservationStep
                write(.reserved(upTo: reservedUpTo))
            }
            return inode
        }

        /// Journals a change to a node the kernel holds; a full journal gets a snapshot, which
        /// already has the change.
        mutating func write(_ record: InodeRecord) {
            guard let journal, !journal.append(record.encoded) else { return }
            journal.compact(snapshot)
        }

        var snapshot: [[UInt8]] {
            [InodeRecord.reserved(upTo: max(reservedUpTo, nextInode)).encoded]
                + nodes.compactMap { inode, node in
                    node.lookups > 0
                        ? InodeRecord.node(inode: inode, node: node, shown: inodes[node.key] == inode).encoded : nil
                }
        }

        func isJournaled(_ inode: UInt64) -> Bool {
            journal != nil && (nodes[inode]?.lookups ?? 0) > 0
        }
    }

    /// How far ahead inode numbers are reserved in the journal (one record per that many).
    static let reservationStep: UInt64 = 1024

    private let state: Mutex<State>

    init(root: NodeKey) {
        var initial = State()
        initial.nodes[Self.rootInode] = Node(key: root, lookups: 1, object: nil)
        initial.inodes[root] = Self.rootInode
        state = Mutex(initial)
    }

    /// Starts writing the table to `journal`, beginning with a snapshot of it.
    func startJournal(_ journal: any InodeJournal) {
        state.withLock { state in
            state.journal = journal
            state.reservedUpTo = state.nextInode + Self.reservationStep
            journal.compact(state.snapshot)
        }
    }

    /// Stops writing to the journal (it is being handed to another process).
    func stopJournal() {
        state.withLock { $0.journal = nil }
    }

    /// Writes the journal anew from the table (a keyed value did not fit in the journal).
    func compactJournal() {
        state.withLock { state in state.journal?.compact(state.snapshot) }
    }

    /// The table a journal describes: every inode the kernel held, its lookup count and what it
    /// shows, when the process that wrote it stopped.
    func restore(from records: [[UInt8]]) throws(JournalError) {
        var nodes: [UInt64: Node] = [:]
        var shown: [UInt64: Bool] = [:]
        var reserved: UInt64 = 0
        // One SourceID per source, shared by its nodes, as before the handover.
        var sources = Set<SourceID>()
        for bytes in records {
            switch try InodeRecord(decoding: bytes, sources: &sources) {
            case .node(let inode, let node, let isShown):
                nodes[inode] = node
                shown[inode] = isShown
            case .remembered(let inode):
                nodes[inode]?.lookups += 1
            case .forgot(let inode, let count):
                guard let lookups = nodes[inode]?.lookups else { break }
                if lookups > count { nodes[inode]?.lookups = lookups - count } else { nodes[inode] = nil }
            case .detached(let inode):
                shown[inode] = false
            case .replaced(let inode):
                nodes[inode]?.replaced = true
            case .pinned(let inode, let file):
                nodes[inode]?.file = file
            case .removed(let inode):
                nodes[inode] = nil
            case .reserved(let upTo):
                reserved = max(reserved, upTo)
            }
        }
        state.withLock { state in
            for (inode, node) in nodes where inode != Self.rootInode {
                state.nodes[inode] = node
                if shown[inode] == true { state.inodes[node.key] = inode }
                if let object = node.object { state.showing[object, default: InodeSet()].insert(inode) }
            }
            state.nextInode = max(reserved, nodes.keys.max() ?? 1) + 1
        }
    }

    func node(_ inode: UInt64) -> Node? {
        state.withLock { $0.nodes[inode] }
    }

    /// The inode `key` shows now, created when new; `object` records what a file shows. For
    /// directories and listings: it fixes no version.
    func inode(for key: NodeKey, showing object: ObjectIdentity? = nil) -> UInt64 {
        state.withLock { state in
            if let existing = state.inodes[key] { return existing }
            return state.add(Node(key: key, lookups: 0, object: object))
        }
    }

    /// The inode of `key` showing `version`: the one the key shows when it shows that version
    /// (or none yet), a new one when the key shows nothing, else `.replaced` with the inode the
    /// key still shows.
    func fileInode(for key: NodeKey, showing object: ObjectIdentity, version: FileVersion) -> FileLookup {
        state.withLock { state in
            guard let existing = state.inodes[key], let node = state.nodes[existing] else {
                return .current(state.add(Node(key: key, lookups: 0, object: object, file: version)))
            }
            if node.object == object, node.file == nil {
                state.nodes[existing]?.file = version
                if state.isJournaled(existing) { state.write(.pinned(inode: existing, file: version)) }
                return .current(existing)
            }
            if node.object == object, let shown = node.file, shown.isSameContent(as: version) {
                return .current(existing)
            }
            return .replaced(existing)
        }
    }

    /// The kernel takes a reference (a lookup reply about to be sent): journaled first.
    func remember(_ inode: UInt64) {
        state.withLock { state in
            guard var node = state.nodes[inode] else { return }
            node.lookups += 1
            state.nodes[inode] = node
            guard state.journal != nil, inode != Self.rootInode else { return }
            state.write(
                node.lookups == 1
                    ? .node(inode: inode, node: node, shown: state.inodes[node.key] == inode)
                    : .remembered(inode: inode))
        }
    }

    /// The kernel dropped `count` references; the node goes when none are left.
    func forget(_ inode: UInt64, count: UInt64) {
        guard inode != Self.rootInode else { return }
        state.withLock { state in
            guard var node = state.nodes[inode] else { return }
            if state.isJournaled(inode) { state.write(.forgot(inode: inode, count: count)) }
            node.lookups = node.lookups > count ? node.lookups - count : 0
            if node.lookups == 0 {
                Self.remove(inode, node, from: &state)
            } else {
                state.nodes[inode] = node
            }
        }
    }

    /// The file inodes that keys show now for `object` (earlier versions' inodes are not).
    func shownInodes(showing object: ObjectIdentity) -> [(inode: UInt64, key: NodeKey)] {
        state.withLock { state in
            (state.showing[object]?.all ?? []).compactMap { inode in
                guard let key = state.nodes[inode]?.key, state.inodes[key] == inode else { return nil }
                return (inode, key)
            }
        }
    }

    /// The file inodes that keys of one view show now.
    func shownFiles(inView view: String) -> [(inode: UInt64, key: NodeKey)] {
        state.withLock { state in
            state.inodes.compactMap { key, inode in key.view == view && key.path.type == .regular ? (inode, key) : nil }
        }
    }

    /// The kernel has been told that `inode` is gone from its name: the key stops showing it, so
    /// the next lookup makes a new inode.
    func detach(_ inode: UInt64) {
        state.withLock { state in
            guard let key = state.nodes[inode]?.key, state.inodes[key] == inode else { return }
            state.inodes[key] = nil
            if state.isJournaled(inode) { state.write(.detached(inode: inode)) }
        }
    }

    /// The kernel is about to be told that no name shows `inode` any more.
    func markReplaced(_ inode: UInt64) {
        state.withLock { state in
            guard state.nodes[inode] != nil else { return }
            state.nodes[inode]?.replaced = true
            if state.isJournaled(inode) { state.write(.replaced(inode: inode)) }
        }
    }

    /// Whether a name shows `inode`: an earlier version's inode, from the moment the kernel is
    /// told it is gone, shows under none, so its link count is 0, like an unlinked file's.
    func isLinked(_ inode: UInt64) -> Bool {
        state.withLock { state in state.nodes[inode].map { !$0.replaced && state.inodes[$0.key] == inode } ?? false }
    }

    /// The inode a key shows now, if any.
    func existingInode(for key: NodeKey) -> UInt64? {
        state.withLock { $0.inodes[key] }
    }

    /// Inodes of one view's nodes matching `predicate` (directories to invalidate after a listing change).
    func inodes(inView view: String, where predicate: (NodePath) -> Bool) -> [UInt64] {
        state.withLock { state in
            state.nodes.compactMap { inode, node in node.key.view == view && predicate(node.key.path) ? inode : nil }
        }
    }

    /// Forgets every node of a view that is gone; the kernel gets ENOENT for them from now on.
    func removeView(_ view: String) {
        state.withLock { state in
            for (inode, node) in state.nodes where node.key.view == view && inode != Self.rootInode {
                if state.isJournaled(inode) { state.write(.removed(inode: inode)) }
                Self.remove(inode, node, from: &state)
            }
        }
    }

    var count: Int { state.withLock { $0.nodes.count } }

    /// The inodes showing one object: nearly always one, kept inline rather than in a Set of its
    /// own (an allocation per object, about 100 bytes each at 10,000 objects).
    struct InodeSet {
        /// 0 for none: no inode has number 0, and an optional would make every row 8 bytes larger.
        private var first: UInt64 = 0
        private var others: Set<UInt64> = []

        var isEmpty: Bool { first == 0 && others.isEmpty }
        var all: [UInt64] { (first == 0 ? [] : [first]) + others }

        mutating func insert(_ inode: UInt64) {
            if first == 0 || first == inode {
                first = inode
            } else {
                others.insert(inode)
            }
        }

        mutating func remove(_ inode: UInt64) {
            if first == inode {
                first = others.popFirst() ?? 0
            } else {
                others.remove(inode)
            }
        }
    }

    private static func remove(_ inode: UInt64, _ node: Node, from state: inout State) {
        state.nodes[inode] = nil
        if state.inodes[node.key] == inode { state.inodes[node.key] = nil }
        if let object = node.object {
            state.showing[object]?.remove(inode)
            if state.showing[object]?.isEmpty == true { state.showing[object] = nil }
        }
    }
}
