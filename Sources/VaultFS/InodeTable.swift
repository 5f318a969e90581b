import ObjectCache
import Synchronization

/// Inode numbers for nodes, with the kernel's lookup counts. A node lives while the kernel holds
/// a reference (lookup count > 0) or while it has been listed; numbers are never reused.
final class InodeTable: Sendable {
    static let rootInode: UInt64 = 1

    struct Node: Sendable {
        var key: NodeKey
        var lookups: UInt64
        /// What a file node shows; nil for directories.
        var object: ObjectIdentity?
    }

    /// Which object a file inode shows, for finding the inodes to invalidate when it changes.
    struct ObjectIdentity: Hashable, Sendable {
        var source: SourceID
        var reference: ObjectReference
    }

    private struct State {
        var nextInode: UInt64 = 2
        var nodes: [UInt64: Node] = [:]
        var inodes: [NodeKey: UInt64] = [:]
        var showing: [ObjectIdentity: Set<UInt64>] = [:]
    }

    private let state: Mutex<State>

    init(root: NodeKey) {
        var initial = State()
        initial.nodes[Self.rootInode] = Node(key: root, lookups: 1, object: nil)
        initial.inodes[root] = Self.rootInode
        state = Mutex(initial)
    }

    func node(_ inode: UInt64) -> Node? {
        state.withLock { $0.nodes[inode] }
    }

    /// The inode for `key`, created when new; `object` records what a file shows.
    func inode(for key: NodeKey, showing object: ObjectIdentity? = nil) -> UInt64 {
        state.withLock { state in
            if let existing = state.inodes[key] { return existing }
            let inode = state.nextInode
            state.nextInode += 1
            state.nodes[inode] = Node(key: key, lookups: 0, object: object)
            state.inodes[key] = inode
            if let object { state.showing[object, default: []].insert(inode) }
            return inode
        }
    }

    /// The kernel took a reference (a successful lookup reply).
    func remember(_ inode: UInt64) {
        state.withLock { $0.nodes[inode]?.lookups += 1 }
    }

    /// The kernel dropped `count` references; the node goes when none are left.
    func forget(_ inode: UInt64, count: UInt64) {
        guard inode != Self.rootInode else { return }
        state.withLock { state in
            guard var node = state.nodes[inode] else { return }
            node.lookups = node.lookups > count ? node.lookups - count : 0
            if node.lookups == 0 {
                Self.remove(inode, node, from: &state)
            } else {
                state.nodes[inode] = node
            }
        }
    }

    /// File inodes showing `object` (any rendering), for kernel invalidation.
    func inodes(showing object: ObjectIdentity) -> [UInt64] {
        state.withLock { Array($0.showing[object] ?? []) }
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
                Self.remove(inode, node, from: &state)
            }
        }
    }

    var count: Int { state.withLock { $0.nodes.count } }

    private static func remove(_ inode: UInt64, _ node: Node, from state: inout State) {
        state.nodes[inode] = nil
        state.inodes[node.key] = nil
        if let object = node.object {
            state.showing[object]?.remove(inode)
            if state.showing[object]?.isEmpty == true { state.showing[object] = nil }
        }
    }
}
